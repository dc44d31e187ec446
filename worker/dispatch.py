"""Fan-out: hand undispatched outbox events to every consumer, then mark them dispatched (`worker.consumers`)."""

from __future__ import annotations

from collections.abc import Sequence

from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.models import OutboxEvent
from worker.consumers import Consumer


async def dispatch_batch(consumers: Sequence[Consumer], limit: int = 500) -> int:
    """Fan out up to `limit` undispatched events (oldest first) to every consumer; returns how many were dispatched.

    One transaction: the consumers' work and the events' `dispatched_at` commit together. Concurrent dispatchers on
    PostgreSQL skip each other's locked events; each consumer's unique keys make a repeated fan-out harmless anyway.
    An event no consumer wants is marked dispatched too.
    """
    now = clock.now()
    async with in_transaction() as conn:
        events = (
            await OutboxEvent.filter(dispatched_at__isnull=True)
            .order_by("id")
            .limit(limit)
            .using_db(conn)
            .select_for_update(skip_locked=True)
        )
        if not events:
            return 0
        for consumer in consumers:
            await consumer.fan_out(conn, events, now)
        await OutboxEvent.filter(id__in=[e.id for e in events]).using_db(conn).update(dispatched_at=now)
    return len(events)


async def dispatch_pending(consumers: Sequence[Consumer], batch_size: int = 500) -> int:
    """Dispatch every undispatched event, batch by batch; returns how many were dispatched."""
    total = 0
    while True:
        count = await dispatch_batch(consumers, batch_size)
        total += count
        if count < batch_size:
            return total
