"""App push as an outbox consumer (`worker.consumers.Consumer`, built by `api`, run by the worker).

Fan-out: inside the dispatch transaction, `on_events` writes the messages events owe (by default
`loyalty.automations.on_events`: the transactional "points earned" automation, idempotent per event); the consumer
owns no other work per event.

Delivery (`deliver_due`), repeated until nothing is due or `stop` is set:
1. `loyalty.messages.release_due` releases due messages (consent, caps, quiet hours, expiry; the inbox; one
   `PushDelivery` per device);
2. due deliveries (PENDING, `next_attempt_at` passed, no live lease) are leased, at most `batch_size` (≤ 500, one
   `send_each_async` call) at a time (`loyalty.leases.lease_due`: two statements per batch);
3. each becomes a `push.fcm.Push`: title and body, data = the message's id, its offer's id and its deep link only
   (no personal data), collapse key = the message's `collapse_key` or "offer:<id>", TTL = the seconds left until
   `expires_at` (an expired one is dropped unsent), urgent → high priority;
4. the outcomes are recorded set-based under the lease (one UPDATE per outcome group, fenced by `locked_until`):
   SENT (FCM's message name, `sent_at`; the message's `delivered_at`; the device's `last_seen_at`), UNREGISTERED
   (the device deleted, the delivery DROPPED), RETRY (after `leases.backoff` or FCM's Retry-After, whichever is
   later), AUTH (logged at ERROR — our credentials are wrong — tokens kept, retried like RETRY), INVALID_MESSAGE
   (DROPPED). A delivery still failing `retry_hours` after it was owed is DROPPED (logged).

At least once: a worker killed after FCM accepted a push but before recording it leaves a lease that expires, and
the push is sent again (at most `lease_seconds` later); (message, device) is unique, so never more than that.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Case, F, Q, When
from tortoise.transactions import in_transaction

from loyalty import automations, clock, devices, inbox, messages
from loyalty.leases import backoff, lease_due
from loyalty.models import OutboxEvent, PushDelivery, PushDeliveryStatus, PushMessage
from push.config import MAX_BATCH
from push.fcm import MAX_TTL_SECONDS, Outcome, Push, PushResult

log = logging.getLogger("klubb.push.consumer")

MAX_ERROR = 500  # PushDelivery.last_error's length

EventHook = Callable[[BaseDBAsyncClient, Sequence[OutboxEvent], datetime], Awaitable[Any]]


class Sender(Protocol):
    async def send(self, pushes: Sequence[Push]) -> list[PushResult]:
        """One result per push, in order (`push.fcm.FcmSender`)."""
        ...


@dataclass(frozen=True)
class _Message:
    id: int
    title: str
    body: str
    target: str
    offer_id: int | None
    collapse_key: str
    urgent: bool
    expires_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """Leased deliveries (`lease` is the fencing token) with the messages they carry."""

    lease: datetime
    deliveries: list[PushDelivery]
    messages: dict[int, _Message]


def _due(now: datetime) -> Q:
    return Q(status=PushDeliveryStatus.PENDING, next_attempt_at__lte=now)


async def claim_due(limit: int, lease_seconds: float) -> Claim:
    """Lease up to `limit` due deliveries and read their messages: three statements."""
    async with in_transaction() as conn:
        # Ordered by the (status, next_attempt_at) index's column alone: with lease_due's default tie-break on id,
        # PostgreSQL sorted every pending delivery per batch (a campaign's share one time: 43 ms, not 0.3 ms, a
        # batch of 100 at 33,000; bench/README.md, push end to end).
        lease, rows = await lease_due(PushDelivery, _due, limit, lease_seconds, conn, order_by=("next_attempt_at",))
        found: dict[int, _Message] = {}
        if rows:
            for values in (
                await PushMessage.filter(id__in=sorted({r.message_id for r in rows}))
                .using_db(conn)
                .values_list("id", "title", "body", "target", "offer_id", "collapse_key", "urgent", "expires_at")
            ):
                found[values[0]] = _Message(*values)
    return Claim(lease, rows, found)


def to_push(delivery: PushDelivery, message: _Message, now: datetime) -> Push:
    """The FCM push of one delivery (ValueError if the message cannot be one, e.g. an empty title)."""
    # The member API's ids (what `pushOpened` and the app's screens take) and the inbox's own deep link.
    data = {"message_id": inbox.message_global_id(message.id), "deep_link": inbox.deep_link(message.target)}
    offer_id = None if message.offer_id is None else inbox.target_global_id(f"offer:{message.offer_id}")
    if offer_id is not None:
        data["offer_id"] = offer_id
    collapse = message.collapse_key or (f"offer:{message.offer_id}" if message.offer_id is not None else None)
    ttl = None
    if message.expires_at is not None:
        ttl = min(MAX_TTL_SECONDS, max(0, int((message.expires_at - now).total_seconds())))
    return Push(
        token=delivery.token,
        title=message.title,
        body=message.body,
        data=data,
        collapse_key=collapse,
        ttl_seconds=ttl,
        urgent=message.urgent,
    )


@dataclass
class _Outcomes:
    """A batch's outcomes, grouped into as few UPDATEs as they allow."""

    sent: dict[int, str]  # delivery id → FCM message name
    dropped: dict[str, list[int]]  # error → delivery ids
    retried: dict[tuple[int, datetime, str], list[int]]  # (attempts, next attempt, error) → ids
    dead_tokens: list[str]


