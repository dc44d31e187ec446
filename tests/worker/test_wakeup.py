"""The worker wakes on a commit of outbox events (PostgreSQL LISTEN/NOTIFY), and still polls when it cannot listen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from api.app import run_embedded_worker
from api.settings import Settings
from loyalty import events
from loyalty.clock import FrozenClock
from loyalty.models import OutboxEvent
from loyalty.webhooks import create_webhook_endpoint
from tests.server import free_port, start_worker, stop_worker
from tests.worker.conftest import Receiver, emit_event
from worker.runner import run_forever
from worker.wakeup import APPLICATION_NAME, OutboxListener, outbox_wakeups

LONG_POLL = 30.0  # an idle worker's poll: far beyond what any test waits, so only a wake-up can explain a delivery


@dataclass
class Recorder:
    """A consumer that notes when each event reaches its fan-out; `on_deliver` runs in `deliver_due`."""

    name: str = "recorder"
    seen: list[int] = field(default_factory=list)
    seen_at: dict[int, float] = field(default_factory=dict)  # event id -> time.monotonic()
    drains: int = 0
    fan_outs: int = 0
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False

    async def fan_out(self, conn: BaseDBAsyncClient, batch: Sequence[OutboxEvent], now: datetime) -> None:
        self.fan_outs += 1
        if self.fail:
            raise RuntimeError("consumer broken")
        for event in batch:
            self.seen.append(event.id)
            self.seen_at[event.id] = time.monotonic()
        self.arrived.set()

    async def deliver_due(self, stop: asyncio.Event | None) -> int:
        self.drains += 1
        return 0


async def _arrival(recorder: Recorder, event_id: int, seconds: float) -> float | None:
    """When `event_id` reached the recorder (time.monotonic()), waiting up to `seconds`; None if it did not."""
    deadline = time.monotonic() + seconds
    while event_id not in recorder.seen_at and time.monotonic() < deadline:
        recorder.arrived.clear()
        try:
            await asyncio.wait_for(recorder.arrived.wait(), max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            break
    return recorder.seen_at.get(event_id)


async def _settled(recorder: Recorder) -> None:
    """Wait until the worker has made its first drains (the start's and the one the listener's first wake-up
    asks for) and sits in its idle wait."""
    for _ in range(100):
        if recorder.drains >= 1:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)


async def _commit_and_time(recorder: Recorder) -> float | None:
    """Commit one event; seconds from its commit to its fan-out, or None if it did not arrive within 3 s."""
    event = await emit_event(events.POINTS_EARNED, points=1)
    committed = time.monotonic()
    arrived = await _arrival(recorder, event.id, 3.0)
    return None if arrived is None else arrived - committed


async def _listener_backends() -> list[int]:
    rows = await connections.get("default").execute_query_dict(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
        [APPLICATION_NAME],
    )
    return sorted(row["pid"] for row in rows)


@pytest.mark.postgres_only
async def test_an_idle_worker_dispatches_a_commit_within_a_second_despite_a_long_poll(db: str) -> None:
    # given a worker polling every 30 s, listening on the test's PostgreSQL, idle after its first drains
    recorder, stop = Recorder(), asyncio.Event()
    async with outbox_wakeups(db) as listener:
        assert listener is not None
        worker = asyncio.create_task(run_forever([recorder], stop, LONG_POLL, grace_seconds=1.0, wake=listener.wake))
        await asyncio.wait_for(listener.listening.wait(), 10)
        await _settled(recorder)

        # when an event commits
        latency = await _commit_and_time(recorder)

        stop.set()
        await asyncio.wait_for(worker, 5)

    # then the worker dispatched it within a second of the commit, long before its next poll
    assert latency is not None
    assert latency < 1.0
    assert len(recorder.seen) == 1


@pytest.mark.postgres_only
async def test_without_a_listener_the_same_worker_waits_for_its_poll(db: str) -> None:
    # given the same idle worker, polling every 30 s, with nothing listening
    recorder, stop = Recorder(), asyncio.Event()
    worker = asyncio.create_task(run_forever([recorder], stop, LONG_POLL, grace_seconds=1.0))
    await _settled(recorder)

    # when an event commits
    event = await emit_event(events.POINTS_EARNED, points=1)

    # then nothing dispatches it within a second (what the listener saves)
    assert await _arrival(recorder, event.id, 1.0) is None
    stop.set()
    await asyncio.wait_for(worker, 5)
    assert recorder.seen == []


@pytest.mark.postgres_only
async def test_the_listener_reconnects_after_its_connection_is_terminated_and_wakes_the_worker_again(db: str) -> None:
    # given an idle listening worker polling every 30 s
    recorder, stop = Recorder(), asyncio.Event()
    async with outbox_wakeups(db) as listener:
        assert listener is not None
        worker = asyncio.create_task(run_forever([recorder], stop, LONG_POLL, grace_seconds=1.0, wake=listener.wake))
        await asyncio.wait_for(listener.listening.wait(), 10)
        [first] = await _listener_backends()

        # when its connection is terminated by the server
        await connections.get("default").execute_query("SELECT pg_terminate_backend($1)", [first])

        # then it listens again on a new connection (after its first retry delay), the old one gone
        for _ in range(100):
            if listener.connections_made == 2 and listener.listening.is_set():
                break
            await asyncio.sleep(0.05)
        assert listener.connections_made == 2
        backends = await _listener_backends()
        assert len(backends) == 1
        assert backends != [first]
        await _settled(recorder)

        # and a commit still reaches the worker within a second
        latency = await _commit_and_time(recorder)
        stop.set()
        await asyncio.wait_for(worker, 5)

    assert latency is not None
    assert latency < 1.0
    assert len(recorder.seen) == 1
    # the listener closed its connection on the way out (the backend exits just after)
    for _ in range(50):
        if await _listener_backends() == []:
            break
        await asyncio.sleep(0.05)
    assert await _listener_backends() == []


async def test_a_worker_whose_listener_cannot_connect_still_polls(db: str) -> None:
    # given a worker polling every 0.2 s whose listener points at a port where no PostgreSQL answers
    listener = OutboxListener(f"postgres://postgres@127.0.0.1:{free_port()}/nothing", first_retry_seconds=0.05)
    recorder, stop = Recorder(), asyncio.Event()
    listening = asyncio.create_task(listener.run())
    worker = asyncio.create_task(run_forever([recorder], stop, 0.2, grace_seconds=1.0, wake=listener.wake))
    await _settled(recorder)

    # when an event commits
    event = await emit_event(events.POINTS_EARNED, points=1)

    # then the poll dispatches it (the notification is only a wake-up) while the listener keeps retrying
    assert await _arrival(recorder, event.id, 2.0) is not None
    assert not listener.listening.is_set()
    assert listener.connections_made == 0
    stop.set()
    listening.cancel()
    await asyncio.wait_for(asyncio.gather(worker, listening, return_exceptions=True), 5)
    assert recorder.seen == [event.id]


async def test_a_wake_up_during_a_drain_is_drained_right_after_it(db: str) -> None:
    # given a worker polling every 30 s whose first drain sees, while it runs, an event commit and its wake-up
    wake, stop = asyncio.Event(), asyncio.Event()
    recorder = Recorder()
    committed: list[OutboxEvent] = []
    did_commit = asyncio.Event()

    async def commit_during_the_drain(stop_: asyncio.Event | None) -> int:
        recorder.drains += 1
        if recorder.drains == 1:
            committed.append(await emit_event(events.POINTS_EARNED, points=1))
            wake.set()  # what the listener does when the commit's notification arrives
            did_commit.set()
        return 0

    recorder.deliver_due = commit_during_the_drain  # type: ignore[method-assign]

    # when the worker runs
    worker = asyncio.create_task(run_forever([recorder], stop, LONG_POLL, grace_seconds=1.0, wake=wake))

    # then the event is dispatched by the next drain at once, not after the 30 s poll
    await asyncio.wait_for(did_commit.wait(), 5)
    [event] = committed
    assert await _arrival(recorder, event.id, 1.0) is not None
    stop.set()
    await asyncio.wait_for(worker, 5)
    assert recorder.seen == [event.id]


async def test_after_a_failed_drain_wake_ups_do_not_shorten_the_poll(db: str) -> None:
    # given a worker polling every 0.5 s whose drain fails, and wake-ups arriving every 10 ms
    wake, stop = asyncio.Event(), asyncio.Event()
    recorder = Recorder(fail=True)
    await emit_event(events.POINTS_EARNED, points=1)

    async def keep_waking() -> None:
        while True:
            wake.set()
            await asyncio.sleep(0.01)

    waking = asyncio.create_task(keep_waking())
    worker = asyncio.create_task(run_forever([recorder], stop, 0.5, grace_seconds=1.0, wake=wake))

    # when 1.2 s pass
    await asyncio.sleep(1.2)
    stop.set()
    await asyncio.wait_for(worker, 5)
    waking.cancel()

    # then it retried at its poll (at 0, 0.5 and 1.0 s; a loaded machine may miss the last), not at the pace of the
    # wake-ups (about 120 times); nothing was dispatched
    assert 2 <= recorder.fan_outs <= 3
    assert await OutboxEvent.filter(dispatched_at__isnull=True).count() == 1
    assert recorder.seen == []


async def _wait_for_listener_backends(count: int, seconds: float) -> list[int]:
    backends: list[int] = []
    for _ in range(int(seconds / 0.05)):
        backends = await _listener_backends()
        if len(backends) == count:
            return backends
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} listener backends expected within {seconds} s, found {backends}")


@pytest.mark.postgres_only
@pytest.mark.slow
async def test_klubb_worker_at_a_30_second_poll_delivers_a_webhook_within_a_second_of_the_commit(
    db: str, clock: FrozenClock, receiver: Receiver, tmp_path: Path
) -> None:
    # given a `klubb worker` process polling every 30 s, listening, idle after its first drains
    clock.set(datetime.now(UTC))  # the process uses the wall clock
    await create_webhook_endpoint(receiver.url())
    log = tmp_path / "worker.log"
    settings = {"KLUBB_LIVE_UPDATES_ENABLED": "false"}
    worker = await start_worker(db, log, settings, "--poll-seconds", str(LONG_POLL))  # the last --poll-seconds wins
    try:
        await _wait_for_listener_backends(1, 30)
        await asyncio.sleep(1.0)  # its first drains (the start's, the listener's first wake-up) are over

        # when an event commits
        await emit_event(events.MEMBER_ENROLLED)
        committed = time.monotonic()
        await asyncio.wait_for(receiver.got_request.wait(), 5)
        latency = receiver.received_at[0] - committed
    finally:
        code = await stop_worker(worker)

    # then the webhook left within a second (not at the next poll), and the worker stopped cleanly
    assert latency < 1.0, log.read_text()
    assert code == 0, log.read_text()
    assert await _wait_for_listener_backends(0, 5) == []


@pytest.mark.postgres_only
async def test_the_embedded_worker_on_postgresql_listens_while_it_runs(db: str, receiver: Receiver) -> None:
    # given the embedded worker running on PostgreSQL
    await create_webhook_endpoint(receiver.url())
    stop = asyncio.Event()
    task = asyncio.create_task(run_embedded_worker(Settings(database_url=db, embedded_worker=True), stop))

    # then it holds one listening connection, delivers what commits, and closes the connection when stopped
    assert len(await _wait_for_listener_backends(1, 10)) == 1
    await emit_event(events.MEMBER_ENROLLED)
    await asyncio.wait_for(receiver.got_request.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert await _wait_for_listener_backends(0, 5) == []
    assert len(receiver.requests) == 1


async def test_listening_off_or_on_sqlite_starts_no_listener() -> None:
    # given no URL to listen on (SQLite, or KLUBB_WORKER_LISTEN=false)
    async with outbox_wakeups(None) as listener:
        # then the worker gets no listener and polls alone
        assert listener is None
