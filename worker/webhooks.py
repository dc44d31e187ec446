"""Webhooks, the first outbox consumer: a delivery per matching endpoint, Stripe-style signatures, claiming due
deliveries under a lease, one attempt and its record."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.db import database_unavailable
from loyalty.leases import backoff, lease_due
from loyalty.models import DeliveryStatus, OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from worker.config import WorkerConfig

log = logging.getLogger("klubb.worker.webhooks")

SIGNATURE_HEADER = "Klubb-Signature"
EVENT_ID_HEADER = "Klubb-Event-Id"
EVENT_TYPE_HEADER = "Klubb-Event-Type"
USER_AGENT = "klubb-webhooks/1"
MAX_ERROR_LENGTH = 500  # WebhookAttempt.error / WebhookDelivery.last_error columns
MAX_RESPONSE_BYTES = 64 * 1024
DEFAULT_BATCH_SIZE = 20  # deliveries leased (and attempted concurrently) at a time by one worker


# --- signing -------------------------------------------------------------------------------------------------------


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `Klubb-Signature` header value: ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``."""
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: datetime | None = None
) -> bool:
    """Receiver-side check of a `Klubb-Signature` header against the raw request body.

    True when some ``v1`` signature matches (constant-time compare) and ``t`` is within `tolerance_seconds` of `now`
    (default: the wall clock), which bounds replays. Malformed headers are False, never an exception.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return False
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        return False
    current = (now or datetime.now(UTC)).timestamp()
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = _digest(secret, timestamp, body)
    # Compare every candidate so timing does not reveal which one matched.
    matches = [hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in signatures]
    return any(matches)


def event_body(event: OutboxEvent) -> bytes:
    """The JSON body of a delivery: ``{"id", "type", "created_at", "data"}`` (orjson, RFC 3339 time)."""
    document: dict[str, Any] = {
        "id": event.id,
        "type": event.type,
        "created_at": event.created_at,
        "data": event.payload,
    }
    return orjson.dumps(document)


def request_headers(secret: str, event: OutboxEvent, body: bytes, at: datetime) -> dict[str, str]:
    """Headers of a delivery signed at business time `at`."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: sign(secret, int(at.timestamp()), body),
        EVENT_ID_HEADER: str(event.id),
        EVENT_TYPE_HEADER: event.type,
    }


# --- fan-out --------------------------------------------------------------------------------------------------------


def endpoint_matches(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """An endpoint with an empty `event_types` list receives every event."""
    return not endpoint.event_types or event_type in endpoint.event_types


async def fan_out(conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
    """One delivery per (active endpoint, matching event), inside the dispatch transaction.

    The unique (endpoint, event) constraint with ignore_conflicts makes a repeated fan-out harmless. An endpoint only
    receives events dispatched after it was created.
    """
    endpoints = await WebhookEndpoint.filter(active=True).using_db(conn)
    deliveries = [
        WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now, created_at=now)
        for event in events
        for endpoint in endpoints
        if endpoint_matches(endpoint, event.type)
    ]
    if deliveries:
        await WebhookDelivery.bulk_create(deliveries, ignore_conflicts=True, using_db=conn)


# --- claiming ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds the lease on; `lease` doubles as a fencing token when recording."""

    delivery: WebhookDelivery
    endpoint: WebhookEndpoint
    event: OutboxEvent
    lease: datetime


def _due(now: datetime) -> Q:
    return Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)


async def claim_due(limit: int, lease_seconds: float) -> list[Claim]:
    """Lease up to `limit` due deliveries for this worker (`loyalty.leases`: never one leased elsewhere)."""
    async with in_transaction() as conn:
        lease, claimed = await lease_due(WebhookDelivery, _due, limit, lease_seconds, conn)
        if not claimed:
            return []
        endpoints = {
            e.id: e for e in await WebhookEndpoint.filter(id__in={d.endpoint_id for d in claimed}).using_db(conn)
        }
        events = {e.id: e for e in await OutboxEvent.filter(id__in={d.event_id for d in claimed}).using_db(conn)}
        # A dispatch racing a deactivation can still create deliveries for the endpoint: close them here, unsent.
        closed = [d.id for d in claimed if not endpoints[d.endpoint_id].active]
        if closed:
            await (
                WebhookDelivery.filter(id__in=closed)
                .using_db(conn)
                .update(status=DeliveryStatus.FAILED, last_error="endpoint deactivated", locked_until=None)
            )
    return [
        Claim(delivery=d, endpoint=endpoints[d.endpoint_id], event=events[d.event_id], lease=lease)
        for d in claimed
        if endpoints[d.endpoint_id].active
    ]


# --- one attempt ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP attempt did and what the delivery became."""

    delivery_id: int
    status: DeliveryStatus
    status_code: int | None
    error: str
    duration_ms: int
    next_attempt_at: datetime | None
    recorded: bool  # False when the lease was lost meanwhile (another worker owns the delivery now)


