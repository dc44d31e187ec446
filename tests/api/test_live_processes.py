"""Live updates from real server processes: two uvicorn servers on PostgreSQL and Redis (a purchase recorded through
one, whose embedded worker publishes to Redis, reaches a subscriber on the other; another member's never does),
`klubb worker` publishing through Redis, and the embedded default (one process, no Redis) on both engines."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from strawberry import relay

from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Settings
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Program, StaffRole
from loyalty.staff import create_api_key
from tests.api.live_client import member_socket, update
from tests.conftest import REDIS_URL
from tests.loyalty.ledger_helpers import purchase
from tests.server import ROOT, running_klubb

RECORD = """
mutation($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) { purchase { points } userErrors { code } }
}
"""


def receipt(member_id: int, receipt_id: str, total: int, at: datetime) -> dict[str, object]:
    return {
        "input": {
            "member": relay.to_base64("Member", member_id),
            "storeCode": "S1",
            "receiptId": receipt_id,
            "occurredAt": at.isoformat(),
            "currency": "EUR",
            "total": total,
            "lines": [{"sku": "LATTE", "amount": total}],
        }
    }


@pytest.mark.postgres_only
async def test_a_purchase_through_one_process_reaches_a_subscriber_on_the_other(
    db: str, program: Program, tmp_path: Path, clock: FrozenClock
) -> None:
    clock.advance(datetime.now(UTC) - clock.now())  # the servers run on real time: so do the tokens issued here
    # given two API processes sharing PostgreSQL and a Redis channel of this test's own; the first drains the
    # outbox (embedded worker), the second only serves
    key_file = tmp_path / "jwt.pem"
    tokens = TokenService(Settings(jwt_dev_key_file=str(key_file)))  # the key both servers sign and verify with
    common = {
        "KLUBB_JWT_DEV_KEY_FILE": str(key_file),
        "KLUBB_REDIS_URL": REDIS_URL,
        "KLUBB_REDIS_CHANNEL": f"klubb-test:{uuid.uuid4()}",
        "KLUBB_WALLET_ENABLED": "false",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    bo, _ = await enroll_member("uid-bo", email="bo@example.com")
    _, api_key = await create_api_key("POS", StaffRole.CASHIER, "S1")
    with (
        running_klubb(db, tmp_path / "a", env={**common, "KLUBB_EMBEDDED_WORKER": "true"}) as first,
        running_klubb(db, tmp_path / "b", env=common) as second,
    ):
        ws_second = second.replace("http://", "ws://") + "/graphql"
        ws_first = first.replace("http://", "ws://") + "/graphql"
        anna_token = tokens.issue(str(anna.id), MEMBER_AUDIENCE).token
        bo_token = tokens.issue(str(bo.id), MEMBER_AUDIENCE).token
        # and Anna subscribed on the second process, Bo on the first
        async with member_socket(ws_second, anna_token) as anna_ws, member_socket(ws_first, bo_token) as bo_ws:
            assert await anna_ws.subscribe() == update([], available=0, pending=0, lifetime=0)
            assert await bo_ws.subscribe() == update([], available=0, pending=0, lifetime=0)

            # when the till records Anna's purchase through the first process
            async with httpx.AsyncClient(base_url=first, headers={"x-api-key": api_key}) as till:
                response = await till.post(
                    "/staff/graphql", json={"query": RECORD, "variables": receipt(anna.id, "R1", 1_500, clock.now())}
                )
            assert response.json() == {"data": {"purchaseRecord": {"purchase": {"points": 15}, "userErrors": []}}}

            # then her socket on the second process hears of it (the worker polls the outbox every second)
            assert await anna_ws.next(seconds=15) == update(["POINTS"], available=0, pending=15, lifetime=15)
            # and Bo, on the process that published it, hears nothing
            assert await bo_ws.nothing_within(1.0)


@pytest.mark.postgres_only
async def test_klubb_worker_publishes_through_redis(
    db: str, program: Program, tmp_path: Path, clock: FrozenClock
) -> None:
    # given one API process (no embedded worker) and `klubb worker` beside it, on Redis
    clock.advance(datetime.now(UTC) - clock.now())
    key_file = tmp_path / "jwt.pem"
    tokens = TokenService(Settings(jwt_dev_key_file=str(key_file)))
    env = {
        "KLUBB_JWT_DEV_KEY_FILE": str(key_file),
        "KLUBB_REDIS_URL": REDIS_URL,
        "KLUBB_REDIS_CHANNEL": f"klubb-test:{uuid.uuid4()}",
        "KLUBB_WALLET_ENABLED": "false",
        "KLUBB_GOOGLE_WALLET_ENABLED": "false",
    }
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    with running_klubb(db, tmp_path, env=env) as base:
        environment = {**{k: v for k, v in os.environ.items() if not k.startswith("KLUBB_")}, **env}
        environment.update({"KLUBB_ENVIRONMENT": "test", "KLUBB_DATABASE_URL": db})
        command = [sys.executable, "-c", "from api.cli import app; app(prog_name='klubb')", "worker"]
        worker = subprocess.Popen(  # noqa: ASYNC220 -- started once, before the test's waits
            [*command, "--poll-seconds", "0.2"], cwd=ROOT, env=environment, stdout=subprocess.DEVNULL
        )
        try:
            async with member_socket(
                base.replace("http://", "ws://") + "/graphql", tokens.issue(str(anna.id), MEMBER_AUDIENCE).token
            ) as ws:
                await ws.subscribe()

                # when a purchase is recorded (here, straight through the domain)
                await purchase(anna.id, "R1", 800, clock.now())

                # then the worker's notice reaches the socket
                assert await ws.next(seconds=15) == update(["POINTS"], available=0, pending=8, lifetime=8)
        finally:
            worker.terminate()
            worker.wait(timeout=20)


async def test_the_embedded_default_needs_no_redis(
    db: str, program: Program, tmp_path: Path, clock: FrozenClock
) -> None:
    # given one server process draining its own outbox (the embedded worker), no Redis: the in-process broker
    clock.advance(datetime.now(UTC) - clock.now())
    key_file = tmp_path / "jwt.pem"
    tokens = TokenService(Settings(jwt_dev_key_file=str(key_file)))
    env = {"KLUBB_JWT_DEV_KEY_FILE": str(key_file), "KLUBB_EMBEDDED_WORKER": "true", "KLUBB_WALLET_ENABLED": "false",
           "KLUBB_GOOGLE_WALLET_ENABLED": "false"}  # fmt: skip
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    with running_klubb(db, tmp_path, env=env) as base:
        url = base.replace("http://", "ws://") + "/graphql"
        async with member_socket(url, tokens.issue(str(anna.id), MEMBER_AUDIENCE).token) as ws:
            await ws.subscribe()

            # when a purchase is committed
            await purchase(anna.id, "R1", 2_500, clock.now())

            # then the server's own worker delivers its notice to the socket
            assert await ws.next(seconds=15) == update(["POINTS"], available=0, pending=25, lifetime=25)
