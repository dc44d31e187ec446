"""Wrong voucher codes over HTTP, under real concurrency: klubb under uvicorn with two worker processes on
PostgreSQL, 50 simultaneous requests from one till; tills sharing a login and API keys are counted apart."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loyalty.models import Program
from loyalty.staff import create_api_key, create_staff

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
SIGN_IN = """
mutation($email: String!, $password: String!) {
  staffSessionCreate(input: {email: $email, password: $password}) { accessToken userErrors { code } }
}
"""
REDEEM = """
mutation($code: String!) {
  voucherRedeem(input: {code: $code, storeCode: "S1"}) { voucher { code } userErrors { code } }
}
"""
SERVER_START_SECONDS = 60

pytestmark = [pytest.mark.postgres_only, pytest.mark.usefixtures("fast_password_hashing")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(db: str, program: Program, tmp_path: Path) -> Iterator[str]:
    """klubb under uvicorn, two processes, on the test's PostgreSQL database; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "KLUBB_ENVIRONMENT": "test",
        "KLUBB_DATABASE_URL": db,
        "KLUBB_JWT_DEV_KEY_FILE": str(tmp_path / "jwt.pem"),
        "KLUBB_EMBEDDED_WORKER": "false",
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = await http.post("/staff/graphql", json={"query": query, "variables": variables}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


async def _sign_in(http: httpx.AsyncClient) -> str:
    data = await _post(http, SIGN_IN, {"email": "till@example.com", "password": PASSWORD})
    assert data["staffSessionCreate"]["userErrors"] == []
    token: str = data["staffSessionCreate"]["accessToken"]
    return token


async def _guess(http: httpx.AsyncClient, n: int, **headers: str) -> str:
    data = await _post(http, REDEEM, {"code": f"{n:016d}"}, **headers)
    [error] = data["voucherRedeem"]["userErrors"]
    code: str = error["code"]
    return code


async def test_50_simultaneous_wrong_codes_from_one_till_get_5_answers_and_lock_only_that_till(server: str) -> None:
    # given two tills signed in with one shared login, and an integration's API key
    await create_staff("till@example.com", PASSWORD, "cashier", ["S1"])
    _, raw_key = await create_api_key("POS", "cashier", "S1")
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=server, timeout=60, limits=limits) as http:
        till_a = {"authorization": f"Bearer {await _sign_in(http)}"}
        till_b = {"authorization": f"Bearer {await _sign_in(http)}"}

        # when till A sends 50 wrong codes at once
        answers = await asyncio.gather(*(_guess(http, n, **till_a) for n in range(50)))

        # then only 5 were evaluated (answered INVALID_CODE), and only till A is locked
        assert sorted(answers) == ["INVALID_CODE"] * 5 + ["TOO_MANY_ATTEMPTS"] * 45
        assert await _guess(http, 50, **till_a) == "TOO_MANY_ATTEMPTS"
        assert await _guess(http, 51, **till_b) == "INVALID_CODE"
        assert await _guess(http, 52, **{"x-api-key": raw_key}) == "INVALID_CODE"
