"""Seed a benchmark database: 10,000 members with ~50 ledger entries each, consistent with the ledger invariants.

Each member's history (purchases, maturing lots, redemptions, birthday credits, expiries, tier changes) is simulated
in memory with the same rules as `loyalty.ledger` and `loyalty.tiers`, then written with raw `executemany` inside one
transaction. Nothing matures, expires or needs a tier evaluation within `SAFE_MARGIN` of the seeding time, so reads
during the benchmark never settle a member.

    python -m bench.seed                     # var/bench.sqlite3, reused while SEED_VERSION and the data are current
    python -m bench.seed --force             # re-seed the SQLite file
    python -m bench.seed --postgres URL      # also seed an (empty) PostgreSQL database
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import heapq
import json
import os
import random
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from loyalty import clock
from loyalty.db import connect, disconnect, is_postgres, migrate
from loyalty.members import luhn_check_digit
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    Member,
    PointsLot,
    Program,
    Purchase,
    QualifyingCredit,
    Tier,
)
from loyalty.program import apply_program_config, tiers_of
from loyalty.tiers import earned_tier, next_period_end, period_end, period_start

# Bump when the generated data changes: a cached database of another version is re-seeded.
SEED_VERSION = 2
MEMBERS = 10_000
RANDOM_SEED = 20261123
ROOT = Path(__file__).resolve().parent.parent
PROGRAM_FILE = Path("demo/program.toml")  # paths are relative to the checkout (main() changes into it)
SQLITE_PATH = Path("var/bench.sqlite3")
# Nothing matures, expires or falls due for tier evaluation this soon after seeding...
SAFE_MARGIN = timedelta(days=2)
# ...and a cached database is only reused while that stays true for at least this long.
REUSE_MARGIN = timedelta(hours=1)
BATCH_MEMBERS = 1_000
SAMPLE_MEMBERS = 100
REWARD_PRICES = (50, 100, 150, 200, 300, 500, 1000)
BIRTHDAY_POINTS = 100
STORES = tuple(f"STO{i:02d}" for i in range(1, 21))
FIRST_NAMES = ("Anna", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo", "Ida", "Johan", "Karin", "Lars")
LAST_NAMES = ("Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Falk", "Gustafsson", "Holm", "Isaksson", "Johansson")

COLUMNS: dict[str, tuple[str, ...]] = {
    "member": (
        "id",
        "firebase_uid",
        "member_number",
        "email",
        "phone",
        "display_name",
        "birthday",
        "interests",
        "marketing_consent",
        "marketing_consent_at",
        "timezone",
        "card_secret",
        "tier_id",
        "tier_since",
        "tier_held_until",
        "manual_tier_id",
        "manual_tier_until",
        "points_available",
        "points_pending",
        "lifetime_earned",
        "next_settle_at",
        "created_at",
        "updated_at",
    ),
    "purchase": (
        "id",
        "member_id",
        "store_code",
        "receipt_id",
        "occurred_at",
        "currency",
        "total",
        "points_earned",
        "qualifying_value",
        "refunded_total",
        "points_reversed",
        "created_at",
    ),
    "points_lot": (
        "id",
        "member_id",
        "amount",
        "remaining",
        "status",
        "created_at",
        "available_at",
        "expires_at",
        "purchase_id",
    ),
    "ledger_entry": (
        "id",
        "member_id",
        "kind",
        "delta_available",
        "delta_pending",
        "delta_lifetime",
        "unrecovered",
        "description",
        "lot_id",
        "purchase_id",
        "reverses_id",
        "created_at",
    ),
    "lot_allocation": ("id", "entry_id", "lot_id", "amount"),
    "qualifying_credit": ("id", "member_id", "amount", "occurred_at", "purchase_id"),
}
# Member columns filled from the simulation when the model has them (newer schema versions).
if "last_purchase_at" in Member._meta.fields_db_projection.values():
    COLUMNS["member"] = (*COLUMNS["member"], "last_purchase_at")
# Foreign keys point backwards in this order.
TABLE_ORDER = ("member", "purchase", "points_lot", "ledger_entry", "lot_allocation", "qualifying_credit")


class SeedError(RuntimeError):
    """The seeded data break a ledger invariant (a bug in the seeder, never to be ignored)."""


def points_for_amount(program: Program, amount_minor: int, multiplier: Decimal) -> int:
    """Points for a spend: minor units x earn rate x multiplier, floored to whole points."""
    major = Decimal(amount_minor) / (Decimal(10) ** program.currency_exponent)
    return int((major * Decimal(program.earn_rate) * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def sqlite_datetime(value: datetime) -> str:
    # Exactly what Tortoise writes for a DatetimeField on SQLite: "2026-11-23 01:46:15.342278+00:00".
    return value.isoformat(" ", "microseconds")


@dataclass
class Lot:
    id: int
    amount: int
    created_at: datetime
    available_at: datetime
    expires_at: datetime | None
    purchase_id: int | None
    status: LotStatus
    remaining: int = 0

    def __post_init__(self) -> None:
        self.remaining = self.amount

    def spend_order(self) -> tuple[bool, datetime | None, int]:
        # loyalty.ledger._spend_order: earliest expiry first, never-expiring last, then oldest.
        return (self.expires_at is None, self.expires_at, self.id)


@dataclass
class Ids:
    member: int = 0
    purchase: int = 0
    points_lot: int = 0
    ledger_entry: int = 0
    lot_allocation: int = 0
    qualifying_credit: int = 0

    def next(self, table: str) -> int:
        value = getattr(self, table) + 1
        setattr(self, table, value)
        return value


@dataclass
class Rows:
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {t: [] for t in TABLE_ORDER})

    def count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass
class Totals:
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLE_ORDER, 0))
    tiers: dict[str, int] = field(default_factory=dict)
    entry_kinds: dict[str, int] = field(default_factory=dict)
    valid_until: datetime | None = None


class MemberSimulation:
    """One member's history, replayed in time order with the rules of `loyalty.ledger` and `loyalty.tiers`."""

    def __init__(
        self, sim: Seeder, member_id: int, rng: random.Random, now: datetime, fmt: Callable[[datetime], Any]
    ) -> None:
        self.sim = sim
        self.program = sim.program
        self.tiers = sim.tiers
        self.id = member_id
        self.rng = rng
        self.now = now
        self.fmt = fmt
        self.available = self.pending = self.lifetime = 0
        self.lots: list[Lot] = []
        self.credits: list[tuple[datetime, int]] = []
        self.tier_rank = 0
        self.tier_since: datetime | None = None
        self.held_until: datetime | None = None
        self.updated_at = now
        self.queue: list[tuple[datetime, int, str, Any]] = []
        self.seq = 0
        self.purchases = 0
        self.last_purchase: datetime | None = None

    # --- time ---------------------------------------------------------------------------------------

    def random_time(self, start: datetime, end: datetime) -> datetime:
        span = (end - start).total_seconds()
        return start + timedelta(seconds=self.rng.uniform(0, span))

    def too_close(self, due: datetime | None) -> bool:
        return due is not None and self.now < due <= self.now + SAFE_MARGIN

    def safe_credit_time(self, at: datetime, available_after: timedelta) -> datetime:
        """Move a credit back in time so that its lot neither matures nor expires right after seeding."""
        expiry = timedelta(days=self.program.expiry_days) if self.program.expiry_days else None
        for _ in range(3):
            matures = at + available_after
            expires = matures + expiry if expiry else None
            if not (self.too_close(matures) or self.too_close(expires)):
                break
            at -= SAFE_MARGIN + timedelta(hours=1)
        return at

    def schedule(self, at: datetime, kind: str, data: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at, self.seq, kind, data))

    # --- writing rows -------------------------------------------------------------------------------

    def post(
        self,
        kind: EntryKind,
        at: datetime,
        *,
        available: int = 0,
        pending: int = 0,
        lifetime: int = 0,
        lot_id: int | None = None,
        purchase_id: int | None = None,
        description: str = "",
    ) -> int:
        entry_id = self.sim.ids.next("ledger_entry")
        self.available += available
        self.pending += pending
        self.lifetime += lifetime
        self.updated_at = at
        self.sim.rows.tables["ledger_entry"].append(
            (
                entry_id,
                self.id,
                kind.value,
                available,
                pending,
                lifetime,
                0,
                description,
                lot_id,
                purchase_id,
                None,
                self.fmt(at),
            )
        )
        return entry_id

    def take(self, entry_id: int, lots: list[Lot], amount: int) -> int:
        taken = 0
        for lot in lots:
            if taken == amount:
                break
            take = min(lot.remaining, amount - taken)
            if take <= 0:
                continue
            lot.remaining -= take
            self.sim.rows.tables["lot_allocation"].append((self.sim.ids.next("lot_allocation"), entry_id, lot.id, take))
            taken += take
        return taken

    def new_lot(self, amount: int, at: datetime, available_at: datetime, purchase_id: int | None) -> Lot:
        expires_at = available_at + timedelta(days=self.program.expiry_days) if self.program.expiry_days else None
        status = LotStatus.PENDING if available_at > at else LotStatus.AVAILABLE
        lot = Lot(self.sim.ids.next("points_lot"), amount, at, available_at, expires_at, purchase_id, status)
        self.lots.append(lot)
        if status == LotStatus.PENDING:
            self.schedule(available_at, "mature", lot)
        elif expires_at is not None:
            self.schedule(expires_at, "expire", lot)
        return lot

    # --- events -------------------------------------------------------------------------------------

    def purchase(self, at: datetime, total: int) -> None:
        tier = self.tiers[self.tier_rank]
        base = points_for_amount(self.program, total, Decimal(1))
        points = points_for_amount(self.program, total, Decimal(tier.multiplier))
        qualifying = base if self.program.tier_metric == "points" else total
        purchase_id = self.sim.ids.next("purchase")
        self.purchases += 1
        self.last_purchase = at
        self.sim.rows.tables["purchase"].append(
            (
                purchase_id,
                self.id,
                self.rng.choice(STORES),
                f"B{self.id}-{self.purchases}",
                self.fmt(at),
                self.program.currency,
                total,
                points,
                qualifying,
                0,
                0,
                self.fmt(at),
            )
        )
        if points:
            lot = self.new_lot(points, at, at + timedelta(days=self.program.pending_days), purchase_id)
            if lot.status == LotStatus.PENDING:
                self.post(EntryKind.EARN, at, pending=points, lifetime=points, lot_id=lot.id, purchase_id=purchase_id)
            else:
                self.post(EntryKind.EARN, at, available=points, lifetime=points, lot_id=lot.id, purchase_id=purchase_id)
        if qualifying:
            self.credits.append((at, qualifying))
            self.sim.rows.tables["qualifying_credit"].append(
                (self.sim.ids.next("qualifying_credit"), self.id, qualifying, self.fmt(at), purchase_id)
            )
        self.evaluate_tier(at)

    def credit(self, at: datetime, amount: int, kind: EntryKind, description: str) -> None:
        lot = self.new_lot(amount, at, at, None)
        self.post(kind, at, available=amount, lifetime=amount, lot_id=lot.id, description=description)

    def mature(self, at: datetime, lot: Lot) -> None:
        lot.status = LotStatus.AVAILABLE
        if lot.remaining:
            self.post(
                EntryKind.MATURE, at, available=lot.remaining, pending=-lot.remaining, lot_id=lot.id, description=""
            )
        if lot.expires_at is not None:
            self.schedule(lot.expires_at, "expire", lot)

    def expire(self, at: datetime, lot: Lot) -> None:
        if lot.status != LotStatus.AVAILABLE:
            return
        lot.status = LotStatus.EXPIRED
        if lot.remaining:
            amount = lot.remaining
            entry_id = self.post(EntryKind.EXPIRE, at, available=-amount, lot_id=lot.id)
            self.take(entry_id, [lot], amount)

    def redeem(self, at: datetime) -> None:
        affordable = [price for price in REWARD_PRICES if price <= self.available]
        if not affordable:
            return
        amount = self.rng.choice(affordable)
        entry_id = self.post(EntryKind.REDEEM, at, available=-amount, description=f"Reward for {amount} points")
        lots = sorted(
            (lot for lot in self.lots if lot.status == LotStatus.AVAILABLE and lot.remaining > 0),
            key=Lot.spend_order,
        )
        if self.take(entry_id, lots, amount) != amount:
            raise SeedError(f"member {self.id}: balance {self.available + amount} not backed by lots")

    def qualifying_value(self, at: datetime) -> int:
        start = period_start(self.program, at)
        return sum(amount for occurred, amount in self.credits if start <= occurred <= at)

    def evaluate_tier(self, at: datetime) -> None:
        # loyalty.tiers.evaluate_tier (no manual tiers in the bench data).
        value = self.qualifying_value(at)
        current = self.tier_rank
        earned = earned_tier(self.tiers, value)
        held_until = self.held_until
        rank = current
        if earned.rank >= current:
            rank = earned.rank
            hold = next_period_end(self.program, at)
            held_until = hold if held_until is None or earned.rank > current else max(held_until, hold)
        elif held_until is None or at >= held_until:
            rank = current - 1
            held_until = period_end(self.program, at)
        if rank != current:
            self.tier_since = at
            self.updated_at = at
        self.tier_rank = rank
        if held_until != self.held_until:
            self.held_until = held_until
            # The nightly `evaluate-tiers` job picks the member up once the hold has ended.
            self.schedule(held_until, "tier", held_until)

    # --- the whole history --------------------------------------------------------------------------

    def run(self) -> None:
        rng, now = self.rng, self.now
        enrolled = now - timedelta(days=rng.uniform(60, 900), seconds=rng.uniform(0, 86400))
        self.tier_since = enrolled
        pending_after = timedelta(days=self.program.pending_days)
        # Spend level: a median of €25 per purchase, a long tail of big spenders (Silver and Gold).
        typical = 2500 * rng.lognormvariate(0, 0.75)
        for _ in range(rng.randint(17, 27)):
            at = self.safe_credit_time(self.random_time(enrolled, now), pending_after)
            enrolled = min(enrolled, at)
            total = max(100, int(typical * rng.lognormvariate(0, 0.5)))
            self.schedule(at, "purchase", total)
        for _ in range(rng.randint(4, 12)):
            self.schedule(self.random_time(enrolled + timedelta(days=20), now), "redeem")
        birthday: date | None = None
        if rng.random() < 0.7:
            birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
            for year in range(enrolled.year, now.year + 1):
                at = datetime(year, birthday.month, birthday.day, 6, tzinfo=UTC) + timedelta(
                    seconds=rng.uniform(0, 3600)
                )
                if enrolled < at <= now and self.sim.birthday_points:
                    at = self.safe_credit_time(at, timedelta(0))
                    self.schedule(at, "birthday")
        while self.queue and self.queue[0][0] <= now:
            at, _, kind, data = heapq.heappop(self.queue)
            if kind == "purchase":
                self.purchase(at, data)
            elif kind == "redeem":
                self.redeem(at)
            elif kind == "birthday":
                self.credit(at, self.sim.birthday_points, EntryKind.BIRTHDAY, "Happy birthday!")
            elif kind == "mature":
                self.mature(at, data)
            elif kind == "expire":
                self.expire(at, data)
            elif kind == "tier" and data == self.held_until:
                self.evaluate_tier(at)
        self.emit_member(enrolled, birthday)

    def next_settle_at(self) -> datetime | None:
        # loyalty.ledger._schedule_next_settle.
        candidates = [lot.available_at for lot in self.lots if lot.status == LotStatus.PENDING]
        candidates += [
            lot.expires_at
            for lot in self.lots
            if lot.status == LotStatus.AVAILABLE and lot.remaining > 0 and lot.expires_at is not None
        ]
        return min(candidates) if candidates else None

    def emit_member(self, enrolled: datetime, birthday: date | None) -> None:
        rng, fmt = self.rng, self.fmt
        for lot in self.lots:
            self.sim.rows.tables["points_lot"].append(
                (
                    lot.id,
                    self.id,
                    lot.amount,
                    lot.remaining,
                    lot.status.value,
                    fmt(lot.created_at),
                    fmt(lot.available_at),
                    fmt(lot.expires_at) if lot.expires_at else None,
                    lot.purchase_id,
                )
            )
        next_settle = self.next_settle_at()
        for due in (next_settle, self.held_until):
            if due is not None and due <= self.now + SAFE_MARGIN:
                raise SeedError(f"member {self.id} falls due at {due}, within the safety margin")
            if due is not None and (self.sim.totals.valid_until is None or due < self.sim.totals.valid_until):
                self.sim.totals.valid_until = due
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        consent = rng.random() < 0.6
        body = str(100_000_000 + (self.id * 7919) % 900_000_000)
        tier = self.tiers[self.tier_rank]
        self.sim.totals.tiers[tier.name] = self.sim.totals.tiers.get(tier.name, 0) + 1
        row = (
            self.id,
            f"bench:{self.id}",
            body + luhn_check_digit(body),
            f"bench{self.id}@example.com",
            f"+4670{self.id:07d}" if rng.random() < 0.5 else None,
            f"{first} {last}",
            self.sim.fmt_date(birthday) if birthday else None,
            "[]",
            consent,
            fmt(enrolled) if consent else None,
            "Europe/Stockholm",
            f"{rng.getrandbits(160):040x}",
            tier.id,
            fmt(self.tier_since) if self.tier_since else None,
            fmt(self.held_until) if self.held_until else None,
            None,
            None,
            self.available,
            self.pending,
            self.lifetime,
            fmt(next_settle) if next_settle else None,
            fmt(enrolled),
            fmt(self.updated_at),
        )
        if "last_purchase_at" in COLUMNS["member"]:
            row = (*row, fmt(self.last_purchase) if self.last_purchase else None)
        self.sim.rows.tables["member"].append(row)