async def post_once(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float
) -> tuple[int | None, str]:
    """POST once; returns (status code or None, error text). Never raises for network or HTTP failures."""
    try:
        # One overall deadline (httpx's own timeouts are per read/write/connect phase).
        async with asyncio.timeout(timeout_seconds):
            # Stream: only the status matters. Reading a small body lets the connection be reused; a huge one is
            # abandoned (the connection is then closed) instead of being loaded into memory.
            async with client.stream("POST", url, content=body, headers=headers, timeout=timeout_seconds) as response:
                status = response.status_code
                read = 0
                async for chunk in response.aiter_raw():
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES:
                        break
    except (TimeoutError, httpx.TimeoutException):
        return None, f"timeout after {timeout_seconds:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    if 200 <= status < 300:
        return status, ""
    return status, f"HTTP {status}"


async def deliver(
    client: httpx.AsyncClient, claim: Claim, *, timeout_seconds: float, retry_hours: float
) -> AttemptResult:
    """Make one signed attempt for a claimed delivery and record it (attempt row + delivery state).

    Success is a 2xx within `timeout_seconds`. A failure is retried after `backoff`, but never later than
    `retry_hours` after the event was created; once that horizon has passed the delivery is FAILED.
    """
    event, endpoint = claim.event, claim.endpoint
    body = event_body(event)
    attempted_at = clock.now()
    started = time.monotonic()
    status_code, error = await post_once(
        client, endpoint.url, body, request_headers(endpoint.secret, event, body, attempted_at), timeout_seconds
    )
    duration_ms = round((time.monotonic() - started) * 1000)
    return await record_attempt(
        claim,
        attempted_at=attempted_at,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
        retry_hours=retry_hours,
    )


async def record_attempt(
    claim: Claim,
    *,
    attempted_at: datetime,
    status_code: int | None,
    error: str,
    duration_ms: int,
    retry_hours: float,
) -> AttemptResult:
    """Write the attempt log row and move the delivery on (succeeded, rescheduled or failed), releasing the lease."""
    now = clock.now()
    attempts = claim.delivery.attempts + 1
    next_attempt_at: datetime | None = None
    if not error:
        status = DeliveryStatus.SUCCEEDED
        changes: dict[str, Any] = {"delivered_at": now}
    else:
        deadline = claim.event.created_at + timedelta(hours=retry_hours)
        if now >= deadline:
            status = DeliveryStatus.FAILED
            changes = {}
        else:
            status = DeliveryStatus.PENDING
            # The last try happens at the horizon rather than being skipped by a long backoff.
            next_attempt_at = min(now + backoff(attempts), deadline)
            changes = {"next_attempt_at": next_attempt_at}
    async with in_transaction() as conn:
        await WebhookAttempt.create(
            delivery_id=claim.delivery.id,
            attempted_at=attempted_at,
            status_code=status_code,
            error=error[:MAX_ERROR_LENGTH],
            duration_ms=duration_ms,
            using_db=conn,
        )
        # Fenced by our lease: if it expired and another worker re-claimed the row, that worker now owns its state.
        updated = (
            await WebhookDelivery.filter(id=claim.delivery.id, locked_until=claim.lease, status=DeliveryStatus.PENDING)
            .using_db(conn)
            .update(
                status=status,
                attempts=attempts,
                locked_until=None,
                last_status_code=status_code,
                last_error=error[:MAX_ERROR_LENGTH],
                **changes,
            )
        )
    if updated != 1:
        log.warning("webhook delivery %s: lease lost (or delivery closed) before recording", claim.delivery.id)
    elif status is DeliveryStatus.FAILED:
        log.warning("webhook delivery %s to %s failed for good: %s", claim.delivery.id, claim.endpoint.url, error)
    return AttemptResult(
        delivery_id=claim.delivery.id,
        status=status,
        status_code=status_code,
        error=error,
        duration_ms=duration_ms,
        next_attempt_at=next_attempt_at,
        recorded=updated == 1,
    )


# --- the consumer ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookConsumer:
    """Webhooks as an outbox consumer (`worker.consumers.Consumer`), delivering over `client`."""

    config: WorkerConfig
    client: httpx.AsyncClient
    batch_size: int = DEFAULT_BATCH_SIZE
    name: str = "webhooks"

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        await fan_out(conn, events, now)

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        """Attempt every delivery due now, `batch_size` leased and attempted concurrently at a time."""
        attempts = 0
        while stop is None or not stop.is_set():
            claims = await claim_due(self.batch_size, self.config.claim_lease_seconds)
            if not claims:
                break
            results = await asyncio.gather(
                *(
                    deliver(
                        self.client,
                        claim,
                        timeout_seconds=self.config.webhook_timeout_seconds,
                        retry_hours=self.config.webhook_retry_hours,
                    )
                    for claim in claims
                ),
                return_exceptions=True,  # one failing delivery must not abandon its siblings mid-flight
            )
            for claim, result in zip(claims, results, strict=True):
                if isinstance(result, Exception):
                    # Its lease expires and the delivery is retried; the attempt itself may or may not have happened.
                    if database_unavailable(result):
                        log.warning("webhook delivery %s not recorded: the database is unavailable", claim.delivery.id)
                    else:
                        log.error("webhook delivery %s crashed", claim.delivery.id, exc_info=result)
                elif isinstance(result, BaseException):
                    raise result
            attempts += len(claims)
        return attempts
