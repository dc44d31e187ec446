"""Real `klubb worker` processes sending app pushes to the fake FCM (in this process) on PostgreSQL: a worker
killed with SIGKILL mid-send, then restarted, leaves every device with the message at least once and every
message SENT once (the inbox once); two workers at once never send a push twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import Device, MessagePurpose, Program, PushDelivery, PushMessage, PushPolicy
from push.fake import FakeFcm
from tests.push.helpers import new_members, outgoing, schedule
from tests.server import start_worker, stop_worker

pytestmark = [pytest.mark.postgres_only, pytest.mark.slow]

MEMBERS = 2000
TIMEOUT_SECONDS = 3.0  # the push lease: 5 x the timeout + 8 s = 23 s (api.push_setup.lease_seconds)


async def _start_worker(db: str, fake: FakeFcm, log: Path) -> asyncio.subprocess.Process:
    settings = {
        "KLUBB_PUSH_LEASE_SECONDS": "1",
        "KLUBB_PUSH_BATCH_SIZE": "100",  # small batches: no request waits for 499 others on a loaded machine
        "KLUBB_PUSH_FCM_FAKE_URL": str(fake.url),
        "KLUBB_PUSH_FCM_PROJECT_ID": fake.project,
        "KLUBB_PUSH_FCM_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
    }
    return await start_worker(db, log, settings)


async def _until(condition: Callable[[], Awaitable[bool]], seconds: float, log: Path) -> None:
    for _ in range(int(seconds / 0.05)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {seconds} s; workers' log:\n{log.read_text()[-3000:]}")


async def _owed(clock: FrozenClock) -> list[str]:
    """MEMBERS members with a device each and one transactional message each, due now (wall clock)."""
    clock.set(datetime.now(UTC))
    await PushPolicy.create(transactional_per_day=None, updated_at=clock.now())
    members = await new_members(MEMBERS)
    await Device.bulk_create(
        [Device(member_id=m.id, token=f"tok-{m.id}", platform="android", created_at=clock.now(),
                last_seen_at=clock.now()) for m in members],
        batch_size=1000,
    )  # fmt: skip
    await schedule(*(outgoing(m, "points_earned:1", purpose=MessagePurpose.TRANSACTIONAL) for m in members))
    return [f"tok-{m.id}" for m in members]


async def _all_sent() -> bool:
    return await PushDelivery.filter(status="sent").count() == MEMBERS


async def _assert_every_message_sent_once(tokens: list[str], fake: FakeFcm) -> Counter[str]:
    received = Counter(r.message["token"] for r in fake.received if r.status == 200)
    assert set(received) == set(tokens)  # every device at least once
    assert await PushMessage.filter(status="sent").count() == MEMBERS  # the inbox: one message each, SENT
    assert await PushDelivery.all().count() == MEMBERS  # one delivery per (message, device)
    assert await PushMessage.filter(delivered_at__isnull=True).count() == 0
    return received


@pytest.fixture
async def slow_fake() -> AsyncIterator[FakeFcm]:
    # Slow enough that a few thousand pushes take seconds: the kill lands mid-send.
    fake = FakeFcm(project="klubb-test", latency_seconds=0.005)
    await fake.start()
    yield fake
    await fake.stop()


async def test_a_worker_killed_mid_send_leaves_every_device_served_and_each_message_sent_once(
    program: Program, db: str, clock: FrozenClock, slow_fake: FakeFcm, tmp_path: Path
) -> None:
    # given a few thousand pushes owed, and a worker sending them
    tokens = await _owed(clock)
    log = tmp_path / "workers.log"
    first = await _start_worker(db, slow_fake, log)
    # when it is killed with SIGKILL once FCM has accepted some but not all
    try:
        await _until(lambda: asyncio.sleep(0, slow_fake.sent >= 400), 60, log)
    finally:
        first.kill()
        await first.wait()
    sent_before = await PushDelivery.filter(status="sent").count()
    assert 0 <= sent_before < MEMBERS
    # and a worker is started again (the killed batch waits for its lease to expire)
    second = await _start_worker(db, slow_fake, log)
    try:
        await _until(_all_sent, 120, log)
    finally:
        await stop_worker(second)
    # then every device got the message, at least once; each message is SENT once and in the inbox once
    received = await _assert_every_message_sent_once(tokens, slow_fake)
    twice = [token for token, count in received.items() if count > 1]
    assert len(twice) <= 100  # at most the killed worker's unrecorded batch
    assert max(received.values()) <= 2


async def test_two_workers_never_send_a_push_twice(
    program: Program, db: str, clock: FrozenClock, slow_fake: FakeFcm, tmp_path: Path
) -> None:
    # given a few thousand pushes owed
    tokens = await _owed(clock)
    log = tmp_path / "workers.log"
    # when two workers send them at once
    workers = [await _start_worker(db, slow_fake, log), await _start_worker(db, slow_fake, log)]
    try:
        await _until(_all_sent, 120, log)
    finally:
        for worker in workers:
            await stop_worker(worker)
    # then no push was sent twice under one lease: a delivery sent at its first attempt reached FCM once, and none
    # was accepted more often than its recorded attempts (on a loaded machine a client-side timeout of a request FCM
    # did answer is retried, a recorded second attempt: at least once, by design)
    accepted = await _assert_every_message_sent_once(tokens, slow_fake)
    attempts = dict(await PushDelivery.all().values_list("token", "attempts"))
    assert [t for t, n in accepted.items() if n > attempts[t] or (attempts[t] == 1 and n != 1)] == []
    assert sum(1 for n in attempts.values() if n == 1) > MEMBERS / 2  # most went at once: the check has teeth
