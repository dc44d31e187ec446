"""Outbox consumers: what becomes of domain events once their transaction has committed.

The dispatcher (`worker.dispatch`) reads undispatched events in batches and, in one transaction per batch, hands
them to every consumer's `fan_out`, which turns them into that consumer's own durable work (a webhook delivery per
matching endpoint; later a push per device, a pass update per registered wallet) — idempotently, by unique keys —
and then marks the events dispatched. Each consumer delivers its due work outside that transaction (`deliver_due`),
with its own claims, leases, retries and records. Both halves are at least once: the events are marked in the same
transaction as the fan-out, and a delivery whose worker dies keeps a lease that expires.

Consumers of other packages (push, wallet) are built by the composition root (`api`) and handed to the runner, so
`worker` depends on nothing but `loyalty`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.models import OutboxEvent


class Consumer(Protocol):
    @property  # read-only, so a frozen dataclass's field satisfies it
    def name(self) -> str:
        """A short name for the consumer, e.g. "webhooks"."""
        ...

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        """Inside the dispatch transaction `conn`: record this consumer's work for `events` (safe to repeat)."""
        ...

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        """Attempt the work that is due now, stopping between batches once `stop` is set; the number of attempts."""
        ...
