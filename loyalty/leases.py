"""Leases and retry backoff on due work rows: how every consumer (webhook deliveries, wallet pushes, Google
syncs) takes its batch and waits after a failure.

A row is claimable when its own condition holds and no live lease covers it (``locked_until`` empty or past).
PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` keeps concurrent workers off each other's rows. Both engines: the
lease is taken by a conditional UPDATE that repeats the condition, whose row count decides, so a row leased elsewhere
meanwhile (or on SQLite, where FOR UPDATE is a no-op) is never claimed twice. The lease time is also the fencing token:
a consumer records its outcome only where ``locked_until`` still equals it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.models import Model

from loyalty import clock, sql

LeasedModel = TypeVar("LeasedModel", bound=Model)


BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)


def backoff(attempt: int) -> timedelta:
    """Delay after failed attempt number `attempt` (1-based): 30 s, 1 min, 2 min, … capped at 1 h."""
    if attempt >= 8:  # 30 s * 2**7 = 64 min > cap; also keeps the exponent small
        return BACKOFF_CAP
    delay: timedelta = BACKOFF_BASE * 2 ** (attempt - 1)
    return min(delay, BACKOFF_CAP)


def unleased(now: datetime) -> Q:
    """No live lease covers the row at `now`."""
    return Q(locked_until__isnull=True) | Q(locked_until__lt=now)


async def lease_due(
    model: type[LeasedModel],
    due: Callable[[datetime], Q],
    limit: int,
    lease_seconds: float,
    conn: BaseDBAsyncClient,
    order_by: Sequence[str] = ("next_attempt_at", "id"),
) -> tuple[datetime, list[LeasedModel]]:
    """Lease up to `limit` rows of `model` that are `due` and unleased, first in `order_by` first.

    Runs in the caller's transaction `conn` (a consumer may read more under it); returns the lease (the fencing
    token) and the rows, each with ``locked_until`` set to it. Two statements whatever the batch: the candidates
    (``FOR UPDATE SKIP LOCKED``), then one conditional ``UPDATE … WHERE id IN (…) AND <claimable> RETURNING id``.
    """
    now = clock.now()
    lease = now + timedelta(seconds=lease_seconds)
    claimable = due(now) & unleased(now)
    candidates = (
        await model.filter(claimable)
        .order_by(*order_by)
        .limit(limit)
        .using_db(conn)
        .select_for_update(skip_locked=True)
    )
    if not candidates:
        return lease, []
    claimed = set(
        await sql.update_returning_ids(
            model.filter(claimable, id__in=[row.pk for row in candidates]).using_db(conn).update(locked_until=lease)
        )
    )
    leased: list[LeasedModel] = []
    for row in candidates:
        if row.pk in claimed:
            row.locked_until = lease
            leased.append(row)
    return lease, leased