class Seeder:
    def __init__(self, program: Program, tiers: list[Tier], now: datetime, *, postgres: bool) -> None:
        self.program = program
        self.tiers = tiers
        self.now = now
        self.postgres = postgres
        self.fmt: Callable[[datetime], Any] = (lambda value: value) if postgres else sqlite_datetime
        self.fmt_date: Callable[[date], Any] = (lambda value: value) if postgres else date.isoformat
        # The program's yearly birthday points where it has them (0 = no birthday reward), else a default.
        self.birthday_points = int(getattr(program, "birthday_points", BIRTHDAY_POINTS) or 0)
        self.ids = Ids()
        self.rows = Rows()
        self.totals = Totals()

    def batches(self, members: int) -> Iterator[Rows]:
        rng = random.Random(RANDOM_SEED)
        for start in range(0, members, BATCH_MEMBERS):
            self.rows = Rows()
            for _ in range(start, min(members, start + BATCH_MEMBERS)):
                MemberSimulation(self, self.ids.next("member"), rng, self.now, self.fmt).run()
            for table, rows in self.rows.tables.items():
                self.totals.rows[table] += len(rows)
            for row in self.rows.tables["ledger_entry"]:
                self.totals.entry_kinds[row[2]] = self.totals.entry_kinds.get(row[2], 0) + 1
            yield self.rows


