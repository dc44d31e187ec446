"""The job schedule: each job at its interval, never overlapping itself, failures isolated; on a fake timer."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.app import run_embedded_worker
from api.settings import Settings
from loyalty.clock import FrozenClock
from loyalty.jobs import JOBS, Job, JobIncomplete
from loyalty.models import Program
from tests.conftest import WALLET_DEV_DIRECTORY
from tests.loyalty.ledger_helpers import balances, give_available, new_member
from worker.schedule import Schedule, run_schedule


class FakeTimer:
    """Time that moves only in `advance`, waking the sleepers in deadline order as real time would."""

    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        sleeper = (self.time + seconds, asyncio.get_running_loop().create_future())
        self._sleepers.append(sleeper)
        try:
            await sleeper[1]
        finally:
            self._sleepers.remove(sleeper)

    async def advance(self, seconds: float) -> None:
        target = self.time + seconds
        while True:
            await _let_tasks_run()
            deadlines = [deadline for deadline, wake in self._sleepers if not wake.done()]
            if not deadlines or min(deadlines) > target:
                break
            self.time = max(self.time, min(deadlines))
            for deadline, wake in self._sleepers:
                if deadline <= self.time and not wake.done():
                    wake.set_result(None)
        self.time = target
        await _let_tasks_run()


async def _let_tasks_run() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


@dataclass
class Recorder:
    """A job's runs: when each started, and how many ran at once at most."""

    timer: FakeTimer
    behavior: Callable[[int], Awaitable[int]] | None = None
    started: list[float] = field(default_factory=list)
    running: int = 0
    most_at_once: int = 0

    async def run(self) -> int:
        self.started.append(self.timer.now())
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            return await self.behavior(len(self.started)) if self.behavior else 0
        finally:
            self.running -= 1

    def job(self, name: str, every: float = 60) -> Job:
        return Job(name, f"the {name} job", self.run, timedelta(seconds=every), "things")


async def _start(schedule: Schedule, timer: FakeTimer) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_schedule(schedule, stop, timer=timer))
    await timer.advance(0)
    return stop, task


async def _stop(stop: asyncio.Event, task: asyncio.Task[None]) -> None:
    stop.set()
    await asyncio.wait_for(task, 1)


# --- building the schedule -------------------------------------------------------------------------


def test_every_job_runs_at_its_default_interval_unless_configured() -> None:
    assert [(job.name, seconds) for job, seconds in Schedule.of().entries] == [
        ("expire-points", 60.0),
        ("evaluate-tiers", 3600.0),
        ("birthday-rewards", 3600.0),
        ("expire-vouchers", 600.0),
        ("refresh-wallet-passes", 3600.0),
        ("prune-stale-devices", 21600.0),
        ("lapse-memberships", 300.0),
        ("send-push-campaigns", 60.0),
        ("push-automations", 300.0),
        ("reward-referrals", 600.0),
    ]
    assert [
        (job.name, seconds) for job, seconds in Schedule.of({"expire-points": 15, "evaluate-tiers": 0}).entries
    ] == [
        ("expire-points", 15.0),
        ("birthday-rewards", 3600.0),
        ("expire-vouchers", 600.0),
        ("refresh-wallet-passes", 3600.0),
        ("prune-stale-devices", 21600.0),
        ("lapse-memberships", 300.0),
        ("send-push-campaigns", 60.0),
        ("push-automations", 300.0),
        ("reward-referrals", 600.0),
    ]
    assert [job for job, _ in Schedule.of().entries] == list(JOBS)


@pytest.mark.parametrize(
    ("intervals", "message"),
    [
        ({"expire-point": 60}, "no job named expire-point; the jobs are a, b"),
        ({"a": -1, "b": float("nan")}, "the interval of a, b must be 0 seconds or more (0 turns a job off)"),
    ],
)
def test_a_wrong_interval_setting_is_refused(intervals: dict[str, float], message: str) -> None:
    recorder = Recorder(FakeTimer())

    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Schedule.of(intervals, jobs=[recorder.job("a"), recorder.job("b")])


# --- running it -----------------------------------------------------------------------------------


async def test_each_job_runs_at_once_then_at_its_interval() -> None:
    # given a job every minute and one every ten minutes
    timer = FakeTimer()
    often, seldom = Recorder(timer), Recorder(timer)
    stop, task = await _start(Schedule.of(jobs=[often.job("often", 60), seldom.job("seldom", 600)]), timer)

    # when twenty minutes pass
    await timer.advance(1200)
    await _stop(stop, task)

    # then
    assert often.started == [60.0 * i for i in range(21)]
    assert seldom.started == [0.0, 600.0, 1200.0]


