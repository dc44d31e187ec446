"""Wake-ups for the outbox worker: PostgreSQL tells it, at commit, that outbox events were written.

Migration 0010 gives `outbox_event` a statement-level trigger calling `pg_notify('klubb_outbox', '')`. PostgreSQL
delivers a notification when the writing transaction commits — once per transaction however many rows and
statements it inserted (equal notifications coalesce), never for a rollback. `OutboxListener` holds ONE connection
of its own (outside Tortoise's pool: `loyalty.db.keep_session` relies on pooled connections never LISTENing)
that LISTENs on the channel and sets `wake`; `worker.runner.run_forever` waits on it between polls, so an idle worker
sees a commit within milliseconds instead of at its next poll.

A notification is only a wake-up, never the truth: the worker still polls every `poll_seconds` and dispatch reads
the outbox table, so a lost notification (the listener's connection dropped, a server restart, a pooler in
transaction mode, where LISTEN does not work) costs latency, never an event. A lost connection is re-made with
backoff (`first_retry_seconds` doubling up to `max_retry_seconds`), and `wake` is set once it LISTENs again, since
what committed in between was notified to nobody. A half-open connection (no close ever arrives) is found by a
`SELECT 1` every `ping_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from loyalty.db import dedicated_connection

log = logging.getLogger("klubb.worker")

CHANNEL = "klubb_outbox"  # migration 0010's trigger notifies it
APPLICATION_NAME = "klubb outbox listener"  # how the listener's connection shows in pg_stat_activity


@dataclass
class OutboxListener:
    """LISTENs on `CHANNEL` over a connection of its own and sets `wake` on every notification (`run`)."""

    database_url: str
    ping_seconds: float = 30.0
    ping_timeout_seconds: float = 10.0
    first_retry_seconds: float = 0.5
    max_retry_seconds: float = 30.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Set while LISTEN is active: what tests and logs go by.
    listening: asyncio.Event = field(default_factory=asyncio.Event)
    connections_made: int = 0

    def retry_delay(self, failures: int) -> float:
        """Seconds to wait before reconnecting after `failures` (≥ 1) failures in a row."""
        return min(self.max_retry_seconds, self.first_retry_seconds * 2 ** min(failures - 1, 16))

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after every loss; never raises otherwise."""
        failures = 0
        while True:
            try:
                connection = await dedicated_connection(self.database_url, application_name=APPLICATION_NAME)
            except Exception as error:  # refused, unreachable, auth, a server restarting: wait and try again
                failures += 1
                delay = self.retry_delay(failures)
                log.warning(
                    "outbox listener: cannot connect (%s: %s); the worker polls meanwhile; retrying in %.1f s",
                    type(error).__name__,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            try:
                await self._listen(connection)
                failures = 0
            except Exception as error:
                log.warning("outbox listener: %s: %s", type(error).__name__, error)
            finally:
                self.listening.clear()
                await _close(connection)
            failures += 1
            delay = self.retry_delay(failures)
            log.warning("outbox listener: connection lost; the worker polls meanwhile; reconnecting in %.1f s", delay)
            await asyncio.sleep(delay)

    async def _listen(self, connection: asyncpg.Connection) -> None:
        """LISTEN on `connection` until it is lost (closed by the server, or a ping failing)."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _connection: lost.set())
        await connection.add_listener(CHANNEL, self._notified)
        self.connections_made += 1
        self.listening.set()
        self.wake.set()  # commits made while nobody listened were notified to nobody
        log.info("outbox listener: listening on %s", CHANNEL)
        while not connection.is_closed():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.ping_seconds)
            if lost.is_set():
                return
            try:
                await asyncio.wait_for(connection.fetchval("SELECT 1"), self.ping_timeout_seconds)
            except Exception as error:  # half-open, or the server went away between two notifications
                log.warning("outbox listener: ping failed: %s: %s", type(error).__name__, error)
                return

    def _notified(self, connection: object, pid: int, channel: str, payload: object) -> None:
        self.wake.set()


async def _close(connection: asyncpg.Connection) -> None:
    """Close politely (the server logs no broken connection), or cut it if that does not finish soon."""
    if connection.is_closed():
        return
    with contextlib.suppress(Exception):
        await asyncio.wait_for(connection.close(), 2.0)
    if not connection.is_closed():
        connection.terminate()


@contextlib.asynccontextmanager
async def outbox_wakeups(listen_url: str | None) -> AsyncIterator[OutboxListener | None]:
    """A listener on `listen_url` running for the block (None without a URL: SQLite, or listening turned off; the
    worker then polls alone). It never fails the block: a listener that cannot connect keeps retrying."""
    if listen_url is None:
        yield None
        return
    listener = OutboxListener(listen_url)
    task = asyncio.create_task(listener.run(), name=APPLICATION_NAME)
    try:
        yield listener
    finally:
        task.cancel()
        await asyncio.wait({task})  # not `await task`: that would swallow a cancellation of our own caller