MODELS = {
    "member": Member,
    "purchase": Purchase,
    "points_lot": PointsLot,
    "ledger_entry": LedgerEntry,
    "lot_allocation": LotAllocation,
    "qualifying_credit": QualifyingCredit,
}


def extra_columns(table: str, postgres: bool) -> dict[str, Any]:
    """Columns the models have beyond COLUMNS, with the value every row gets (NULL or the field's default).

    Model defaults live in Python, not in the schema, so a column added later would otherwise break the raw INSERT.
    """
    meta = MODELS[table]._meta
    extras: dict[str, Any] = {}
    for name, column in meta.fields_db_projection.items():
        if column in COLUMNS[table]:
            continue
        field = meta.fields_map[name]
        if field.default is None and not field.null:
            raise SeedError(f"{table}.{column} has no default: bench/seed.py must learn to fill it")
        value = field.default() if callable(field.default) else field.default
        value = None if value is None else field.to_db_value(value, None)
        if isinstance(value, Decimal) and not postgres:
            value = str(value)
        extras[column] = value
    return extras


def insert_sql(table: str, postgres: bool, extras: dict[str, Any] | None = None) -> str:
    columns = (*COLUMNS[table], *(extras or {}))
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1)) if postgres else ", ".join("?" * len(columns))
    names = ", ".join(f'"{c}"' for c in columns)
    return f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608 - table and columns are constants


