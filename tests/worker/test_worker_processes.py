"""Real `klubb worker` processes against PostgreSQL: leases after a crash, and no double delivery between workers."""

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty import events
from loyalty.clock import FrozenClock
from loyalty.models import DeliveryStatus, WebhookAttempt, WebhookDelivery
from loyalty.webhooks import create_webhook_endpoint
from tests.server import start_worker, stop_worker
from tests.worker.conftest import Receiver, emit_event

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

LEASE_SECONDS = 3.0
TIMEOUT_SECONDS = 2.0  # claim_lease_seconds = max(lease, timeout + 1) = 3 s


async def _start_worker(db: str, log: Path, *args: str) -> asyncio.subprocess.Process:
    settings = {
        "KLUBB_WORKER_LEASE_SECONDS": str(LEASE_SECONDS),
        "KLUBB_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    }
    return await start_worker(db, log, settings, *args)


async def _stop(process: asyncio.subprocess.Process) -> int:
    return await stop_worker(process, seconds=10)


async def _wait_until_all_succeeded(expected: int, seconds: float) -> None:
    for _ in range(int(seconds / 0.1)):
        if await WebhookDelivery.filter(status=DeliveryStatus.SUCCEEDED).count() == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not all {expected} deliveries succeeded within {seconds} s")


async def test_worker_killed_mid_delivery_is_redelivered_after_its_lease_expires(
    db: str, clock: FrozenClock, receiver: Receiver, tmp_path: Path
) -> None:
    # The subprocesses use the wall clock: line the business clock up with it.
    clock.set(datetime.now(UTC))
    receiver.behavior = lambda request, index: "stall" if index == 0 else 200
    await create_webhook_endpoint(receiver.url())
    event = await emit_event(events.POINTS_EARNED, points=10)
    log = tmp_path / "workers.log"

    first = await _start_worker(db, log)
    try:
        await asyncio.wait_for(receiver.got_request.wait(), 15)
    finally:
        if first.returncode is None:
            first.kill()  # SIGKILL mid-delivery: no chance to record anything or release the lease
        await first.wait()
    assert first.returncode == -signal.SIGKILL, log.read_text()
    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)
    assert delivery.locked_until is not None

    second = await _start_worker(db, log)
    try:
        await _wait_until_all_succeeded(1, 20)
    finally:
        assert await _stop(second) == 0, log.read_text()

    # at least once: the event arrived twice (the first answer was never sent); the consumer dedupes by event id
    assert [r.headers["klubb-event-id"] for r in receiver.requests] == [str(event.id), str(event.id)]
    assert receiver.received_at[1] - receiver.received_at[0] >= LEASE_SECONDS - 0.5
    delivery = await WebhookDelivery.get(event_id=event.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code, delivery.locked_until) == (
        DeliveryStatus.SUCCEEDED,
        1,
        200,
        None,
    )
    # the killed attempt left no log row: only the recorded one is there
    attempts = await WebhookAttempt.filter(delivery_id=delivery.id)
    assert [(a.status_code, a.error) for a in attempts] == [(200, "")]


async def test_concurrent_workers_deliver_every_event_exactly_once(
    db: str, clock: FrozenClock, receiver: Receiver, tmp_path: Path
) -> None:
    clock.set(datetime.now(UTC))
    receiver.delay = 0.03  # keep claims overlapping between workers
    await create_webhook_endpoint(receiver.url("/a"))
    await create_webhook_endpoint(receiver.url("/b"), [events.POINTS_EARNED])
    emitted = [await emit_event(events.POINTS_EARNED, points=i) for i in range(40)]
    log = tmp_path / "workers.log"

    workers = [await _start_worker(db, log, "--batch-size", "3") for _ in range(3)]
    try:
        await _wait_until_all_succeeded(80, 30)
        await asyncio.sleep(0.5)  # would catch a late duplicate
    finally:
        codes = [await _stop(worker) for worker in workers]

    assert codes == [0, 0, 0], log.read_text()
    received = Counter((r.path, r.headers["klubb-event-id"]) for r in receiver.requests)
    assert received == Counter({(path, str(e.id)): 1 for e in emitted for path in ("/a", "/b")})
    assert await WebhookAttempt.all().count() == 80
    assert sorted({d.attempts for d in await WebhookDelivery.all()}) == [1]
