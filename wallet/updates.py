"""Apple pass updates as an outbox consumer (`worker.consumers.Consumer`, built by `api`, run by the worker).

Fan-out (inside the dispatch transaction): for the members of points, tier and profile events, the Apple passes
whose content changed get a new update tag (`loyalty.wallet.refresh_passes`), and every device registered for them
is owed one more push (`request_pushes`: one `WalletPush` row per push token, so a burst of changes is one push).

Delivery: due rows (`sent < wanted`, `next_attempt_at` passed, no live lease) are leased like webhook deliveries
(SKIP LOCKED on PostgreSQL, a conditional UPDATE on both engines), pushed concurrently, and recorded under the
lease: sent (`sent` = the `wanted` that was pushed; a change meanwhile makes it due again), dead token (410: the
token's registrations and its row are deleted), or retried after a backoff (30 s doubling to 1 h; given up after
`retry_hours`, logged).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from loyalty import clock, wallet
from loyalty.db import database_unavailable
from loyalty.leases import backoff, lease_due
from loyalty.models import OutboxEvent, WalletPlatform, WalletPush
from wallet.apns import Pushes, PushOutcome, PushResult

log = logging.getLogger("klubb.wallet.updates")

DEFAULT_BATCH_SIZE = 200
MAX_ERROR = 500


@dataclass(frozen=True)
class PushClaim:
    row: WalletPush
    lease: datetime


def _due(now: datetime) -> Q:
    return Q(sent__lt=F("wanted"), next_attempt_at__lte=now)


async def claim_due(limit: int, lease_seconds: float) -> list[PushClaim]:
    """Lease up to `limit` due pushes (`loyalty.leases`: never one leased elsewhere)."""
    async with in_transaction() as conn:
        lease, rows = await lease_due(WalletPush, _due, limit, lease_seconds, conn)
    return [PushClaim(row, lease) for row in rows]


async def record(claim: PushClaim, result: PushResult, retry_hours: float) -> None:
    """Move the push on after one attempt, fenced by the lease (a lost lease records nothing)."""
    now = clock.now()
    row = claim.row
    fenced = WalletPush.filter(id=row.id, locked_until=claim.lease)
    if result.outcome is PushOutcome.SENT:
        await fenced.update(
            sent=row.wanted, attempts=0, locked_until=None, pushed_at=now, last_status_code=result.status_code,
            last_error="",
        )  # fmt: skip
        return
    if result.outcome is PushOutcome.UNREGISTERED:
        if await fenced.delete():
            forgotten = await wallet.forget_push_token(row.push_token)
            log.info(
                "APNs token %s… is dead (%s): %d registrations deleted", row.push_token[:8], result.reason, forgotten
            )
        return
    attempts = row.attempts + 1
    failing_since = row.pushed_at if row.pushed_at and row.pushed_at > row.created_at else row.created_at
    if attempts > 1 and now - failing_since > timedelta(hours=retry_hours):
        await fenced.update(
            sent=row.wanted, attempts=0, locked_until=None, last_status_code=result.status_code,
            last_error=result.reason[:MAX_ERROR],
        )  # fmt: skip
        log.warning("APNs push to %s… given up after %d attempts: %s", row.push_token[:8], attempts, result.reason)
        return
    await fenced.update(
        attempts=attempts, locked_until=None, next_attempt_at=now + backoff(attempts),
        last_status_code=result.status_code, last_error=result.reason[:MAX_ERROR],
    )  # fmt: skip


@dataclass(frozen=True)
class AppleUpdates:
    """The Apple pass updates consumer, pushing through `pushes` (APNs, or the log in development)."""

    pushes: Pushes
    lease_seconds: float = 60.0
    retry_hours: float = 24.0
    batch_size: int = DEFAULT_BATCH_SIZE
    name: str = "wallet-apple"

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        member_ids = sorted(
            {e.member_id for e in events if e.member_id is not None and e.type in wallet.CONTENT_EVENTS}
        )
        if not member_ids:
            return
        changed = await wallet.refresh_passes(conn, member_ids, now, platform=WalletPlatform.APPLE)
        if changed:
            await wallet.request_pushes(conn, [p.id for p in changed], now)

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        """Push everything due now, `batch_size` leased and pushed concurrently at a time."""
        attempts = 0
        while stop is None or not stop.is_set():
            claims = await claim_due(self.batch_size, self.lease_seconds)
            if not claims:
                break
            results = await asyncio.gather(*(self.pushes.push(c.row.push_token) for c in claims))
            outcomes = await asyncio.gather(
                *(record(claim, result, self.retry_hours) for claim, result in zip(claims, results, strict=True)),
                return_exceptions=True,
            )
            for claim, outcome in zip(claims, outcomes, strict=True):
                if isinstance(outcome, Exception):  # its lease expires and the push is retried
                    if database_unavailable(outcome):
                        log.warning("APNs push %s not recorded: the database is unavailable", claim.row.id)
                    else:
                        log.error("APNs push %s not recorded", claim.row.id, exc_info=outcome)
                elif isinstance(outcome, BaseException):
                    raise outcome
            attempts += len(claims)
        return attempts