async def seed(database_url: str, members: int, config: dict[str, Any]) -> Totals:
    """Migrate `database_url` (which must hold no members), apply the program and write the members."""
    from tortoise import connections
    from tortoise.transactions import in_transaction

    postgres = is_postgres(database_url)
    await migrate(database_url)
    await disconnect()
    await connect(database_url)
    try:
        if await Member.exists():
            raise SeedError(f"{database_url} already has members: seed an empty database")
        program = await apply_program_config(config)
        tiers = tiers_of(program)
        now = clock.now()
        seeder = Seeder(program, tiers, now, postgres=postgres)
        extras = {table: extra_columns(table, postgres) for table in TABLE_ORDER}
        for table, columns in extras.items():
            if columns:
                print(f"bench db: {table}: filling {sorted(columns)} with model defaults")
        async with in_transaction() as conn:
            for rows in seeder.batches(members):
                for table in TABLE_ORDER:
                    batch = rows.tables[table]
                    if extras[table]:
                        tail = tuple(extras[table].values())
                        batch = [(*row, *tail) for row in batch]
                    if batch:
                        await conn.execute_many(insert_sql(table, postgres, extras[table]), batch)
        if postgres:
            db = connections.get("default")
            for table in TABLE_ORDER:
                await db.execute_script(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "  # noqa: S608 - constants
                    f'(SELECT COALESCE(MAX(id), 1) FROM "{table}"));'
                )
            await db.execute_script("ANALYZE;")
        else:
            await connections.get("default").execute_script("ANALYZE;")
        await verify(now, members)
        return seeder.totals
    finally:
        await disconnect()


