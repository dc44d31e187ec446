import asyncio
import hashlib
import hmac
import os
import sys
from datetime import timedelta
from typing import Any

import orjson
import pytest

from api.app import run_embedded_worker
from api.settings import Settings
from loyalty import events
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput, NotFound
from loyalty.leases import backoff
from loyalty.models import DeliveryStatus, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from loyalty.webhooks import (
    InvalidWebhookUrl,
    UnknownEventType,
    WebhookEndpointNotFound,
    create_webhook_endpoint,
    deactivate_webhook_endpoint,
    list_webhook_endpoints,
)
from tests.conftest import WALLET_DEV_DIRECTORY
from tests.worker.conftest import Receiver, emit_event
from worker.dispatch import dispatch_pending
from worker.runner import drain_once, make_client, outbox_consumers
from worker.webhooks import claim_due, record_attempt, sign, verify_signature


def _settings(db: str, **overrides: Any) -> Settings:
    return Settings(database_url=db, **overrides)


async def _drain(settings: Settings) -> int:
    async with make_client() as client:
        return await drain_once(outbox_consumers(settings.worker_config(), client))


async def _dispatch() -> int:
    """Fan the outbox out to the worker's consumers without delivering anything."""
    async with make_client() as client:
        return await dispatch_pending(outbox_consumers(Settings().worker_config(), client))


async def _attempt_log(delivery_id: int) -> list[tuple[int | None, str]]:
    rows = await WebhookAttempt.filter(delivery_id=delivery_id).order_by("id")
    return [(row.status_code, row.error) for row in rows]


# --- signatures ------------------------------------------------------------------------------------------------------


def test_sign_is_stripe_style_hmac_of_timestamp_and_body() -> None:
    body = b'{"id":1}'
    expected = hmac.new(b"whsec_x", b"1700000000." + body, hashlib.sha256).hexdigest()

    assert sign("whsec_x", 1_700_000_000, body) == f"t=1700000000,v1={expected}"


def test_verify_signature_accepts_only_fresh_untampered_bodies(clock: FrozenClock) -> None:
    body = b'{"id":1,"type":"points.earned"}'
    t = int(clock.now().timestamp())
    header = sign("whsec_a", t, body)

    assert verify_signature("whsec_a", header, body, now=clock.now()) is True
    assert verify_signature("whsec_a", header, body + b" ", now=clock.now()) is False
    assert verify_signature("whsec_b", header, body, now=clock.now()) is False
    assert verify_signature("whsec_a", header, body, now=clock.now() + timedelta(seconds=300)) is True
    assert verify_signature("whsec_a", header, body, now=clock.now() + timedelta(seconds=301)) is False
    assert (
        verify_signature("whsec_a", header, body, tolerance_seconds=10, now=clock.now() - timedelta(seconds=11))
        is False
    )
    # several v1 signatures (e.g. during secret rotation): one valid is enough
    rotated = f"t={t},v1={'0' * 64},{header.split(',')[1]}"
    assert verify_signature("whsec_a", rotated, body, now=clock.now()) is True
    for malformed in ("", "garbage", f"t=abc,{header.split(',')[1]}", f"t={t}", header.split(",")[1], "t=1,v1"):
        assert verify_signature("whsec_a", malformed, body, now=clock.now()) is False


def test_backoff_doubles_from_30_seconds_capped_at_an_hour() -> None:
    delays = [int(backoff(n).total_seconds()) for n in range(1, 11)]

    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]


# --- endpoints -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "ftp://example.com/hook",
        "http://",
        "https:///path-only",
        "https://user:pw@example.com/hook",
        "https://example.com/hook#frag",
        "https://example.com:99999/hook",
        "https://example.com/" + "a" * 500,
        "https://exa mple.com/hook",
    ],
)
async def test_invalid_url_is_a_typed_error_and_writes_nothing(db: str, url: str) -> None:
    with pytest.raises(InvalidWebhookUrl) as raised:
        await create_webhook_endpoint(url, [events.POINTS_EARNED])

    assert isinstance(raised.value, InvalidInput)
    assert (raised.value.code, raised.value.field) == ("INVALID_WEBHOOK_URL", "url")
    assert await WebhookEndpoint.all().count() == 0