async def record(claim: Claim, results: Sequence[tuple[PushDelivery, PushResult | str]], retry_hours: float) -> None:
    """Record a batch's outcomes under its lease (a delivery whose lease was lost records nothing). A result that
    is a str is a delivery dropped before sending (why)."""
    now = clock.now()
    outcomes = _Outcomes({}, defaultdict(list), defaultdict(list), [])
    auth = 0
    for delivery, result in results:
        if isinstance(result, str):
            outcomes.dropped[result[:MAX_ERROR]].append(delivery.id)
            continue
        error = (result.error or result.outcome.value)[:MAX_ERROR]
        if result.outcome is Outcome.SENT:
            outcomes.sent[delivery.id] = result.message_name or ""
        elif result.outcome is Outcome.UNREGISTERED:
            outcomes.dead_tokens.append(delivery.token)
            outcomes.dropped[error].append(delivery.id)
        elif result.outcome is Outcome.INVALID_MESSAGE:
            outcomes.dropped[error].append(delivery.id)
        else:  # RETRY, AUTH
            auth += result.outcome is Outcome.AUTH
            attempts = delivery.attempts + 1
            if now - delivery.created_at > timedelta(hours=retry_hours):
                log.warning("push delivery %s given up after %d attempts: %s", delivery.id, attempts, error)
                outcomes.dropped[error].append(delivery.id)
                continue
            wait = backoff(attempts)
            if result.retry_after is not None:
                wait = max(wait, timedelta(seconds=result.retry_after))
            outcomes.retried[(attempts, now + wait, error)].append(delivery.id)
    if auth:
        log.error("FCM refused our credentials for %d pushes: tokens kept, retried later (check KLUBB_PUSH_*)", auth)
    await _write(claim, outcomes, now)


async def _write(claim: Claim, outcomes: _Outcomes, now: datetime) -> None:
    by_id = {d.id: d for d in claim.deliveries}
    async with in_transaction() as conn:

        def fenced(ids: Sequence[int]) -> Any:
            return PushDelivery.filter(id__in=list(ids), locked_until=claim.lease).using_db(conn)

        if outcomes.sent:
            names = Case(*(When(id=i, then=name) for i, name in outcomes.sent.items()), default="")
            await fenced(list(outcomes.sent)).update(
                status=PushDeliveryStatus.SENT, fcm_message_id=names, sent_at=now, attempts=F("attempts") + 1,
                locked_until=None, last_error="",
            )  # fmt: skip
            message_ids = sorted({by_id[i].message_id for i in outcomes.sent})
            await (
                PushMessage.filter(id__in=message_ids, delivered_at__isnull=True)
                .using_db(conn)
                .update(delivered_at=now)
            )
            device_ids = sorted({d for i in outcomes.sent if (d := by_id[i].device_id) is not None})
            await devices.mark_seen(conn, device_ids, now)
        for error, ids in outcomes.dropped.items():
            await fenced(ids).update(
                status=PushDeliveryStatus.DROPPED, attempts=F("attempts") + 1, locked_until=None, last_error=error
            )
        for (attempts, at, error), ids in outcomes.retried.items():
            await fenced(ids).update(attempts=attempts, next_attempt_at=at, locked_until=None, last_error=error)
        if outcomes.dead_tokens:
            deleted = await devices.delete_tokens(outcomes.dead_tokens, conn)
            log.info("FCM: %d dead tokens, %d devices deleted", len(set(outcomes.dead_tokens)), deleted)


@dataclass(frozen=True)
class PushSending:
    """The push consumer, sending through `sender` (`push.fcm.FcmSender`, or `LoggedSender` with push off)."""

    sender: Sender
    lease_seconds: float = 60.0
    retry_hours: float = 24.0
    batch_size: int = MAX_BATCH
    release_batch: int = 1000
    on_events: EventHook | None = automations.on_events  # None: events owe no messages
    name: str = "push"

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"push batch size must be 1..{MAX_BATCH}, not {self.batch_size}")

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        if self.on_events is not None:
            await self.on_events(conn, events, now)

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        """Release due messages and send due deliveries, a batch at a time; the number of pushes attempted."""
        attempts = 0
        while stop is None or not stop.is_set():
            released = await messages.release_due(self.release_batch)
            claim = await claim_due(self.batch_size, self.lease_seconds)
            if not claim.deliveries:
                if released.total:
                    continue
                break
            attempts += await self._send(claim)
        return attempts

    async def _send(self, claim: Claim) -> int:
        now = clock.now()
        results: list[tuple[PushDelivery, PushResult | str]] = []
        sending: list[tuple[PushDelivery, Push]] = []
        for delivery in claim.deliveries:
            message = claim.messages.get(delivery.message_id)
            if message is None:  # deleted with its member meanwhile (CASCADE): nothing to send
                results.append((delivery, "message gone"))
            elif message.expires_at is not None and message.expires_at <= now:
                results.append((delivery, "expired"))
            else:
                try:
                    sending.append((delivery, to_push(delivery, message, now)))
                except ValueError as error:
                    log.warning("push delivery %s cannot be sent: %s", delivery.id, error)
                    results.append((delivery, f"invalid: {error}"))
        if sending:
            answers = await self.sender.send([push for _, push in sending])
            results += [(delivery, answer) for (delivery, _), answer in zip(sending, answers, strict=True)]
        await record(claim, results, self.retry_hours)
        return len(sending)


class LoggedSender:
    """Push switched off: every push is logged (ids only) and counts as sent."""

    async def send(self, pushes: Sequence[Push]) -> list[PushResult]:
        for push in pushes:
            log.info("push (not sent, push is off) to %s…: %s", push.token[:8], dict(push.data))
        return [PushResult(push, Outcome.SENT, message_name="logged") for push in pushes]