# --- verification ----------------------------------------------------------------------------------

INVARIANT_QUERIES = {
    "cached balances equal the ledger sums": """
        SELECT m.id FROM member m
        LEFT JOIN (SELECT member_id, SUM(delta_available) a, SUM(delta_pending) p, SUM(delta_lifetime) l
                   FROM ledger_entry GROUP BY member_id) s ON s.member_id = m.id
        WHERE m.points_available != COALESCE(s.a, 0) OR m.points_pending != COALESCE(s.p, 0)
           OR m.lifetime_earned != COALESCE(s.l, 0) OR m.points_available < 0 OR m.points_pending < 0
        LIMIT 5""",
    "lots agree with the balances": """
        SELECT m.id FROM member m
        LEFT JOIN (SELECT member_id,
                          SUM(CASE WHEN status = 'available' THEN remaining ELSE 0 END) a,
                          SUM(CASE WHEN status = 'pending' THEN remaining ELSE 0 END) p
                   FROM points_lot GROUP BY member_id) s ON s.member_id = m.id
        WHERE m.points_available != COALESCE(s.a, 0) OR m.points_pending != COALESCE(s.p, 0)
        LIMIT 5""",
    "lot remaining = amount - allocations": """
        SELECT l.id FROM points_lot l
        LEFT JOIN (SELECT lot_id, SUM(amount) taken FROM lot_allocation GROUP BY lot_id) a ON a.lot_id = l.id
        WHERE l.remaining != l.amount - COALESCE(a.taken, 0) OR l.remaining < 0 OR l.remaining > l.amount
        LIMIT 5""",
}