async def test_unknown_event_type_is_a_typed_error_and_writes_nothing(db: str) -> None:
    with pytest.raises(UnknownEventType) as raised:
        await create_webhook_endpoint("https://example.com/hook", [events.POINTS_EARNED, "points.stolen"])

    assert (raised.value.code, raised.value.field) == ("UNKNOWN_EVENT_TYPE", "event_types")
    assert "'points.stolen'" in raised.value.message
    assert await WebhookEndpoint.all().count() == 0


async def test_create_list_and_deactivate_endpoints(db: str, clock: FrozenClock) -> None:
    first, secret = await create_webhook_endpoint(
        " https://example.com/a ", [events.POINTS_EARNED, events.TIER_CHANGED, events.POINTS_EARNED]
    )
    second, other_secret = await create_webhook_endpoint("http://127.0.0.1:9/b")

    assert secret.startswith("whsec_")
    assert len(secret) == 49
    assert secret != other_secret
    stored = await WebhookEndpoint.get(id=first.id)
    assert (stored.url, stored.secret, stored.event_types, stored.active, stored.created_at) == (
        "https://example.com/a",
        secret,
        [events.POINTS_EARNED, events.TIER_CHANGED],
        True,
        clock.now(),
    )
    await emit_event(events.POINTS_EARNED)
    await _dispatch()

    await deactivate_webhook_endpoint(second.id)
    await deactivate_webhook_endpoint(second.id)  # idempotent

    assert [(e.id, e.active) for e in await list_webhook_endpoints()] == [(first.id, True), (second.id, False)]
    assert [e.id for e in await list_webhook_endpoints(include_inactive=False)] == [first.id]
    deliveries = await WebhookDelivery.all().order_by("endpoint_id")
    assert [(d.endpoint_id, d.status, d.last_error) for d in deliveries] == [
        (first.id, DeliveryStatus.PENDING, ""),
        (second.id, DeliveryStatus.FAILED, "endpoint deactivated"),
    ]
    with pytest.raises(WebhookEndpointNotFound) as raised:
        await deactivate_webhook_endpoint(second.id + 100)
    assert isinstance(raised.value, NotFound)


# --- delivery --------------------------------------------------------------------------------------------------------


async def test_event_is_delivered_signed_with_the_endpoint_secret(
    db: str, clock: FrozenClock, receiver: Receiver
) -> None:
    endpoint, secret = await create_webhook_endpoint(receiver.url(), [events.POINTS_EARNED])
    event = await emit_event(events.POINTS_EARNED, member_id=7, points=120)

    attempts = await _drain(_settings(db))

    assert attempts == 1
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["klubb-event-id"] == str(event.id)
    assert request.headers["klubb-event-type"] == "points.earned"
    assert request.headers["klubb-signature"].startswith(f"t={int(clock.now().timestamp())},v1=")
    assert verify_signature(secret, request.headers["klubb-signature"], request.body, now=clock.now()) is True
    assert verify_signature("whsec_wrong", request.headers["klubb-signature"], request.body, now=clock.now()) is False
    assert orjson.loads(request.body) == {
        "id": event.id,
        "type": "points.earned",
        "created_at": "2026-03-02T12:00:00+00:00",
        "data": {"type": "points.earned", "member_id": 7, "points": 120},
    }
    delivery = await WebhookDelivery.get(endpoint_id=endpoint.id, event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.delivered_at, delivery.locked_until) == (
        DeliveryStatus.SUCCEEDED,
        1,
        clock.now(),
        None,
    )
    assert (delivery.last_status_code, delivery.last_error) == (204, "")
    assert await _attempt_log(delivery.id) == [(204, "")]
    assert (await OutboxEvent.get(id=event.id)).dispatched_at == clock.now()
    # nothing is due any more
    assert await _drain(_settings(db)) == 0
    assert len(receiver.requests) == 1


async def test_endpoints_receive_only_the_event_types_they_subscribed_to(db: str, receiver: Receiver) -> None:
    await create_webhook_endpoint(receiver.url("/earned"), [events.POINTS_EARNED])
    await create_webhook_endpoint(receiver.url("/all"), [])
    await create_webhook_endpoint(receiver.url("/enrolled"), [events.MEMBER_ENROLLED, events.TIER_CHANGED])
    inactive, _ = await create_webhook_endpoint(receiver.url("/inactive"), [])
    await deactivate_webhook_endpoint(inactive.id)
    earned = await emit_event(events.POINTS_EARNED)
    enrolled = await emit_event(events.MEMBER_ENROLLED)
    await emit_event(events.POINTS_EXPIRED)

    attempts = await _drain(_settings(db))

    assert attempts == 5
    received = sorted((r.path, r.headers["klubb-event-id"], r.headers["klubb-event-type"]) for r in receiver.requests)
    assert received == sorted(
        [
            ("/earned", str(earned.id), "points.earned"),
            ("/all", str(earned.id), "points.earned"),
            ("/all", str(enrolled.id), "member.enrolled"),
            ("/all", str(enrolled.id + 1), "points.expired"),
            ("/enrolled", str(enrolled.id), "member.enrolled"),
        ]
    )
    assert await WebhookDelivery.filter(status=DeliveryStatus.SUCCEEDED).count() == 5
    assert await OutboxEvent.filter(dispatched_at__isnull=True).count() == 0