async def test_a_run_longer_than_its_interval_is_never_overlapped_and_missed_runs_are_not_made_up() -> None:
    # given a job every minute whose second run takes three and a half minutes
    timer = FakeTimer()
    release = asyncio.Event()

    async def slow_second_run(run: int) -> int:
        if run == 2:
            await release.wait()
        return 1

    slow = Recorder(timer, slow_second_run)
    stop, task = await _start(Schedule.of(jobs=[slow.job("slow", 60)]), timer)

    # when
    await timer.advance(270)
    during = list(slow.started)
    release.set()
    await timer.advance(0)
    await timer.advance(60)
    await _stop(stop, task)

    # then the next run starts when the long one ends, then every minute from there
    assert during == [0.0, 60.0]
    assert slow.started == [0.0, 60.0, 270.0, 330.0]
    assert slow.most_at_once == 1


async def test_a_failing_job_is_logged_and_retried_next_interval_while_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a job that fails every run, one that fails for some members, and a healthy one
    caplog.set_level(logging.INFO, logger="klubb.worker.schedule")
    timer = FakeTimer()

    async def crash(run: int) -> int:
        raise RuntimeError(f"crash {run}")

    async def incomplete(run: int) -> int:
        raise JobIncomplete("partial", 4, [7])

    async def fine(run: int) -> int:
        return 2

    broken, partial, healthy = Recorder(timer, crash), Recorder(timer, incomplete), Recorder(timer, fine)
    schedule = Schedule.of(jobs=[broken.job("broken", 60), partial.job("partial", 100), healthy.job("healthy", 60)])
    stop, task = await _start(schedule, timer)

    # when two minutes pass
    await timer.advance(120)
    await _stop(stop, task)

    # then each kept its schedule, and every outcome was logged
    assert (broken.started, partial.started, healthy.started) == ([0.0, 60.0, 120.0], [0.0, 100.0], [0.0, 60.0, 120.0])
    logged = sorted((r.levelname, r.getMessage(), r.exc_info is not None) for r in caplog.records)
    assert logged == sorted(
        [("ERROR", "job broken failed; next run in 60 s", True)] * 3
        + [("ERROR", "job partial: 1 failed (member ids 7); 4 done; next run in 100 s", False)] * 2
        + [("INFO", "healthy: 2 things", False)] * 3
    )


async def test_stopping_cancels_a_job_mid_run_and_returns() -> None:
    # given a job stuck in its first run
    timer = FakeTimer()
    cancelled = asyncio.Event()

    async def stuck(run: int) -> int:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    recorder = Recorder(timer, stuck)
    stop, task = await _start(Schedule.of(jobs=[recorder.job("stuck")]), timer)

    # when / then
    await _stop(stop, task)
    assert cancelled.is_set()
    assert recorder.running == 0


async def test_an_empty_schedule_waits_for_stop() -> None:
    stop, task = await _start(Schedule(()), FakeTimer())

    assert not task.done()
    await _stop(stop, task)


# --- in the worker --------------------------------------------------------------------------------


async def test_the_embedded_worker_runs_the_jobs_next_to_the_outbox(db: str) -> None:
    # given a job every 50 ms in the embedded worker's schedule (the loop's real clock)
    ran = asyncio.Event()

    async def run() -> int:
        ran.set()
        return 0

    job = Job("probe", "a probe", run, timedelta(milliseconds=50), "things")
    stop = asyncio.Event()
    worker = asyncio.create_task(
        run_embedded_worker(Settings(database_url=db, embedded_worker=True), stop, Schedule.of(jobs=[job]))
    )

    # when / then: the job runs, and the worker stops promptly with it
    await asyncio.wait_for(ran.wait(), 5)
    stop.set()
    await asyncio.wait_for(worker, 5)


async def test_klubb_worker_runs_the_jobs_from_its_settings(db: str, program: Program, clock: FrozenClock) -> None:
    # given a member whose points expired yesterday (the worker process uses the wall clock)
    clock.set(datetime.now(UTC) - timedelta(days=366))
    member = await new_member("uid-worker")
    await give_available(member.id, 100)
    clock.set(datetime.now(UTC))

    # when a worker runs with only the expiry job on
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from api.cli import app; app(prog_name='klubb')",
        "worker",
        env={
            "KLUBB_DATABASE_URL": db,
            "KLUBB_JOB_INTERVALS": json.dumps(
                {
                    "evaluate-tiers": 0,
                    "birthday-rewards": 0,
                    "expire-vouchers": 0,
                    "refresh-wallet-passes": 0,
                    "prune-stale-devices": 0,
                }
            ),
            "PATH": "/usr/bin:/bin",
            WALLET_DEV_DIRECTORY: os.environ[WALLET_DEV_DIRECTORY],
        },
        cwd=Path(__file__).resolve().parents[2],
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if await balances(member.id) == (0, 0, 100):
                break
            await asyncio.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, log = await asyncio.wait_for(worker.communicate(), 10)

    # then the points expired, and the worker said so and stopped cleanly
    assert await balances(member.id) == (0, 0, 100), log.decode()
    assert worker.returncode == 0, log.decode()
    assert "expire-points: 1 members settled" in log.decode()
