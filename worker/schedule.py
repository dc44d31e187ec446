"""The periodic jobs' schedule: every job of `loyalty.jobs.JOBS` at its interval, inside the outbox worker.

`klubb worker` and the embedded worker run it next to the outbox drain (`worker.runner.run_forever`). Each job has
its own task: it runs the job, then sleeps until `interval` seconds after that run *started* — so a job never runs
twice at once in one process, a run that outlasts its interval is followed at once by the next one (missed runs are
not made up), and a slow job does not delay the others. A job that fails is logged and tried again at its next
interval; the other jobs go on. Several processes may run the same job at the same moment: every job is idempotent
and safe alongside itself (`loyalty.jobs`). Stopping cancels a job mid-run; the member transaction it was in rolls
back and the next run does that member again.

Intervals are wall-clock seconds from the event loop's monotonic clock, not the business clock (which tests freeze
and which may jump); `Timer` is the seam for tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from loyalty.db import database_unavailable
from loyalty.jobs import JOBS, Job, JobIncomplete

log = logging.getLogger("klubb.worker.schedule")


class Timer(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopTimer:
    """The event loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Schedule:
    """Which jobs run, each with the seconds between the starts of two runs."""

    entries: tuple[tuple[Job, float], ...]

    @classmethod
    def of(cls, intervals: Mapping[str, float] | None = None, jobs: Sequence[Job] = JOBS) -> Schedule:
        """Every job at its default interval (`Job.every`) except where `intervals` (job name → seconds) says
        otherwise; 0 turns a job off. Raises ValueError for an unknown job name or a negative interval."""
        overrides = dict(intervals or {})
        names = [job.name for job in jobs]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(f"no job named {', '.join(unknown)}; the jobs are {', '.join(names)}")
        invalid = sorted(name for name, seconds in overrides.items() if not (math.isfinite(seconds) and seconds >= 0))
        if invalid:
            raise ValueError(f"the interval of {', '.join(invalid)} must be 0 seconds or more (0 turns a job off)")
        entries = [(job, float(overrides.get(job.name, job.every.total_seconds()))) for job in jobs]
        return cls(tuple((job, seconds) for job, seconds in entries if seconds > 0))


async def _run_every(job: Job, seconds: float, timer: Timer) -> None:
    while True:
        started = timer.now()
        try:
            count = await job.run()
        except JobIncomplete as exc:
            log.error("job %s: %s; next run in %g s", job.name, exc, seconds)  # each member's error was logged
        except Exception as exc:
            if database_unavailable(exc):  # an outage, not a bug: one line per run until it is back
                log.warning("job %s: the database is unavailable (%s); next run in %g s", job.name, exc, seconds)
            else:
                log.exception("job %s failed; next run in %g s", job.name, seconds)
        else:
            if count:  # quiet when there was nothing to do: most runs, every minute
                log.info("%s", job.report(count))
        await timer.sleep(max(0.0, started + seconds - timer.now()))


async def run_schedule(schedule: Schedule, stop: asyncio.Event, *, timer: Timer | None = None) -> None:
    """Run each job of `schedule` at its interval, the first run at once, until `stop` is set."""
    clock = timer or LoopTimer()
    tasks = [
        asyncio.create_task(_run_every(job, seconds, clock), name=f"klubb job {job.name}")
        for job, seconds in schedule.entries
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def running(schedule: Schedule | None, stop: asyncio.Event) -> AsyncIterator[None]:
    """Run `schedule` in the background while the block runs (nothing without a schedule)."""
    if schedule is None:
        yield
        return
    task = asyncio.create_task(run_schedule(schedule, stop), name="klubb job schedule")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