async def test_server_error_is_retried_with_backoff_then_succeeds(
    db: str, clock: FrozenClock, receiver: Receiver
) -> None:
    receiver.behavior = lambda request, index: 500 if index == 0 else 200
    await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.TIER_CHANGED)
    settings = _settings(db)
    first_try = clock.now()

    assert await _drain(settings) == 1

    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        DeliveryStatus.PENDING,
        1,
        500,
        "HTTP 500",
    )
    assert delivery.next_attempt_at == first_try + timedelta(seconds=30)
    assert delivery.locked_until is None
    clock.advance(timedelta(seconds=29))
    assert await _drain(settings) == 0
    clock.advance(timedelta(seconds=1))
    assert await _drain(settings) == 1
    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (DeliveryStatus.SUCCEEDED, 2, clock.now())
    assert await _attempt_log(delivery.id) == [(500, "HTTP 500"), (200, "")]
    assert [r.headers["klubb-event-id"] for r in receiver.requests] == [str(event.id), str(event.id)]


async def test_delivery_gives_up_24_hours_after_the_event(db: str, clock: FrozenClock, receiver: Receiver) -> None:
    receiver.behavior = lambda request, index: 503
    await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.POINTS_ADJUSTED)
    settings = _settings(db)
    offsets: list[int] = []

    while True:
        offsets.append(int((clock.now() - event.created_at).total_seconds()))
        assert await _drain(settings) == 1
        delivery = await WebhookDelivery.get(event_id=event.id)
        if delivery.status != DeliveryStatus.PENDING:
            break
        clock.set(delivery.next_attempt_at)

    # 30 s, 1, 2, 4, 8, 16, 32 min, then hourly; the last try is exactly at the 24 h horizon
    assert offsets[:9] == [0, 30, 90, 210, 450, 930, 1890, 3810, 7410]
    assert offsets[-2:] == [3810 + 22 * 3600, 24 * 3600]
    assert len(offsets) == 31
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.FAILED, 31, 503)
    assert await _attempt_log(delivery.id) == [(503, "HTTP 503")] * 31
    clock.advance(timedelta(days=2))
    assert await _drain(settings) == 0
    assert len(receiver.requests) == 31


async def test_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    db: str, clock: FrozenClock, receiver: Receiver
) -> None:
    receiver.behavior = lambda request, index: "stall"
    await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.POINTS_REDEEMED)

    assert await _drain(_settings(db, webhook_timeout_seconds=0.3)) == 1

    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.last_error) == (
        DeliveryStatus.PENDING,
        1,
        None,
        "timeout after 0.3 s",
    )
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=30)
    attempt = await WebhookAttempt.get(delivery_id=delivery.id)
    assert (attempt.status_code, attempt.error) == (None, "timeout after 0.3 s")
    assert 300 <= attempt.duration_ms < 2000
    assert len(receiver.requests) == 1


async def test_unreachable_endpoint_records_the_connection_error(db: str, clock: FrozenClock) -> None:
    # port 9 (discard) is closed on the test machines: the connection is refused at once
    await create_webhook_endpoint("http://127.0.0.1:9/hook")
    event = await emit_event(events.POINTS_EARNED)

    assert await _drain(_settings(db)) == 1

    delivery = await WebhookDelivery.get(event_id=event.id)
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("ConnectError: ")


async def test_deliveries_of_an_endpoint_deactivated_after_dispatch_are_not_sent(
    db: str, clock: FrozenClock, receiver: Receiver
) -> None:
    endpoint, _ = await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.POINTS_EARNED)
    await _dispatch()
    # as if a dispatch had raced deactivate_webhook_endpoint and created the delivery after it
    await WebhookEndpoint.filter(id=endpoint.id).update(active=False)

    assert await _drain(_settings(db)) == 0

    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.last_error, delivery.locked_until) == (
        DeliveryStatus.FAILED,
        0,
        "endpoint deactivated",
        None,
    )
    assert receiver.requests == []


