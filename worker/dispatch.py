"""Fan-out: turn undispatched outbox events into one WebhookDelivery per matching active endpoint."""

from __future__ import annotations

from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.models import OutboxEvent, WebhookDelivery, WebhookEndpoint


def endpoint_matches(endpoint: WebhookEndpoint, event_type: str) -> bool:
    """An endpoint with an empty `event_types` list receives every event."""
    return not endpoint.event_types or event_type in endpoint.event_types


async def dispatch_batch(limit: int = 500) -> int:
    """Fan out up to `limit` undispatched events (oldest first); returns how many events were dispatched.

    Concurrent dispatchers on PostgreSQL skip each other's locked events; the unique (endpoint, event) constraint with
    ignore_conflicts makes a repeated fan-out harmless anyway. Events that match no endpoint are marked dispatched too:
    an endpoint only receives events dispatched after it was created.
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
        endpoints = await WebhookEndpoint.filter(active=True).using_db(conn)
        deliveries = [
            WebhookDelivery(endpoint_id=endpoint.id, event_id=event.id, next_attempt_at=now, created_at=now)
            for event in events
            for endpoint in endpoints
            if endpoint_matches(endpoint, event.type)
        ]
        if deliveries:
            await WebhookDelivery.bulk_create(deliveries, ignore_conflicts=True, using_db=conn)
        await OutboxEvent.filter(id__in=[e.id for e in events]).using_db(conn).update(dispatched_at=now)
    return len(events)


async def dispatch_pending(batch_size: int = 500) -> int:
    """Dispatch every undispatched event, batch by batch; returns how many were dispatched."""
    total = 0
    while True:
        count = await dispatch_batch(batch_size)
        total += count
        if count < batch_size:
            return total