async def verify(now: datetime, members: int) -> None:
    """All members by SQL aggregates, then a random sample through the ORM exactly as tests/invariants.py does."""
    from tortoise import connections

    db = connections.get("default")
    count = await Member.all().count()
    if count != members:
        raise SeedError(f"expected {members} members, found {count}")
    for name, sql in INVARIANT_QUERIES.items():
        bad = await db.execute_query_dict(sql)
        if bad:
            raise SeedError(f"invariant broken ({name}): {bad}")
    due = await Member.filter(next_settle_at__lte=now + SAFE_MARGIN).count()
    due_tier = await Member.filter(tier_held_until__lte=now + SAFE_MARGIN).count()
    if due or due_tier:
        raise SeedError(f"{due} members due for settling and {due_tier} for tier evaluation right after seeding")
    sample = random.Random(RANDOM_SEED + 1).sample(range(1, members + 1), min(SAMPLE_MEMBERS, members))
    for member_id in sample:
        await verify_member(member_id)


async def verify_member(member_id: int) -> None:
    member = await Member.get(id=member_id)
    entries = await LedgerEntry.filter(member_id=member_id).values_list(
        "delta_available", "delta_pending", "delta_lifetime"
    )
    sums = tuple(sum(row[i] for row in entries) for i in range(3))
    if (member.points_available, member.points_pending, member.lifetime_earned) != sums:
        raise SeedError(f"member {member_id}: cached balances differ from the ledger sum {sums}")
    lots = await PointsLot.filter(member_id=member_id)
    available = sum(lot.remaining for lot in lots if lot.status == LotStatus.AVAILABLE)
    pending = sum(lot.remaining for lot in lots if lot.status == LotStatus.PENDING)
    if (available, pending) != (member.points_available, member.points_pending):
        raise SeedError(f"member {member_id}: lots hold {available}/{pending}")
    taken: dict[int, int] = {}
    for lot_id, amount in await LotAllocation.filter(lot_id__in=[lot.id for lot in lots]).values_list(
        "lot_id", "amount"
    ):
        taken[lot_id] = taken.get(lot_id, 0) + amount
    for lot in lots:
        if not 0 <= lot.remaining <= lot.amount or lot.remaining != lot.amount - taken.get(lot.id, 0):
            raise SeedError(f"lot {lot.id}: remaining {lot.remaining} of {lot.amount}, allocations {taken.get(lot.id)}")
    candidates = [lot.available_at for lot in lots if lot.status == LotStatus.PENDING]
    candidates += [lot.expires_at for lot in lots if lot.status == LotStatus.AVAILABLE and lot.remaining > 0]
    expected = min((c for c in candidates if c is not None), default=None)
    if member.next_settle_at != expected:
        raise SeedError(f"member {member_id}: next_settle_at {member.next_settle_at}, expected {expected}")


