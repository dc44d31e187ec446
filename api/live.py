"""The brokers of live updates (`memberUpdated`): how a notice from the outbox worker reaches the websockets of its
member, in this process or in every API process.

- `LocalBroker` (the embedded default): the embedded worker publishes, this process's subscribers receive.
- `RedisBroker` (`KLUBB_REDIS_URL`): every publisher PUBLISHes to one channel; every API process holds ONE
  subscription to it (started with the first websocket, kept while any is open, re-established after a Redis
  outage) and routes each notice by member id to its local subscribers — never one Redis subscription per socket.

A subscriber's inbox coalesces: notices arriving faster than its socket drains merge into one set of changes (each
notice means "read again"), so a slow client costs a set, not a growing queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from loyalty.live import Change, MemberNotice, decode

log = logging.getLogger("klubb.live")

CHANNEL = "klubb:live"


@dataclass(frozen=True)
class LiveLimits:
    """The socket's limits (`Settings.live_limits()`; the defaults are the settings' defaults)."""

    connections_per_member: int = 5
    idle_seconds: float = 60.0
    ping_seconds: float = 20.0
    init_seconds: float = 10.0
    max_message_bytes: int = 16 * 1024


class Inbox:
    """One subscription's pending changes: merged, never queued (`schema.ports.LiveSubscription`)."""

    def __init__(self, broker: LocalBroker, member_id: int) -> None:
        self.broker = broker
        self.member_id = member_id
        self.pending: set[Change] = set()
        self.ready = asyncio.Event()

    def put(self, changes: frozenset[Change]) -> None:
        self.pending.update(changes)
        self.ready.set()

    async def next(self) -> frozenset[Change]:
        await self.ready.wait()
        self.ready.clear()
        changes, self.pending = frozenset(self.pending), set()
        return changes

    def close(self) -> None:
        self.broker.forget(self)


class LocalBroker:
    """In-process routing from notices to the subscribers of their member (`schema.ports.LiveUpdates` and
    `worker.live.Publisher`)."""

    def __init__(self) -> None:
        self._inboxes: dict[int, set[Inbox]] = {}

    @property
    def subscribers(self) -> int:
        return sum(len(inboxes) for inboxes in self._inboxes.values())

    def route(self, notice: MemberNotice) -> None:
        for inbox in self._inboxes.get(notice.member_id, ()):
            inbox.put(notice.changes)

    async def publish(self, notices: Sequence[MemberNotice]) -> None:
        for notice in notices:
            self.route(notice)

    async def subscribe(self, member_id: int) -> Inbox:
        inbox = Inbox(self, member_id)
        self._inboxes.setdefault(member_id, set()).add(inbox)
        await self._started()
        return inbox

    def forget(self, inbox: Inbox) -> None:
        inboxes = self._inboxes.get(inbox.member_id)
        if inboxes is not None:
            inboxes.discard(inbox)
            if not inboxes:
                del self._inboxes[inbox.member_id]

    async def _started(self) -> None:
        """Hook: the Redis broker starts its one subscription here."""

    async def aclose(self) -> None:
        """Nothing to release in process."""


class RedisBroker(LocalBroker):
    """Redis pub/sub across processes: `publish` PUBLISHes (one round trip per batch, pipelined); `listen` routes from
    the process's one subscription (see the module's docstring)."""

    def __init__(self, url: str, *, channel: str = CHANNEL, retry_seconds: float = 1.0) -> None:
        super().__init__()
        self.redis = aioredis.Redis.from_url(url)
        self.channel = channel
        self.retry_seconds = retry_seconds
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def publish(self, notices: Sequence[MemberNotice]) -> None:
        if not notices:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for notice in notices:
                pipe.publish(self.channel, notice.encode())
            await pipe.execute()

    async def _started(self) -> None:
        if self._listener is None or self._listener.done():
            self._subscribed.clear()
            self._listener = asyncio.create_task(self._listen_forever(), name="klubb-live-redis")
        # The first websocket waits until the subscription stands, so nothing published after its ack is missed;
        # while Redis is down it does not wait forever (the listener keeps retrying and the socket stays open).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), 5.0)

    async def _listen_forever(self) -> None:
        # Checked after every subscription ends, so a websocket arriving while it winds down is not left unserved.
        delay = self.retry_seconds
        while self._inboxes:
            try:
                await self._listen_once()
            except Exception as error:  # Redis went away: retry (backing off to 30 s while it stays away)
                if self._subscribed.is_set():
                    delay = self.retry_seconds  # it was up: a fresh outage
                log.warning(
                    "live updates: Redis subscription lost (%s: %s); retrying in %.0f s",
                    type(error).__name__,
                    error,
                    delay,
                )
                self._subscribed.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                self._subscribed.clear()

    async def _listen_once(self) -> None:
        async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
            await pubsub.subscribe(self.channel)
            self._subscribed.set()
            while self._inboxes:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                notice = decode(message["data"])
                if notice is None:
                    log.warning("live updates: ignored a message on %s that is not a notice", self.channel)
                    continue
                self.route(notice)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.redis.aclose()
