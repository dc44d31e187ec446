"""CPU and SQL statements per `record_purchase` (and per refund), in one process, on SQLite and PostgreSQL (not a
timed test).

    .venv/bin/python -m bench.purchase_cpu                                   # SQLite, a fresh file in a temp dir
    .venv/bin/python -m bench.purchase_cpu --postgres postgres://postgres@127.0.0.1:5432/klubb_purchase_bench \\
        [--runs 600] [--profile var/purchase.prof]

On PostgreSQL the database's `public` schema is DROPPED and re-created: give it a database of its own. The bench
migrates the database, configures the test program (EUR, 1 point per euro, three tiers), enrolls 40 members and
then, per scenario, records `--runs` receipts of three lines round-robin over the members under a frozen business
clock through the production entry point (`loyalty.purchases.record_purchase` as a cashier):

- `plain`: the program only (no campaigns, bonus rules or stamp cards);
- `rich`: a campaign, a bonus rule matching one line and a stamp card counting items (a voucher every 5th stamp);
- `replay`: every `rich` receipt sent again (idempotent replays);
- `refund`: half of every `rich` receipt refunded by amount.

With `--concurrency N`, `rich` receipts are then recorded by N tasks at once (each with members of its own, so no
lock waits; on PostgreSQL a pool of N connections): purchases per second of wall-clock time and this process's CPU
per purchase — the domain's own ceiling, without HTTP and GraphQL.

Prints, per scenario, µs of this process's CPU (`time.process_time`; the database server's own CPU is not in it on
PostgreSQL) and the statements Tortoise sent (its `tortoise.db_client` DEBUG log; BEGIN/COMMIT are not logged, one
pair per operation comes on top). Statements are counted in a separate pass so that logging costs no CPU in the
measured one. `--profile FILE` writes a cProfile of the `rich` scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tortoise import connections

from loyalty import clock
from loyalty.actors import Actor
from loyalty.db import connect, disconnect, migrate
from loyalty.earning import LineInput
from loyalty.members import enroll_member
from loyalty.models import BonusRule, Campaign, Reward, RewardKind, StaffRole, StampCard
from loyalty.program import apply_program_config, forget_cached_program
from loyalty.purchases import PurchaseRequest, record_purchase, refund_purchase

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STORE = "S1"
CASHIER = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=(STORE,), name="Bench Cashier")
MEMBERS = 40
PROGRAM: dict[str, Any] = {
    "program": {
        "name": "Bench Club",
        "currency": "EUR",
        "earn_rate": 1,
        "pending_days": 14,
        "expiry_days": 365,
        "tier_metric": "points",
        "tier_period": "calendar_year",
    },
    "tiers": [
        {"name": "Member", "threshold": 0, "multiplier": 1},
        {"name": "Silver", "threshold": 500, "multiplier": 1.25},
        {"name": "Gold", "threshold": 2000, "multiplier": 1.5},
    ],
}
LINES = (
    LineInput(sku="BEANS-1", category="coffee", quantity=1, amount=899),
    LineInput(sku="MILK-1", category="dairy", quantity=2, amount=398),
    LineInput(sku="BREAD-1", category="bakery", quantity=1, amount=1203),
)


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _prepare(database_url: str) -> list[int]:
    await connect(database_url)
    if database_url.startswith("postgres"):
        await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await disconnect()
    await migrate(database_url)
    await connect(database_url)
    forget_cached_program()
    await apply_program_config(PROGRAM)
    return [(await enroll_member(f"bench-{n}", email=f"m{n}@example.com"))[0].id for n in range(MEMBERS)]


async def _make_rich() -> None:
    now = clock.now()
    await Campaign.create(
        name="Double points", multiplier=Decimal(2), starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=30)
    )
    await BonusRule.create(name="Beans", match_type="category", match_value="coffee", points_per_item=10)
    reward = await Reward.create(name="Free coffee", kind=RewardKind.FREE_PRODUCT, points_cost=0)
    await StampCard.create(
        name="Coffee card", stamps_required=5, counts="items", match_category="coffee", reward=reward
    )
    forget_cached_program()


def _request(member_id: int, receipt_id: str) -> PurchaseRequest:
    return PurchaseRequest(
        member_id=member_id,
        store_code=STORE,
        receipt_id=receipt_id,
        occurred_at=clock.now(),
        currency="EUR",
        total=sum(line.amount for line in LINES),
        lines=LINES,
    )


async def _timed(
    runs: int, operation: Callable[[int], Awaitable[object]], profile: cProfile.Profile | None = None
) -> tuple[float, float]:
    """(µs CPU per operation, statements per operation): one pass measured without logging, one pass counted."""
    logger = logging.getLogger("tortoise.db_client")
    if profile is not None:
        profile.enable()
    started = time.process_time()
    for n in range(runs):
        await operation(n)
    cpu = time.process_time() - started
    if profile is not None:
        profile.disable()
    counter = _Counter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        for n in range(runs, runs + runs // 10):
            await operation(n)
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
    return cpu / runs * 1e6, counter.count / (runs // 10)


async def _throughput(runs: int, concurrency: int, members: list[int]) -> tuple[float, float]:
    """(purchases per second of wall-clock time, µs of this process's CPU per purchase) with `concurrency` tasks
    recording `rich` receipts at once, each for members of its own (no lock waits between them)."""

    async def worker(task: int) -> None:
        mine = members[task::concurrency]
        for n in range(runs // concurrency):
            await record_purchase(CASHIER, _request(mine[n % len(mine)], f"load-{task}-{n}"))

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(task) for task in range(concurrency)))
    done = runs // concurrency * concurrency
    return done / (time.perf_counter() - started), (time.process_time() - cpu) / done * 1e6


async def measure(
    database_url: str, runs: int, profile_path: str | None, concurrency: int = 1
) -> dict[str, tuple[float, float]]:
    frozen = clock.FrozenClock(START)
    previous = clock.use_clock(frozen)
    try:
        members = await _prepare(database_url)
        figures: dict[str, tuple[float, float]] = {}

        async def plain(n: int) -> object:
            return await record_purchase(CASHIER, _request(members[n % MEMBERS], f"plain-{n}"))

        for n in range(20):  # warm-up: caches, prepared adapters
            await record_purchase(CASHIER, _request(members[n % MEMBERS], f"warm-{n}"))
        figures["plain"] = await _timed(runs, plain)
        await _make_rich()

        async def rich(n: int) -> object:
            return await record_purchase(CASHIER, _request(members[n % MEMBERS], f"rich-{n}"))

        profile = cProfile.Profile() if profile_path else None
        figures["rich"] = await _timed(runs, rich, profile)
        if profile is not None and profile_path:
            profile.dump_stats(profile_path)
        figures["replay"] = await _timed(runs, rich)

        async def refund(n: int) -> object:
            return await refund_purchase(
                CASHIER, store_code=STORE, receipt_id=f"rich-{n}", refund_id=f"refund-{n}", amount=1250
            )

        figures["refund"] = await _timed(runs, refund)
        if concurrency > 1:
            figures[f"rich x{concurrency}"] = await _throughput(runs, concurrency, members)
        return figures
    finally:
        clock.use_clock(previous)
        await disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", help="a PostgreSQL URL whose public schema may be dropped (default: SQLite)")
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--profile", help="write a cProfile of the rich scenario to this file")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="also record rich receipts from this many tasks at once"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite://{Path(tmp) / 'purchase-bench.sqlite3'}"
        if args.postgres and args.concurrency > 1 and "maxsize" not in url:
            url += ("&" if "?" in url else "?") + f"maxsize={args.concurrency}"
        figures = asyncio.run(measure(url, args.runs, args.profile, args.concurrency))
    engine = "PostgreSQL" if args.postgres else "SQLite"
    for name, (first, second) in figures.items():
        if name.startswith("rich x"):
            print(f"{engine:>10} {name:>7}: {first:7,.0f} purchases/s, {second:7,.0f} µs CPU per purchase")
        else:
            print(f"{engine:>10} {name:>7}: {first:7,.0f} µs CPU, {second:5.1f} statements per operation")


if __name__ == "__main__":
    main()
