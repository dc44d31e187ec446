"""While PostgreSQL is unreachable every endpoint answers 503 with Retry-After and a coded error (no database text),
and everything works again once it is back. The outage is real: a TCP proxy between the app and PostgreSQL is cut."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from api.app import create_app, run_embedded_worker
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty import events
from loyalty.db import database_unavailable
from loyalty.members import enroll_member
from loyalty.models import DeliveryStatus, Member, Program, StaffRole, WebhookDelivery
from loyalty.staff import create_api_key, create_staff
from loyalty.webhooks import create_webhook_endpoint
from tests.conftest import app_settings
from tests.pg_proxy import PgProxy, proxied_database
from tests.schema.conftest import HOME_QUERY
from tests.worker.conftest import Receiver, emit_event
from tests.worker.conftest import receiver as receiver  # the fixture
from worker.schedule import Schedule

pytestmark = [pytest.mark.postgres_only, pytest.mark.usefixtures("fast_password_hashing")]

UNAVAILABLE = {
    "errors": [
        {
            "message": "the service is temporarily unavailable: retry in a few seconds",
            "extensions": {"code": "SERVICE_UNAVAILABLE", "retryable": True},
        }
    ]
}
ME = "{ me { displayName } }"
STAFF_SIGN_IN = (
    'mutation { staffSessionCreate(input: {email: "cass@example.com", password: "till-password-1"}) { accessToken } }'
)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def proxy(db: str) -> AsyncIterator[PgProxy]:
    async with proxied_database(db) as proxy:
        yield proxy


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return app_settings(db, tmp_path)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: the proxy fixture connected the ORM
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("fb-anna", email="anna@example.com", display_name="Anna")
    return member


def assert_unavailable(response: httpx.Response, *, html: bool = False) -> None:
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.headers["cache-control"] == "no-store"
    text = response.text.lower()
    for leak in ("postgres", "asyncpg", "127.0.0.1", "connect", "errno", "select"):
        assert leak not in text, leak
    if html:
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "temporarily unavailable" in text
    else:
        assert response.json() == UNAVAILABLE


async def test_every_endpoint_answers_503_while_postgres_is_unreachable_and_recovers(
    proxy: PgProxy,
    http: httpx.AsyncClient,
    settings: Settings,
    anna: Member,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a signed-in member, an API key, a staff account signed in to the console, all made while the database is up
    member_auth = {"authorization": f"Bearer {TokenService(settings).issue(str(anna.id), MEMBER_AUDIENCE).token}"}
    _, api_key = await create_api_key("POS", StaffRole.CASHIER)
    await create_staff("cass@example.com", "till-password-1", StaffRole.CASHIER, ())
    pos = {"x-api-key": api_key}
    login = await http.get("/admin/login")
    signed_in = await http.post(
        "/admin/login",
        data={"email": "cass@example.com", "password": "till-password-1", "csrf": CSRF.findall(login.text)[0]},
    )
    assert signed_in.status_code == 303
    anonymous = httpx.AsyncClient(transport=http._transport, base_url="http://testserver")
    login_again = await anonymous.get("/admin/login")
    assert (await http.post("/graphql", json={"query": ME}, headers=member_auth)).json() == {
        "data": {"me": {"displayName": "Anna"}}
    }

    # when PostgreSQL becomes unreachable (open connections dropped, new ones refused)
    await proxy.cut()
    caplog.clear()

    # then the member endpoint (a resolver's query), the staff endpoint (the API key is checked before any resolver,
    # and the open sign-in mutation), the console (a page and a sign-in) and the readiness check all answer 503
    assert_unavailable(await http.post("/graphql", json={"query": ME}, headers=member_auth))
    assert_unavailable(await http.post("/staff/graphql", json={"query": "{ __typename }"}, headers=pos))
    assert_unavailable(await http.post("/staff/graphql", json={"query": STAFF_SIGN_IN}))
    assert_unavailable(await http.get(f"/admin/members/{anna.id}"), html=True)
    assert_unavailable(
        await anonymous.post(
            "/admin/login",
            data={"email": "cass@example.com", "password": "x", "csrf": CSRF.findall(login_again.text)[0]},
        ),
        html=True,
    )
    assert_unavailable(await http.get("/readyz"))
    # the liveness check does not depend on the database
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    # and each refusal is one warning line of ours, not a traceback (asyncpg's pool logs its own reconnect failures)
    outage_logs = [r for r in caplog.records if r.levelno >= logging.WARNING and not r.name.startswith("asyncpg")]
    assert [(r.name, r.levelname, r.exc_info) for r in outage_logs] == [("klubb.unavailable", "WARNING", None)] * 6
    assert outage_logs[0].getMessage().startswith("database unavailable: POST /graphql answered 503 (")

    # when PostgreSQL is reachable again, the same requests succeed
    await proxy.restore()
    assert (await http.post("/graphql", json={"query": ME}, headers=member_auth)).json() == {
        "data": {"me": {"displayName": "Anna"}}
    }
    staff = await http.post("/staff/graphql", json={"query": "{ __typename }"}, headers=pos)
    assert (staff.status_code, staff.json()) == (200, {"data": {"__typename": "Query"}})
    assert (await http.get(f"/admin/members/{anna.id}")).status_code == 200
    assert (await http.get("/readyz")).json() == {"status": "ok"}


async def test_the_app_starts_while_postgres_is_down_and_serves_once_it_is_up(
    proxy: PgProxy, http: httpx.AsyncClient, anna: Member, settings: Settings
) -> None:
    # given the database was unreachable from the first request on (the pool is made on first use)
    await proxy.cut()
    assert_unavailable(await http.get("/readyz"))

    await proxy.restore()

    assert (await http.get("/readyz")).status_code == 200


async def delivered(event_id: int, seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.05)):
        if await WebhookDelivery.filter(event_id=event_id, status=DeliveryStatus.SUCCEEDED).exists():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"event {event_id} was not delivered within {seconds} s")


async def test_the_embedded_worker_survives_an_outage_and_resumes(
    proxy: PgProxy, settings: Settings, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    # given a running embedded worker (running one periodic job twice a second) and a webhook endpoint
    await create_webhook_endpoint(receiver.url())
    every_half_second = Schedule.of(
        {
            "expire-points": 0.5,
            "evaluate-tiers": 0,
            "birthday-rewards": 0,
            "expire-vouchers": 0,
            "refresh-wallet-passes": 0,
        }
    )
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_embedded_worker(settings.model_copy(update={"embedded_worker": True}), stop, jobs=every_half_second)
    )
    try:
        first = await emit_event(events.MEMBER_ENROLLED)
        await delivered(first.id)

        # when PostgreSQL is unreachable for a few of its polls
        await proxy.cut()
        await asyncio.sleep(2.5)
        assert not worker.done()

        # then, once it is back, the worker delivers what was written after the outage
        await proxy.restore()
        second = await emit_event(events.MEMBER_ENROLLED)
        await delivered(second.id)
        assert [r.headers["klubb-event-id"] for r in receiver.requests] == [str(first.id), str(second.id)]
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
    # each failed poll was one warning line, and the worker never crashed and restarted
    ours = [r for r in caplog.records if r.name.startswith("klubb") and r.levelno >= logging.WARNING]
    assert ours
    assert {(r.levelname, r.exc_info) for r in ours} == {("WARNING", None)}
    assert {r.getMessage().split(";")[0].split(" (")[0] for r in ours} == {
        "outbox drain failed: the database is unavailable",
        "job expire-points: the database is unavailable",
    }


def test_what_counts_as_unavailable() -> None:
    import asyncpg.exceptions

    assert database_unavailable(ConnectionRefusedError(111, "Connect call failed"))
    assert database_unavailable(asyncpg.exceptions.AdminShutdownError("terminating connection"))
    assert database_unavailable(asyncpg.exceptions.CannotConnectNowError("the database system is starting up"))
    assert database_unavailable(asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"))
    assert database_unavailable(asyncpg.exceptions.InterfaceError("cannot perform operation: connection is closed"))
    # the two ways asyncpg reports a pooled connection PostgreSQL dropped while it sat idle (see loyalty/db.py)
    assert database_unavailable(
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress")
    )
    assert database_unavailable(
        asyncpg.exceptions.InterfaceError(
            "cannot call Connection.fetch(): connection has been released back to the pool"
        )
    )
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = ConnectionResetError()
    assert database_unavailable(wrapped)
    # a statement's own error, or a bug, is not an outage
    assert not database_unavailable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    # two tasks on one connection (state 12, a statement, in progress) would be a bug: not an outage
    assert not database_unavailable(
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress")
    )
    assert not database_unavailable(
        asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (12) is in progress")
    )
    assert not database_unavailable(ValueError("bug"))
    assert orjson.loads(orjson.dumps(UNAVAILABLE)) == UNAVAILABLE


async def test_production_answers_503_too(
    proxy: PgProxy, db: str, tmp_path: Path, anna: Member, caplog: pytest.LogCaptureFixture
) -> None:
    # given the production app (errors masked, trusted documents only) and a signed-in member
    settings = app_settings(db, tmp_path, Environment.PRODUCTION)
    token = TokenService(settings).issue(str(anna.id), MEMBER_AUDIENCE).token
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        # when the database is unreachable
        await proxy.cut()
        home = await http.post("/graphql", json={"query": HOME_QUERY}, headers={"authorization": f"Bearer {token}"})
        sign_in = await http.post("/staff/graphql", json={"query": STAFF_SIGN_IN})

    # then the masked errors still answer 503, not "Unexpected error."
    assert_unavailable(home)
    assert_unavailable(sign_in)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith(("klubb", "strawberry"))]
