"""Real concurrency on PostgreSQL: several OS processes, each with its own connection pool, redeem at once."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import EntryKind, LedgerEntry, LotAllocation, PointsLot, Program
from tests.loyalty.ledger_helpers import balances, give_available, new_member

WORKER = Path(__file__).with_name("redeem_worker.py")
REPO = Path(__file__).parents[2]
PROCESSES = 4
PER_PROCESS = 50


@pytest.mark.postgres_only
@pytest.mark.slow
async def test_200_concurrent_redemptions_from_4_processes_never_overspend(
    db: str, program: Program, clock: FrozenClock
) -> None:
    # given 1,000 available points in one lot that the workers' wall clock will not expire
    member = await new_member("uid-race")
    await give_available(member.id, 1_000)
    lot = await PointsLot.get(member_id=member.id)
    assert lot.expires_at is not None
    assert lot.expires_at > datetime.now(UTC)

    # when 4 processes each fire 50 concurrent redemptions of 10 points, released together by a barrier
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, str(WORKER), db, str(member.id), str(PER_PROCESS), "10", f"p{n}"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        for n in range(PROCESSES)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert await asyncio.wait_for(worker.stdout.readline(), 60) == b"ready\n"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        outputs = [await asyncio.wait_for(worker.communicate(), 120) for worker in workers]
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    # then exactly 100 succeed, 100 are refused, nothing else happened, and the lot is exactly empty
    assert [worker.returncode for worker in workers] == [0] * PROCESSES
    reports = [json.loads(stdout.decode().strip().splitlines()[-1]) for stdout, _ in outputs]
    assert [r["errors"] for r in reports] == [[]] * PROCESSES
    assert sum(r["ok"] for r in reports) == 100
    assert sum(r["insufficient"] for r in reports) == 100
    assert await balances(member.id) == (0, 0, 1_000)
    assert await LedgerEntry.filter(member_id=member.id, kind=EntryKind.REDEEM).count() == 100
    assert sum(await LotAllocation.all().values_list("amount", flat=True)) == 1_000
    assert (await PointsLot.get(id=lot.id)).remaining == 0
