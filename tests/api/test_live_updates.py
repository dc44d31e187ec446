"""`memberUpdated` over a real websocket: a purchase reaches its member's socket, nobody else's; authentication in
connection_init; graphql-transport-ws only; the socket's limits. In process (uvicorn in the test's loop, the
in-process broker); tests/api/test_live_processes.py runs two API processes over Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.live import LocalBroker
from api.settings import Environment, Settings
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, Program
from tests.api.live_client import SUBSCRIPTION, member_socket, serving, socket, update
from tests.conftest import app_settings
from tests.loyalty.ledger_helpers import purchase
from worker.live import LiveConsumer
from worker.runner import drain_once


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return Settings(
        environment=Environment.TEST,
        database_url=db,
        jwt_dev_key_file=str(tmp_path / "jwt.pem"),
        embedded_worker=False,
        google_wallet_enabled=False,
        live_connections_per_member=2,
        live_idle_seconds=30,
        live_init_seconds=5,
        live_max_message_bytes=2048,
    )


@pytest.fixture
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def url(app: Starlette) -> AsyncIterator[str]:
    async with serving(app) as ws_url:
        yield ws_url


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    return member


@pytest.fixture
async def bo(program: Program) -> Member:
    member, _ = await enroll_member("uid-bo", email="bo@example.com", display_name="Bo")
    return member


def token(tokens: TokenService, member: Member) -> str:
    return tokens.issue(str(member.id), MEMBER_AUDIENCE).token


async def deliver(app: Starlette) -> None:
    """What the outbox worker does: dispatch the new events and publish their notices (after the commit)."""
    assert isinstance(app.state.live, LocalBroker)
    await drain_once([LiveConsumer(app.state.live)])


async def test_a_purchase_reaches_the_members_socket(
    app: Starlette, url: str, tokens: TokenService, anna: Member, clock: FrozenClock
) -> None:
    # given Anna subscribed: the first message is her state now, with no changes
    async with member_socket(url, token(tokens, anna)) as ws:
        assert await ws.subscribe() == update([], available=0, pending=0, lifetime=0)

        # when a purchase of 12.00 is recorded and the worker delivers its events
        await purchase(anna.id, "R1", 1_200, clock.now())
        await deliver(app)

        # then one message says her points changed, with the balance read after the commit
        assert await ws.next() == update(["POINTS"], available=0, pending=12, lifetime=12)
        # and an at-least-once duplicate of the same events is harmless: nothing new, nothing sent
        await deliver(app)
        assert await ws.nothing_within(0.3)

        # when a purchase lifts her to Silver, one message says both
        await purchase(anna.id, "R2", 60_000, clock.now())
        await deliver(app)
        assert await ws.next() == update(["POINTS", "TIER"], available=0, pending=612, lifetime=612, tier="Silver")


async def test_another_members_events_never_arrive(
    app: Starlette, url: str, tokens: TokenService, anna: Member, bo: Member, clock: FrozenClock
) -> None:
    # given Anna and Bo subscribed
    async with member_socket(url, token(tokens, anna)) as anna_ws, member_socket(url, token(tokens, bo)) as bo_ws:
        await anna_ws.subscribe()
        await bo_ws.subscribe()

        # when Bo buys something
        await purchase(bo.id, "R1", 500, clock.now())
        await deliver(app)

        # then Bo hears of it and Anna hears nothing
        assert await bo_ws.next() == update(["POINTS"], available=0, pending=5, lifetime=5)
        assert await anna_ws.nothing_within(0.5)

        # and Anna's next message is her own purchase, not Bo's
        await purchase(anna.id, "R2", 300, clock.now())
        await deliver(app)
        assert await anna_ws.next() == update(["POINTS"], available=0, pending=3, lifetime=3)
        assert await bo_ws.nothing_within(0.3)


async def test_changes_arriving_together_come_as_one_message(
    app: Starlette, url: str, tokens: TokenService, anna: Member, clock: FrozenClock
) -> None:
    # given Anna subscribed
    async with member_socket(url, token(tokens, anna)) as ws:
        await ws.subscribe()

        # when three purchases are delivered in one drain
        for receipt in ("R1", "R2", "R3"):
            await purchase(anna.id, receipt, 1_000, clock.now())
        await deliver(app)

        # then one message carries their sum
        assert await ws.next() == update(["POINTS"], available=0, pending=30, lifetime=30)
        assert await ws.nothing_within(0.3)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"authorization": 42},
        {"authorization": "Bearer not-a-token"},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ],
)
async def test_connection_init_without_a_valid_token_is_closed_forbidden(
    url: str, anna: Member, payload: object
) -> None:
    async with socket(url) as ws:
        # when the socket is initialised without a member token
        await ws.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})

        # then it is closed 4403
        assert await ws.closed() == (4403, "Forbidden")


async def test_a_staff_token_or_an_expired_token_is_forbidden(
    url: str, tokens: TokenService, anna: Member, clock: FrozenClock
) -> None:
    # given a staff-audience token for Anna's id, and a member token that has expired
    staff = tokens.issue(str(anna.id), STAFF_AUDIENCE).token
    expired = token(tokens, anna)
    clock.advance(timedelta(hours=1))
    for value in (staff, expired):
        async with socket(url) as ws:
            await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {value}"}})
            assert await ws.closed() == (4403, "Forbidden")


async def test_the_socket_closes_when_its_token_expires(
    url: str, tokens: TokenService, anna: Member, clock: FrozenClock
) -> None:
    # given Anna subscribed
    async with member_socket(url, token(tokens, anna)) as ws:
        await ws.subscribe()

        # when her access token's lifetime passes
        clock.advance(timedelta(seconds=Settings().access_token_seconds))

        # then the socket is closed 4403 (the app reconnects with a refreshed token)
        assert await ws.closed(10) == (4403, "the access token expired: reconnect with a fresh one")


@pytest.mark.parametrize("protocols", [("graphql-ws",), ()])
async def test_only_graphql_transport_ws_is_spoken(url: str, protocols: tuple[str, ...]) -> None:
    # given a client offering the legacy protocol, or none
    async with socket(url, protocols) as ws:
        # then the server closes 4406 without reading anything
        assert await ws.closed() == (4406, "Subprotocol not acceptable")


async def test_a_header_token_does_not_authenticate_a_socket(url: str, tokens: TokenService, anna: Member) -> None:
    # given a socket that subscribes without connection_init
    async with socket(url) as ws:
        await ws.send(
            {"id": "1", "type": "subscribe", "payload": {"query": "subscription { memberUpdated { changes } }"}}
        )

        # then it is closed 4401 (not acknowledged)
        assert await ws.closed() == (4401, "Unauthorized")


async def test_queries_and_mutations_are_refused_on_the_socket(url: str, tokens: TokenService, anna: Member) -> None:
    async with member_socket(url, token(tokens, anna)) as ws:
        # when a query is sent over the socket
        await ws.send({"id": "q", "type": "subscribe", "payload": {"query": "{ me { memberNumber } }"}})

        # then it is an error for that operation (queries are HTTP requests), and the socket stays usable
        message = await ws.receive()
        assert (message["type"], message["id"]) == ("error", "q")
        assert [e["message"] for e in message["payload"]] == ["queries are not allowed"]
        assert (await ws.subscribe("2"))["data"]["memberUpdated"]["changes"] == []


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("[1, 2]", "not a graphql-transport-ws message"),
        ('"hello"', "not a graphql-transport-ws message"),
        ('{"type": 7}', "not a graphql-transport-ws message"),
        ('{"type": "subscribe", "id": "1", "payload": []}', "not a graphql-transport-ws message"),
        ('{"type": "subscribe", "id": ["1"], "payload": {"query": "x"}}', "not a graphql-transport-ws message"),
        ('{"type": "subscribe", "id": "1", "payload": {"query": 5}}', "not a graphql-transport-ws message"),
        (
            '{"type": "subscribe", "id": "1", "payload": {"query": "x", "variables": []}}',
            "not a graphql-transport-ws message",
        ),
        ('{"type": "complete", "id": {}}', "not a graphql-transport-ws message"),
        (
            '{"type": "subscribe", "id": "' + "x" * 65 + '", "payload": {"query": "x"}}',
            "not a graphql-transport-ws message",
        ),
        ("{not json", "WebSocket message must be valid JSON"),
        ('{"type": "nope"}', "Unknown message type: nope"),
    ],
)
async def test_malformed_messages_close_the_socket_4400(
    url: str, tokens: TokenService, anna: Member, message: str, reason: str
) -> None:
    async with member_socket(url, token(tokens, anna)) as ws:
        await ws.ws.send(message)
        assert await ws.closed() == (4400, reason)


async def test_a_binary_message_closes_the_socket_4400(url: str, tokens: TokenService, anna: Member) -> None:
    async with member_socket(url, token(tokens, anna)) as ws:
        await ws.ws.send(b'{"type": "ping"}')
        assert await ws.closed() == (4400, "WebSocket message type must be text")


async def test_a_message_over_the_size_limit_closes_the_socket_1009(
    url: str, tokens: TokenService, anna: Member
) -> None:
    async with member_socket(url, token(tokens, anna)) as ws:
        # given a message of exactly the limit (2048 bytes): answered
        ping = '{"type": "ping", "payload": {"p": "' + "x" * (2048 - 38) + '"}}'
        assert len(ping) == 2048
        await ws.ws.send(ping)
        assert await ws.receive() == {"type": "pong"}

        # when one more byte is sent, then the socket is closed 1009
        await ws.ws.send(ping.replace('"p"', '"pp"'))
        assert await ws.closed() == (1009, "message larger than 2048 bytes")


async def test_a_members_connections_beyond_the_limit_close_the_oldest(
    url: str, tokens: TokenService, anna: Member, bo: Member
) -> None:
    # given Anna with two sockets (the limit) and Bo with one
    async with (
        member_socket(url, token(tokens, anna)) as first,
        member_socket(url, token(tokens, anna)) as second,
        member_socket(url, token(tokens, bo)) as bos,
        # when Anna opens a third
        member_socket(url, token(tokens, anna)) as third,
    ):
        # then her oldest is closed 4029 and the other two work
        assert await first.closed() == (4029, "too many connections for this member: the oldest is closed")
        assert (await second.subscribe())["data"]["memberUpdated"]["changes"] == []
        assert (await third.subscribe())["data"]["memberUpdated"]["changes"] == []
        # and Bo's socket is not affected
        assert (await bos.subscribe())["data"]["memberUpdated"]["changes"] == []


async def test_connection_init_must_come_in_time(db: str, tmp_path: Path, settings: Settings) -> None:
    # given a server whose sockets must initialise within 0.3 s
    app = create_app(settings.model_copy(update={"live_init_seconds": 0.3}))
    async with serving(app) as url, socket(url) as ws:
        # then a socket that says nothing is closed 4408
        assert await ws.closed() == (4408, "Connection initialisation timeout")


async def test_an_idle_socket_is_closed(settings: Settings, tokens: TokenService, anna: Member) -> None:
    # given a server closing sockets idle for 0.4 s and pinging every 0.1 s
    app = create_app(settings.model_copy(update={"live_idle_seconds": 0.4, "live_ping_seconds": 0.1}))
    async with serving(app) as url:
        # when a socket is acknowledged but subscribes to nothing, it is closed 4000
        async with member_socket(url, token(tokens, anna)) as ws:
            assert await ws.closed() == (4000, "idle: no subscription")

        # when a subscribed socket never answers the server's pings, it is closed 4000 too
        async with member_socket(url, token(tokens, anna)) as ws:
            await ws.subscribe()
            message = await asyncio.wait_for(ws.ws.recv(), 2)
            assert message == '{"type":"ping"}'
            assert await ws.closed() == (4000, "idle: nothing heard from the client")

        # and a subscribed socket that answers them stays open
        async with member_socket(url, token(tokens, anna)) as ws:
            await ws.subscribe()
            for _ in range(10):
                assert await asyncio.wait_for(ws.ws.recv(), 2) == '{"type":"ping"}'
                await ws.send({"type": "pong"})
            assert ws.ws.close_code is None


async def test_production_runs_only_the_apps_trusted_subscription(
    db: str, tmp_path: Path, tokens: TokenService, anna: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a production app (trusted documents only), its broker in process
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = app_settings(db, tmp_path, Environment.PRODUCTION).model_copy(
        update={"redis_url": None, "embedded_worker": True}
    )
    app = create_app(settings)
    production_tokens = TokenService(settings)
    async with serving(app) as url, member_socket(url, token(production_tokens, anna)) as ws:
        # when the app subscribes with its own document, it is served
        assert await ws.subscribe() == update([], available=0, pending=0, lifetime=0)

        # and any other text is refused by its hash, as on HTTP
        await ws.send(
            {"id": "2", "type": "subscribe", "payload": {"query": "subscription { memberUpdated { changes } }"}}
        )
        assert await ws.receive() == {
            "id": "2",
            "type": "error",
            "payload": [
                {
                    "message": "only the app's trusted documents are accepted here",
                    "extensions": {"code": "UNTRUSTED_DOCUMENT"},
                }
            ],
        }


async def test_a_subscription_over_http_is_refused_400(app: Starlette, tokens: TokenService, anna: Member) -> None:
    # given the app's subscription sent as an HTTP request (POST, or GET's query string)
    headers = {"authorization": f"Bearer {token(tokens, anna)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        posted = await http.post("/graphql", json={"query": SUBSCRIPTION}, headers=headers)
        multipart = await http.post(
            "/graphql",
            json={"query": SUBSCRIPTION},
            headers={**headers, "accept": "multipart/mixed;subscriptionSpec=1.0,application/json"},
        )

    # then both are a 400 saying where subscriptions are served (never run as a query)
    refusal = {
        "errors": [
            {
                "message": "subscriptions are served over the websocket (graphql-transport-ws)",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    assert (posted.status_code, posted.json()) == (400, refusal)
    assert (multipart.status_code, multipart.json()) == (400, refusal)


async def test_a_socket_runs_at_most_five_subscriptions(url: str, tokens: TokenService, anna: Member) -> None:
    async with member_socket(url, token(tokens, anna)) as ws:
        # given five subscriptions on one socket
        for n in range(5):
            assert (await ws.subscribe(str(n)))["data"]["memberUpdated"]["changes"] == []

        # when a sixth is asked for, it is refused and the others go on
        await ws.send({"id": "6", "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        assert await ws.receive() == {
            "id": "6",
            "type": "error",
            "payload": [{"message": "Subscription limit reached"}],
        }

        # and once one completes, there is room again
        await ws.send({"id": "0", "type": "complete"})
        assert (await ws.subscribe("7"))["data"]["memberUpdated"]["changes"] == []
