"""PostgreSQL restarts under concurrent traffic: requests during the restart get 503s (never a 500), and once it is
back no connection is used by two tasks at once (asyncpg's "another operation is in progress") and none leaks."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from strawberry import relay
from tortoise import connections
from tortoise.transactions import in_transaction

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Settings
from loyalty.db import database_unavailable
from loyalty.members import enroll_member
from loyalty.models import Member, Program, StaffRole
from loyalty.staff import create_api_key
from tests.conftest import POSTGRES_URL, app_settings
from tests.pg_proxy import proxied_database
from tests.schema.conftest import HOME_QUERY

pytestmark = pytest.mark.postgres_only

RECORD = """
mutation($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) { purchase { points } userErrors { code } }
}
"""


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return app_settings(db, tmp_path)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client:
        yield client


async def terminate_our_backends() -> int:
    """Kill every server process of the test database but this one: what clients see when PostgreSQL restarts.

    Returns once the killed processes are gone: `pg_terminate_backend` only signals them, and a process that exits
    after the traffic stopped would fail the next request on its pooled connection (a kill during the check, not
    before it).
    """
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        killed = [
            row["pid"]
            for row in await admin.fetch(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
        for _ in range(200):
            if not await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = any($1::int[])", killed):
                break
            await asyncio.sleep(0.025)
        await asyncio.sleep(0.05)  # and the pool's connections have read their end of the socket
        return len(killed)
    finally:
        await admin.close()


class Traffic:
    """Members reading their home screen and tills recording purchases, concurrently, recording every outcome."""

    def __init__(self, http: httpx.AsyncClient, member_headers: list[dict[str, str]], till: dict[str, str]) -> None:
        self.http = http
        self.member_headers = member_headers
        self.till = till
        self.outcomes: Counter[str] = Counter()
        self.bodies: list[str] = []
        self.receipts = 0

    async def home(self, headers: dict[str, str]) -> None:
        try:
            response = await self.http.post("/graphql", json={"query": HOME_QUERY}, headers=headers)
        except Exception as exc:
            self.outcomes[f"500 {type(exc).__name__}: {exc}"] += 1
            return
        self.record(response)

    async def purchase(self, member_id: int) -> None:
        self.receipts += 1
        variables: dict[str, Any] = {
            "input": {
                "member": relay.to_base64("Member", member_id),
                "storeCode": "S1",
                "receiptId": f"R{self.receipts}",
                "occurredAt": "2026-03-02T11:00:00+00:00",
                "currency": "EUR",
                "total": 1_000,
                "lines": [{"sku": "LATTE", "amount": 1_000}],
            }
        }
        try:
            response = await self.http.post(
                "/staff/graphql", json={"query": RECORD, "variables": variables}, headers=self.till
            )
        except Exception as exc:  # an exception out of the app: the server would answer 500
            self.outcomes[f"500 {type(exc).__name__}: {exc}"] += 1
            return
        self.record(response)

    def record(self, response: httpx.Response) -> None:
        body = response.json()
        self.outcomes[f"{response.status_code} {'errors' if body.get('errors') else 'ok'}"] += 1
        if response.status_code != 503 and body.get("errors"):
            self.bodies.append(response.text)

    async def run(self, rounds: int, member_ids: list[int]) -> None:
        async def member_loop(headers: dict[str, str]) -> None:
            for _ in range(rounds):
                await self.home(headers)

        async def till_loop(member_id: int) -> None:
            for _ in range(rounds):
                await self.purchase(member_id)

        await asyncio.gather(*map(member_loop, self.member_headers), *map(till_loop, member_ids[:3]))


async def test_no_connection_is_shared_after_postgres_restarts_under_load(
    http: httpx.AsyncClient, settings: Settings, program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    # given members with tokens and a till's API key, and traffic running
    tokens = TokenService(settings)
    members: list[Member] = [(await enroll_member(f"fb-{n}", email=f"m{n}@example.com"))[0] for n in range(6)]
    headers = [{"authorization": f"Bearer {tokens.issue(str(m.id), MEMBER_AUDIENCE).token}"} for m in members]
    _, key = await create_api_key("POS", StaffRole.CASHIER, "S1")
    traffic = Traffic(http, headers, {"x-api-key": key})
    await traffic.run(2, [m.id for m in members])
    assert traffic.outcomes == Counter({"200 ok": 6 * 2 + 3 * 2}), traffic.bodies

    # when PostgreSQL's server processes are killed three times while the traffic runs
    async def restarts() -> None:
        for _ in range(3):
            await asyncio.sleep(0.15)
            await terminate_our_backends()

    traffic.outcomes.clear()
    caplog.clear()
    await asyncio.gather(traffic.run(8, [m.id for m in members]), restarts())

    # then every request either succeeded or was a 503 (no 500, no error entry)
    assert set(traffic.outcomes) <= {"200 ok", "503 errors"}, (traffic.outcomes, traffic.bodies[:3])
    # and nothing was logged as a fault (each 503 is one warning line)
    # (asyncio's "Future exception was never retrieved" is asyncpg's connect racing the kill: not ours)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name != "asyncio"] == []

    # and once it is back, everything succeeds, every time, and no connection was leaked from the pool
    traffic.outcomes.clear()
    traffic.bodies.clear()
    await traffic.run(3, [m.id for m in members])

    assert traffic.outcomes == Counter({"200 ok": 6 * 3 + 3 * 3}), traffic.bodies[:3]
    pool = connections.get("default")._pool  # type: ignore[attr-defined]
    assert [holder for holder in pool._holders if holder._in_use is not None] == []


async def test_a_transaction_whose_begin_fails_leaves_nothing_behind(db: str) -> None:
    # given a pooled connection that PostgreSQL dropped without the driver noticing yet
    async with proxied_database(db) as proxy:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT 1")
        base = connections.get("default")
        proxy.drop_on_write = True

        # when a transaction starts on it: BEGIN fails
        with pytest.raises(asyncpg.exceptions.ConnectionDoesNotExistError) as failed:
            async with in_transaction():
                pass
        assert database_unavailable(failed.value)

        # then this task is not left inside that dead transaction, and its connection went back to the pool
        assert connections.get("default") is base
        pool = base._pool  # type: ignore[attr-defined]
        assert [h for h in pool._holders if h._in_use is not None] == []
        # and once the database answers again, the same task's next transaction works
        proxy.drop_on_write = False
        async with in_transaction() as conn:
            assert await conn.execute_query_dict("SELECT 1 AS one") == [{"one": 1}]
