"""The live-updates consumer: outbox events → one notice per member → the broker the API processes listen on.

Where the publishing happens: `fan_out` runs inside the dispatch transaction, and a notice published from there could
reach a subscriber before that transaction commits — the subscriber would read the old state and show it until the
next change. So `fan_out` only queues the notices in memory, and `deliver_due`, which the runner calls after the
dispatch batches have committed (`worker.runner.drain_once`), publishes them. A dispatch that rolls back after
queuing leaves a notice for nothing new: harmless, since subscribers read fresh state.

Live updates are at most once past the commit (a worker that dies between the commit and the publish loses that
notice): the app reads everything when it connects, so a lost notice delays a screen's refresh until the next change,
never corrupts it. That is why nothing here is durable. A broker failure is logged and the notices dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.live import Change, MemberNotice, notices
from loyalty.models import OutboxEvent

log = logging.getLogger("klubb.live")


class Publisher(Protocol):
    """Where notices go (`api.live`: the in-process broker, or Redis pub/sub)."""

    async def publish(self, notices: Sequence[MemberNotice]) -> None: ...


@dataclass
class LiveConsumer:
    publisher: Publisher
    name: str = "live"
    _queued: dict[int, set[Change]] = field(default_factory=dict, init=False, repr=False)

    async def fan_out(self, conn: BaseDBAsyncClient, events: Sequence[OutboxEvent], now: datetime) -> None:
        # Nothing durable (see the module's docstring): queued until deliver_due, merged per member.
        for notice in notices((event.type, event.member_id) for event in events):
            self._queued.setdefault(notice.member_id, set()).update(notice.changes)

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        if not self._queued:
            return 0
        batch = [MemberNotice(member_id, frozenset(changes)) for member_id, changes in self._queued.items()]
        self._queued = {}
        try:
            await self.publisher.publish(batch)
        except Exception as error:  # the broker is down: these notices are lost (the module's docstring says why)
            log.warning("live updates: %d notices not published: %s: %s", len(batch), type(error).__name__, error)
            return 0
        return len(batch)