# --- the cached SQLite file ------------------------------------------------------------------------


def program_hash() -> str:
    return hashlib.sha256(PROGRAM_FILE.read_bytes()).hexdigest()


def meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def cached(path: Path, members: int) -> dict[str, Any] | None:
    """The metadata of a reusable seeded file at `path`, or None if it must be (re-)seeded."""
    try:
        meta = json.loads(meta_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not path.exists() or meta.get("seed_version") != SEED_VERSION or meta.get("members") != members:
        return None
    if meta.get("program_sha256") != program_hash():
        return None  # demo/program.toml changed: tiers, rates or windows may differ
    valid_until = datetime.fromisoformat(meta["valid_until"]) if meta.get("valid_until") else None
    if valid_until is not None and valid_until <= clock.now() + REUSE_MARGIN:
        return None  # members would start to mature, expire or fall due for tier evaluation during the run
    return meta


def ensure_sqlite(path: Path = SQLITE_PATH, members: int = MEMBERS, *, force: bool = False) -> dict[str, Any]:
    """Seed `path` unless a current seed of the same version is cached there; returns its metadata."""
    meta = None if force else cached(path, members)
    if meta is not None:
        print(f"bench db: reusing {path} (seed v{SEED_VERSION}, seeded {meta['seeded_at']})")
        return meta
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    for stale in (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm"), meta_path(path)):
        stale.unlink(missing_ok=True)
    print(f"bench db: seeding {members} members into {path} ...", flush=True)
    meta = run_seed(f"sqlite://{tmp}", members)
    tmp.replace(path)
    for suffix in ("-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    meta_path(path).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def run_seed(database_url: str, members: int) -> dict[str, Any]:
    started = time.perf_counter()
    config = tomllib.loads(PROGRAM_FILE.read_text())
    totals = asyncio.run(seed(database_url, members, config))
    seconds = time.perf_counter() - started
    meta = {
        "seed_version": SEED_VERSION,
        "program_sha256": program_hash(),
        "members": members,
        "seeded_at": clock.now().isoformat(),
        "seconds": round(seconds, 1),
        "valid_until": totals.valid_until.isoformat() if totals.valid_until else None,
        "rows": totals.rows,
        "tiers": totals.tiers,
        "entry_kinds": totals.entry_kinds,
    }
    print(
        f"bench db: seeded and verified {database_url} in {seconds:.1f}s: "
        + ", ".join(f"{n} {t}" for t, n in totals.rows.items())
        + f"; tiers {totals.tiers}"
    )
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--sqlite", type=Path, default=SQLITE_PATH, help="the cached SQLite file")
    parser.add_argument("--force", action="store_true", help="re-seed the SQLite file even if it is current")
    parser.add_argument("--postgres", metavar="URL", help="also seed this empty PostgreSQL database")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    try:
        ensure_sqlite(args.sqlite, args.members, force=args.force)
        if args.postgres:
            run_seed(args.postgres, args.members)
    except SeedError as exc:
        print(f"bench db: SEEDING FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