async def test_a_claim_is_exclusive_until_its_lease_expires(db: str, clock: FrozenClock) -> None:
    await create_webhook_endpoint("http://127.0.0.1:9/hook")
    event = await emit_event(events.POINTS_EARNED)
    await _dispatch()

    first = await claim_due(10, lease_seconds=60)
    assert [c.event.id for c in first] == [event.id]
    assert first[0].lease == clock.now() + timedelta(seconds=60)
    assert await claim_due(10, lease_seconds=60) == []
    clock.advance(timedelta(seconds=60))
    assert await claim_due(10, lease_seconds=60) == []  # the lease runs until locked_until inclusive
    clock.advance(timedelta(seconds=1))
    second = await claim_due(10, lease_seconds=60)
    assert [c.delivery.id for c in second] == [first[0].delivery.id]

    # the worker that lost its lease still logs its attempt but no longer decides the delivery's state
    late = await record_attempt(
        first[0], attempted_at=clock.now(), status_code=200, error="", duration_ms=5, retry_hours=24
    )

    assert late.recorded is False
    delivery = await WebhookDelivery.get(id=first[0].delivery.id)
    assert (delivery.status, delivery.attempts, delivery.locked_until) == (
        DeliveryStatus.PENDING,
        0,
        second[0].lease,
    )
    assert await _attempt_log(delivery.id) == [(200, "")]


async def test_run_embedded_delivers_and_stops_promptly(db: str, receiver: Receiver) -> None:
    await create_webhook_endpoint(receiver.url())
    stop = asyncio.Event()
    task = asyncio.create_task(run_embedded_worker(_settings(db, embedded_worker=True), stop))
    event = await emit_event(events.MEMBER_ENROLLED)

    await asyncio.wait_for(receiver.got_request.wait(), 5)
    for _ in range(50):
        if (await WebhookDelivery.get(event_id=event.id)).status == DeliveryStatus.SUCCEEDED:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 1)

    assert (await WebhookDelivery.get(event_id=event.id)).status == DeliveryStatus.SUCCEEDED
    assert [r.headers["klubb-event-id"] for r in receiver.requests] == [str(event.id)]


async def test_run_embedded_does_nothing_when_disabled(db: str) -> None:
    stop = asyncio.Event()

    await asyncio.wait_for(run_embedded_worker(_settings(db, embedded_worker=False), stop), 1)

    assert stop.is_set() is False


async def _klubb(db: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from api.cli import app; app(prog_name='klubb')",
        *args,
        env={"KLUBB_DATABASE_URL": db, "PATH": "/usr/bin:/bin", WALLET_DEV_DIRECTORY: os.environ[WALLET_DEV_DIRECTORY]},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_cli_worker_once_delivers_what_is_due(db: str, receiver: Receiver) -> None:
    await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.POINTS_EARNED)

    code, out, err = await _klubb(db, "worker", "--once")

    assert (code, out) == (0, "made 1 delivery attempts\n"), err
    assert [r.headers["klubb-event-id"] for r in receiver.requests] == [str(event.id)]
    assert (await WebhookDelivery.get(event_id=event.id)).status == DeliveryStatus.SUCCEEDED


async def test_cli_adds_and_lists_webhooks(db: str) -> None:
    code, out, _ = await _klubb(
        db, "webhook", "add", "https://example.com/hook", "--event", "points.earned", "--event", "tier.changed"
    )

    assert code == 0
    endpoint = await WebhookEndpoint.get()
    assert out == f"id: {endpoint.id}\nsecret: {endpoint.secret}\n"
    assert endpoint.event_types == ["points.earned", "tier.changed"]
    code, out, _ = await _klubb(db, "webhook", "list")
    assert (code, out) == (0, f"{endpoint.id}\tactive\thttps://example.com/hook\tpoints.earned,tier.changed\n")
    code, out, err = await _klubb(db, "webhook", "add", "https://example.com/x", "--event", "nope")
    assert (code, out) == (2, "")
    assert err == "error [UNKNOWN_EVENT_TYPE]: unknown event type(s): 'nope'\n"
    assert await WebhookEndpoint.all().count() == 1
