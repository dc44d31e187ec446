"""Wrong voucher codes over HTTP, under real concurrency: klubb under uvicorn with two worker processes on
PostgreSQL, 50 simultaneous requests from one till; tills sharing a login and API keys are counted apart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loyalty.models import Program
from loyalty.staff import create_api_key, create_staff
from tests.server import running_klubb

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

pytestmark = [pytest.mark.postgres_only, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def server(db: str, program: Program, tmp_path: Path) -> Iterator[str]:
    """klubb under uvicorn, two processes, on the test's PostgreSQL database; its base URL."""
    with running_klubb(db, tmp_path, workers=2) as base:
        yield base


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
