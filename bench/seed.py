"""Seed a benchmark database: 10,000 members with ~50 ledger entries each, made by the real services.

The seeder has no rules of its own. Under a frozen business clock (`loyalty.clock.FrozenClock`), `TEMPLATES`
template members live through `HISTORY_DAYS` of business time using the production entry points only: they enroll,
give a birthday, shop (receipts with lines: stamp cards, bonus rules, campaigns, gift cards, voided lines), return
purchases by amount or by lines, show offers at the till, redeem rewards, hand in, cancel or forget their vouchers,
and now and then get a goodwill adjustment. Every night the jobs run (maturing and expiry, tier evaluation, birthday
points, voucher expiry, outbox dispatch), and every `PROGRAM_REFRESH_DAYS` the program (`demo/program.toml`
through `loyalty.seeding.seed_from_config`, without its demo members and logins) is applied again, as a program
team running `klubb seed` for a new round of offers and campaigns would. The history ends at the seeding's "now".

Then the templates' rows are cloned in bulk until there are `--members` members. Cloned are the rows of every table
that references a member, directly or through another such table (found through the models' foreign keys, with
every column the models have), with primary keys shifted by a per-table offset, foreign keys remapped alike, and
fresh unique or secret values: member number (random, with its Luhn digit), Firebase uid, email, display name, card
secret, voucher codes, receipt and refund ids. Timestamps are copied unchanged. Rows go in with raw `executemany`,
one transaction per batch of about `BATCH_MEMBERS` members. Not cloned: idempotency records, outbox events and the
audit log, the bookkeeping of the templates' requests (their stored answers and snapshots name the templates' rows).
The donation totals (`loyalty.donations`, per reward) are recomputed from all the vouchers after the clones.

Nothing matures, expires or falls due for tier evaluation within `SAFE_MARGIN` of the seeding time (no credit is
made whose lot would mature or expire then; each template is checked), so reads during the benchmark never settle a
member. After seeding, every member is checked by SQL aggregates and a random sample through the ORM; any failure
aborts.

    python -m bench.seed                     # var/bench.sqlite3, reused while SEED_VERSION and the data are current
    python -m bench.seed --force             # re-seed the SQLite file
    python -m bench.seed --postgres URL      # also seed an (empty) PostgreSQL database
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import functools
import graphlib
import hashlib
import heapq
import json
import os
import random
import secrets
import sys
import time
import tomllib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.models import Model
from tortoise.transactions import in_transaction

from loyalty import clock, donations, jobs, sql
from loyalty.actors import Actor
from loyalty.adjustments import AdjustmentReason, adjust_member_points
from loyalty.db import connect, disconnect, migrate
from loyalty.earning import LineInput
from loyalty.members import ProfileChanges, enroll_member, get_member, new_member_number, update_profile
from loyalty.models import (
    AuditLog,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    Member,
    PointsLot,
    Program,
    StaffRole,
    VoucherStatus,
)
from loyalty.offers import activate_offer, offers_for, redeem_offer
from loyalty.program import load_program
from loyalty.purchases import LineRefund, PurchaseRequest, record_purchase, refund_purchase
from loyalty.rewards import catalog, redeem_reward
from loyalty.seeding import seed_from_config
from loyalty.staff import create_staff, staff_actor
from loyalty.vouchers import (
    barcode_value,
    cancel_voucher,
    get_member_voucher,
    member_vouchers,
    new_code,
    redeem_voucher,
)
from worker.dispatch import dispatch_pending

# Bump when the generated data changes: a cached database of another version is re-seeded.
SEED_VERSION = 3
MEMBERS = 10_000
TEMPLATES = 40
HISTORY_DAYS = 730
RANDOM_SEED = 20261123
ROOT = Path(__file__).resolve().parent.parent
PROGRAM_FILE = Path("demo/program.toml")  # paths are relative to the checkout (main() changes into it)
SQLITE_PATH = Path("var/bench.sqlite3")
# Nothing matures, expires or falls due for tier evaluation this soon after seeding...
SAFE_MARGIN = timedelta(days=2)
# ...counted from the end of seeding, which comes this long after the end of the history at the latest...
SEED_SLACK = timedelta(hours=6)
# ...and a cached database is only reused while that stays true for at least this long.
REUSE_MARGIN = timedelta(hours=1)
BATCH_MEMBERS = 1_000
SAMPLE_MEMBERS = 100
NIGHTLY_HOUR = 3  # UTC: when the jobs run every night
# The program team re-applies the program file this often, for a new round of offers and campaigns.
PROGRAM_REFRESH_DAYS = 60
STAFF_EMAIL = "bench-seed@example.com"
TIMEZONE = "Europe/Stockholm"
DAY = timedelta(days=1)
STORES = tuple(f"STO{i:02d}" for i in range(1, 21))
FIRST_NAMES = ("Anna", "Bo", "Cecilia", "David", "Elin", "Filip", "Greta", "Hugo", "Ida", "Johan", "Karin", "Lars")
LAST_NAMES = ("Andersson", "Berg", "Carlsson", "Dahl", "Ek", "Falk", "Gustafsson", "Holm", "Isaksson", "Johansson")
# Member tables left out of the clones: the audit log's snapshots name the template's receipts and rows.
NOT_CLONED: tuple[type[Model], ...] = (AuditLog,)


class SeedError(RuntimeError):
    """The seeded data break a ledger invariant or the safety margin (a bug in the seeder, never to be ignored)."""


@dataclass
class Totals:
    templates: int
    rows: dict[str, int]
    tiers: dict[str, int]
    entry_kinds: dict[str, int]
    valid_until: datetime | None
    history_seconds: float
    clone_seconds: float


# --- the templates' history, through the services ----------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """How a kind of member shops; each template draws its own figures around these."""

    basket: int  # typical basket, minor units
    purchases: tuple[int, int]
    redemptions: tuple[int, int]
    enrolled_days_ago: tuple[float, float]
    lapsed_days_ago: tuple[float, float] | None = None  # stops shopping this many days before the end


HEAVY = Profile(12_000, (40, 50), (8, 14), (400, 700))  # reaches Gold
MEDIUM = Profile(4_500, (20, 27), (4, 12), (200, 700))  # about Silver
LIGHT = Profile(2_000, (17, 27), (4, 12), (90, 720))
OCCASIONAL = Profile(1_200, (17, 27), (4, 12), (90, 720))  # stays in the entry tier
LAPSED = Profile(2_500, (12, 20), (2, 6), (560, 720), lapsed_days_ago=(200, 400))
NEW = Profile(2_500, (1, 3), (0, 1), (3, 25))
REFUND_SHARE = 0.08  # of purchases, returned within 40 days
OFFER_SHARE = 0.15  # of purchases, with an offer shown at the till
STAMP_VOUCHER_USE = 0.7  # chance a stamp-card voucher is handed in at a visit
BIRTHDAY_SHARE = 0.7
CONSENT_SHARE = 0.6
GOODWILL_SHARE = 0.1


def profile_of(index: int) -> Profile:
    # Fixed by position, so that any number of templates from 3 up has a Gold, a Silver and an entry-tier member.
    if index % 20 == 0:
        return HEAVY
    if index % 4 == 1:
        return MEDIUM
    if index % 10 in (3, 8):
        return LAPSED
    if index % 10 == 7:
        return NEW
    if index % 4 == 2:
        return OCCASIONAL
    return LIGHT


Action = Callable[[], Awaitable[None]]


class History:
    """The business timeline: actions in time order under the frozen clock, the nightly jobs in between."""

    def __init__(
        self,
        frozen: clock.FrozenClock,
        end: datetime,
        config: dict[str, Any],
        program: Program,
        actor: Actor,
    ) -> None:
        self.clock = frozen
        self.start = frozen.now()
        self.end = end
        self.config = config
        self.currency = program.currency
        self.actor = actor
        pending = timedelta(days=program.pending_days)
        lifetime = timedelta(days=program.expiry_days) if program.expiry_days else None
        # How long after it is credited a lot matures or expires: a purchase's lot at the end of the return window
        # and a lifetime later; a direct credit (birthday, offer bonus, goodwill) a lifetime later.
        self.due_after = (pending, *((pending + lifetime, lifetime) if lifetime else ()))
        self.queue: list[tuple[datetime, int, Action]] = []
        self.seq = 0
        night = self.start.replace(hour=NIGHTLY_HOUR, minute=0, second=0, microsecond=0) + DAY
        while night < end:
            self.at(night, self.nightly)
            night += DAY
        refresh = self.start + PROGRAM_REFRESH_DAYS * DAY
        while refresh < end:
            self.at(refresh, self.apply_program)
            refresh += PROGRAM_REFRESH_DAYS * DAY

    def credit_allowed(self, at: datetime) -> bool:
        """False if a lot credited at `at` would mature or expire within the safety margin after seeding."""
        limit = self.end + SAFE_MARGIN + SEED_SLACK
        return not any(self.end < at + after <= limit for after in self.due_after)

    def credit_time(self, rng: random.Random, first: datetime, last: datetime) -> datetime | None:
        """A random moment in [first, last] at which a credit is allowed (None if ten draws found none)."""
        if last <= first:
            return None
        for _ in range(10):
            at = first + (last - first) * rng.random()
            if self.credit_allowed(at):
                return at
        return None

    def at(self, when: datetime, action: Action) -> None:
        """Run `action` at `when`, if that is before the end of the history (later plans do not happen)."""
        if when < self.clock.now():
            raise SeedError(f"an action planned for {when} would run in the past (now {self.clock.now()})")
        if when < self.end:
            self.seq += 1
            heapq.heappush(self.queue, (when, self.seq, action))

    async def apply_program(self) -> None:
        await apply_program(self.config)

    async def nightly(self) -> None:
        await jobs.expire_points()
        await jobs.evaluate_tiers()
        # Birthday points are a lot that expires a lifetime later: skipped on the nights that would fall due
        # right after seeding (the job credits on any later night of the birthday month).
        if self.credit_allowed(clock.now()):
            await jobs.birthday_rewards()
        await jobs.expire_vouchers()
        await dispatch_pending([])  # as the embedded worker would: there are no webhook endpoints

    async def run(self) -> None:
        while self.queue:
            when, _, action = heapq.heappop(self.queue)
            self.clock.set(when)
            await action()
        self.clock.set(self.end)
        await self.apply_program()  # the offers and campaigns running during the benchmark
        await self.nightly()


class TemplateMember:
    """One template member: what it does and when, drawn from its own random stream."""

    def __init__(self, index: int, history: History) -> None:
        self.index = index
        self.history = history
        self.rng = random.Random(RANDOM_SEED * 1_000 + index)
        self.profile = profile_of(index)
        self.home_store = self.rng.choice(STORES)
        self.spend = self.profile.basket * self.rng.lognormvariate(0, 0.3)
        self.member_id = 0
        self.receipts = 0
        self.redemptions = 0

    def plan(self) -> None:
        """Schedule the enrollment and everything the member will do."""
        rng, history, profile = self.rng, self.history, self.profile
        end = history.end
        active_until = end
        if profile.lapsed_days_ago:
            active_until = end - rng.uniform(*profile.lapsed_days_ago) * DAY
        enrolled = max(history.start + DAY, end - rng.uniform(*profile.enrolled_days_ago) * DAY)
        history.at(enrolled, self.enroll)
        for _ in range(rng.randint(*profile.purchases)):
            at = history.credit_time(rng, enrolled + timedelta(hours=1), active_until)
            if at is not None:
                history.at(at, self.purchase)
        for _ in range(rng.randint(*profile.redemptions)):
            history.at(enrolled + (min(end, active_until + 30 * DAY) - enrolled) * rng.random(), self.redeem)
        if rng.random() < GOODWILL_SHARE:
            at = history.credit_time(rng, enrolled + 30 * DAY, active_until)
            if at is not None:
                history.at(at, self.goodwill)

    async def enroll(self) -> None:
        rng = self.rng
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        member, _ = await enroll_member(
            f"bench:template:{self.index}", email=f"bench-template{self.index}@example.com", display_name=name
        )
        self.member_id = member.id
        birthday = None
        if rng.random() < BIRTHDAY_SHARE:
            birthday = date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        changes = ProfileChanges(birthday=birthday, timezone=TIMEZONE, marketing_consent=rng.random() < CONSENT_SHARE)
        await update_profile(member.id, changes)

    def basket(self) -> list[LineInput]:
        """A receipt's lines: sometimes coffee (the stamp card), beans (a bonus rule), a gift card (earns
        nothing), a voided mis-scan; always the shopping itself, last."""
        rng = self.rng
        lines = []
        if rng.random() < 0.4:
            cups = rng.randint(1, 3)
            lines.append(LineInput("COFFEE-REG", "coffee", cups, 350 * cups))
        if rng.random() < 0.1:
            lines.append(LineInput("BEANS-500", "coffee-beans", 1, 1290))
        if rng.random() < 0.03:
            lines.append(LineInput("GIFTCARD-50", "giftcard", 1, 5000))
        if rng.random() < 0.05:
            lines.append(LineInput("MISSCAN", "groceries", 1, 199, voided=True))
        amount = max(100, int(self.spend * rng.lognormvariate(0, 0.5)))
        lines.append(LineInput(f"SKU-{rng.randint(1, 500):03d}", "groceries", rng.randint(1, 4), amount))
        return lines

    async def purchase(self) -> None:
        rng, history = self.rng, self.history
        self.receipts += 1
        receipt = f"T{self.index:03d}-{self.receipts:03d}"
        store = self.home_store if rng.random() < 0.8 else rng.choice(STORES)
        lines = self.basket()
        await self.hand_in_stamp_vouchers(store)
        discount = await self.show_offer(store, receipt, sum(line.amount for line in lines if not line.voided))
        if discount:
            lines[-1] = dataclasses.replace(lines[-1], amount=max(0, lines[-1].amount - discount))
        total = sum(line.amount for line in lines if not line.voided)
        request = PurchaseRequest(self.member_id, store, receipt, clock.now(), history.currency, total, tuple(lines))
        await record_purchase(history.actor, request)
        if total and rng.random() < REFUND_SHARE:
            refund = functools.partial(self.refund, store, receipt, tuple(lines), total)
            history.at(clock.now() + rng.uniform(1, 40) * DAY, refund)

    async def hand_in_stamp_vouchers(self, store: str) -> None:
        for voucher in await member_vouchers(self.member_id, at=clock.now(), limit=10, status=VoucherStatus.ACTIVE):
            if voucher.stamp_card_id is not None and self.rng.random() < STAMP_VOUCHER_USE:
                await self.use_voucher(voucher.id, store)

    async def show_offer(self, store: str, receipt: str, total: int) -> int:
        """Sometimes the member shows the most relevant offer at the till (clipping it first if it needs that);
        returns the discount the till gives."""
        if self.rng.random() >= OFFER_SHARE:
            return 0
        member = await get_member(self.member_id)
        usable = [
            item
            for item in await offers_for(member, clock.now())
            if item.offer.min_spend is None or total >= item.offer.min_spend
        ]
        if not usable:
            return 0
        offer = usable[0].offer
        if offer.requires_activation and not usable[0].activated:
            await activate_offer(self.member_id, offer.id)
        result = await redeem_offer(
            self.history.actor,
            member_id=self.member_id,
            offer_id=offer.id,
            store_code=store,
            purchase_total=total,
            idempotency_key=f"{receipt}:offer",
        )
        return result.discount or 0

    async def refund(self, store: str, receipt: str, lines: Sequence[LineInput], total: int) -> None:
        rng, actor = self.rng, self.history.actor
        refund_id = f"{receipt}-R"
        if rng.random() < 0.5:
            amount = rng.randint(max(1, total // 4), total)
            await refund_purchase(actor, store_code=store, receipt_id=receipt, refund_id=refund_id, amount=amount)
            return
        line_no, line = rng.choice([(no, line) for no, line in enumerate(lines, start=1) if not line.voided])
        returned = [LineRefund(line_no, rng.randint(1, line.quantity))]
        await refund_purchase(actor, store_code=store, receipt_id=receipt, refund_id=refund_id, lines=returned)

    async def redeem(self) -> None:
        """Spend points on a reward the member can take now; then use the voucher at a till, cancel it, or let it
        expire."""
        rng, history = self.rng, self.history
        member = await get_member(self.member_id)
        items = await catalog(member, await load_program(), clock.now(), limit=100)
        # Not rewards with a limited stock: their clones would hold vouchers the stock never paid for.
        rewards = [item.reward for item in items if item.unavailable is None and item.reward.stock is None]
        if not rewards:
            return
        reward = rng.choice(rewards)
        self.redemptions += 1
        voucher_id = await redeem_reward(self.member_id, reward.id, idempotency_key=f"redeem-{self.redemptions}")
        voucher = await get_member_voucher(self.member_id, voucher_id)
        if voucher.status != VoucherStatus.ACTIVE:
            return  # fulfilled at once (a donation, cashback credited to the balance)
        now = clock.now()
        room = min(25 * DAY, voucher.expires_at - now - timedelta(hours=1))  # while it is valid
        if room <= timedelta(0):
            return
        choice = rng.random()
        if choice < 0.65:
            history.at(now + room * rng.random(), functools.partial(self.use_voucher, voucher_id, self.home_store))
        elif choice < 0.75:
            history.at(now + min(room, 10 * DAY) * rng.random(), functools.partial(self.cancel_voucher, voucher_id))

    async def use_voucher(self, voucher_id: int, store: str) -> None:
        voucher = await get_member_voucher(self.member_id, voucher_id)
        await redeem_voucher(
            self.history.actor, code=barcode_value(voucher.code), store_code=store, member_id=self.member_id
        )

    async def cancel_voucher(self, voucher_id: int) -> None:
        await cancel_voucher(self.member_id, voucher_id)

    async def goodwill(self) -> None:
        await adjust_member_points(
            self.history.actor,
            self.member_id,
            50,
            reason=AdjustmentReason.GOODWILL,
            idempotency_key=f"goodwill-{self.index}",
            store_code=self.home_store,
        )


async def make_history(end: datetime, config: dict[str, Any], templates: int, days: int) -> None:
    """Apply the program and live the templates' last `days` days up to `end` under a frozen clock."""
    frozen = clock.FrozenClock(end - days * DAY)
    previous = clock.use_clock(frozen)
    try:
        history = History(frozen, end, config, await _program(config), await _seeding_staff())
        for index in range(templates):
            TemplateMember(index, history).plan()
        await history.run()
    finally:
        clock.use_clock(previous)
    limit = end + SAFE_MARGIN + SEED_SLACK
    for member in await Member.all().order_by("id"):
        for name, due in (("next_settle_at", member.next_settle_at), ("tier_held_until", member.tier_held_until)):
            if due is not None and due <= limit:
                hint = " (a tier period ends then: seed after it)" if name == "tier_held_until" else ""
                raise SeedError(f"template member {member.id}: {name} {due} is within the safety margin{hint}")


async def apply_program(config: dict[str, Any]) -> None:
    # The demo's members and logins are not bench data: the templates are the members, and bench/run.py creates
    # its own cashier.
    await seed_from_config({key: value for key, value in config.items() if key not in ("members", "staff")})


async def _program(config: dict[str, Any]) -> Program:
    await apply_program(config)
    return await load_program()


async def _seeding_staff() -> Actor:
    """The admin who works every till of the history."""
    staff = await create_staff(STAFF_EMAIL, secrets.token_urlsafe(24), StaffRole.ADMIN, display_name="Bench seeding")
    return staff_actor(staff)


# --- cloning the templates' rows -----------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """A table whose rows belong to members, as the models describe it (`loyalty.sql.table`)."""

    name: str
    columns: tuple[str, ...]
    references: dict[str, str]  # foreign-key column -> the cloned table it points into
    unique: tuple[tuple[str, ...], ...]  # column sets kept unique besides the primary key


def _describe(model: type[Model], owned: set[type[Model]]) -> Table:
    table = sql.table(model)
    if table.primary_key != "id":
        raise SeedError(f"{table.name}: bench/seed.py clones tables whose primary key is `id`")
    return Table(
        name=table.name,
        columns=table.columns,
        references={column: sql.table(target).name for column, target in table.references.items() if target in owned},
        unique=table.unique,
    )


def cloned_tables() -> list[Table]:
    """Every table that references a member, directly or through another such table, parents first."""
    models = [model for model in Tortoise.apps["loyalty"].values() if model not in NOT_CLONED]
    targets = {model: set(sql.table(model).references.values()) for model in models}
    owned: set[type[Model]] = {Member}
    while more := {m for m in models if m not in owned and targets[m] & owned}:
        owned |= more
    # In the models' order, so that the tables come out in the same order every time.
    parents = {m: (targets[m] & owned) - {m} for m in models if m in owned}
    return [_describe(model, owned) for model in graphlib.TopologicalSorter(parents).static_order()]


# A clone's value of a column, from the template's value, the clone row's id and the clone's round (1, 2, ...).
Fresh = Callable[[Any, int, int], Any]


def fresh_values(template_numbers: set[str], rng: random.Random) -> dict[tuple[str, str], Fresh]:
    """The columns each clone needs its own value in: unique keys, secrets, and what tells members apart."""
    used = set(template_numbers)

    def member_number(_value: Any, _member_id: int, _round: int) -> str:
        number = new_member_number()
        while number in used:
            number = new_member_number()
        used.add(number)
        return number

    return {
        ("member", "firebase_uid"): lambda _v, member_id, _k: f"bench:{member_id}",
        ("member", "member_number"): member_number,
        ("member", "email"): lambda _v, member_id, _k: f"bench{member_id}@example.com",
        ("member", "email_key"): lambda _v, member_id, _k: f"bench{member_id}@example.com",
        ("member", "referral_code"): lambda _v, _id, _k: None,  # given on first use, as `referrals.code_of` does
        ("member", "display_name"): lambda _v, _id, _k: f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        ("member", "card_secret"): lambda _v, _id, _k: secrets.token_hex(20),  # as enroll_member draws it
        ("purchase", "receipt_id"): lambda receipt, _id, k: f"{receipt}.{k}",
        ("refund", "refund_id"): lambda refund, _id, k: f"{refund}.{k}",
        ("voucher", "code"): lambda _v, _id, _k: new_code(),
    }


def row_cloner(
    table: Table, spans: dict[str, int], fresh: dict[tuple[str, str], Fresh]
) -> Callable[[tuple[Any, ...], int], list[Any]]:
    """A function (template row, round k) -> the k-th clone's row: ids and references moved by k x the table's span."""
    index = {column: i for i, column in enumerate(table.columns)}
    id_at, span = index["id"], spans[table.name]
    shifts = [(index[column], spans[target]) for column, target in table.references.items()]
    fills = [(index[column], rule) for (name, column), rule in fresh.items() if name == table.name]

    def clone(row: tuple[Any, ...], k: int) -> list[Any]:
        out = list(row)
        out[id_at] += k * span
        for i, step in shifts:
            if out[i] is not None:
                out[i] += k * step
        for i, rule in fills:
            out[i] = rule(out[i], out[id_at], k)
        return out

    return clone


def insert_sql(table: Table, postgres: bool) -> str:
    count = len(table.columns)
    marks = ", ".join(f"${i}" for i in range(1, count + 1)) if postgres else ", ".join("?" * count)
    names = ", ".join(f'"{c}"' for c in table.columns)
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'  # noqa: S608 - names come from the models


async def _read(conn: BaseDBAsyncClient, table: Table) -> list[tuple[Any, ...]]:
    names = ", ".join(f'"{c}"' for c in table.columns)
    _, rows = await conn.execute_query(f'SELECT {names} FROM "{table.name}" ORDER BY "id"')  # noqa: S608 - models
    return [tuple(row) for row in rows]


def _owners(tables: list[Table], rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[int]]:
    """Per table, the template member each row belongs to (following its references up to the member)."""
    owners: dict[str, list[int]] = {}
    ids: dict[str, dict[int, int]] = {}
    for table in tables:
        index = {column: i for i, column in enumerate(table.columns)}
        # The direct member reference first: it is there whenever the row has one.
        references = sorted(table.references.items(), key=lambda item: item[1] != "member")
        owners[table.name], ids[table.name] = [], {}
        for row in rows[table.name]:
            if table.name == "member":
                owner = row[index["id"]]
            else:
                found = next(((c, target) for c, target in references if row[index[c]] is not None), None)
                if found is None:
                    raise SeedError(f"{table.name} row {row[index['id']]} belongs to no member")
                owner = ids[found[1]][row[index[found[0]]]]
            owners[table.name].append(owner)
            ids[table.name][row[index["id"]]] = owner
    return owners


async def clone_templates(members: int) -> list[Table]:
    """Copy the template members' rows until there are `members` members (ids 1..members); returns the tables."""
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    tables = cloned_tables()
    rows = {table.name: await _read(conn, table) for table in tables}
    templates = len(rows["member"])
    # Clone k of template member m becomes member m + k x templates: the ids tile 1..members (bench/run.py uses them).
    member_columns = next(table for table in tables if table.name == "member").columns
    if [row[member_columns.index("id")] for row in rows["member"]] != list(range(1, templates + 1)):
        raise SeedError("the template members must have the ids 1..n: seed an empty database")
    numbers = {row[member_columns.index("member_number")] for row in rows["member"]}
    fresh = fresh_values(numbers, random.Random(RANDOM_SEED))
    for table in tables:
        for columns in table.unique if rows[table.name] else ():
            if not any(c in table.references or (table.name, c) in fresh for c in columns):
                raise SeedError(f"{table.name}{columns} is unique: bench/seed.py must give each clone a fresh value")
    # Rows come ordered by id: a table's span is its last template row's id.
    spans = {t.name: rows[t.name][-1][t.columns.index("id")] if rows[t.name] else 0 for t in tables}
    owners = _owners(tables, rows)
    cloners = {table.name: row_cloner(table, spans, fresh) for table in tables}
    rounds = -(-members // templates)
    per_batch = max(1, BATCH_MEMBERS // templates)
    for first in range(1, rounds, per_batch):
        batch = range(first, min(rounds, first + per_batch))
        async with in_transaction() as tx:
            for table in tables:
                clone = cloners[table.name]
                out = [
                    clone(row, k)
                    for k in batch
                    for row, owner in zip(rows[table.name], owners[table.name], strict=True)
                    if owner + k * templates <= members
                ]
                if out:
                    await tx.execute_many(insert_sql(table, postgres), out)
    async with in_transaction() as tx:
        await donations.rebuild_totals(tx)  # the clones' donation vouchers were inserted past count_donation
    if postgres:
        for table in tables:
            # Past the inserted ids, so that the server's own inserts get new ones.
            await conn.execute_script(
                f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "  # noqa: S608 - model names
                f'COALESCE((SELECT MAX(id) FROM "{table.name}"), 1), '
                f'(SELECT MAX(id) IS NOT NULL FROM "{table.name}"));'
            )
    await conn.execute_script("ANALYZE;")
    return tables


async def count_totals(tables: list[Table], templates: int, history_seconds: float, clone_seconds: float) -> Totals:
    conn = connections.get("default")
    rows: dict[str, int] = {}
    for table in tables:
        rows[table.name] = (await conn.execute_query_dict(f'SELECT COUNT(*) AS n FROM "{table.name}"'))[0]["n"]  # noqa: S608
    tiers = await conn.execute_query_dict(
        "SELECT t.name AS name, COUNT(*) AS n FROM member m JOIN tier t ON t.id = m.tier_id GROUP BY t.name"
    )
    kinds = await conn.execute_query_dict("SELECT kind, COUNT(*) AS n FROM ledger_entry GROUP BY kind")
    # values(), not values_list(flat=True), which tortoise types as tuples.
    dues: list[datetime] = [
        row[name]
        for name in ("next_settle_at", "tier_held_until")
        for row in await Member.filter(**{f"{name}__isnull": False}).order_by(name).limit(1).values(name)
    ]
    return Totals(
        templates=templates,
        rows=rows,
        tiers={row["name"]: row["n"] for row in tiers},
        entry_kinds={row["kind"]: row["n"] for row in kinds},
        valid_until=min(dues, default=None),
        history_seconds=round(history_seconds, 1),
        clone_seconds=round(clone_seconds, 1),
    )


async def populate(
    members: int, config: dict[str, Any], *, templates: int = TEMPLATES, days: int = HISTORY_DAYS
) -> Totals:
    """Live `days` of the templates' history through the services up to the business clock's now, then clone them
    until there are `members` members. Runs on the connected, empty database."""
    templates = min(templates, members)
    started = time.perf_counter()
    print(f"bench db: {templates} template members live {days} days through the services ...", flush=True)
    await make_history(clock.now(), config, templates, days)
    lived = time.perf_counter()
    print(f"bench db: history made in {lived - started:.1f}s; cloning to {members} members ...", flush=True)
    tables = await clone_templates(members)
    return await count_totals(tables, templates, lived - started, time.perf_counter() - lived)


async def seed(database_url: str, members: int, config: dict[str, Any]) -> Totals:
    """Migrate `database_url` (which must hold no members), seed it and verify it."""
    await migrate(database_url)
    await connect(database_url)
    try:
        if await Member.exists():
            raise SeedError(f"{database_url} already has members: seed an empty database")
        totals = await populate(members, config)
        await verify(clock.now(), members)
        return totals
    finally:
        await disconnect()
        # Tortoise caches each model's SQL per connection name: the next database seeded in this process (SQLite,
        # then PostgreSQL) is "default" too and must not get the last one's dialect.
        EXECUTOR_CACHE.clear()


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
    for name, query in INVARIANT_QUERIES.items():
        bad = await db.execute_query_dict(query)
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
    candidates: list[datetime | None] = [lot.available_at for lot in lots if lot.status == LotStatus.PENDING]
    candidates += [lot.expires_at for lot in lots if lot.status == LotStatus.AVAILABLE and lot.remaining > 0]
    expected = min((c for c in candidates if c is not None), default=None)
    if member.next_settle_at != expected:
        raise SeedError(f"member {member_id}: next_settle_at {member.next_settle_at}, expected {expected}")


# --- the cached SQLite file ------------------------------------------------------------------------


def program_hash() -> str:
    return hashlib.sha256(PROGRAM_FILE.read_bytes()).hexdigest()


def migrations_hash() -> str:
    """The schema the seed was made with: a seed from before a new migration must be made again."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "loyalty" / "migrations").glob("[0-9]*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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
    if meta.get("program_sha256") != program_hash() or meta.get("migrations_sha256") != migrations_hash():
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
        "migrations_sha256": migrations_hash(),
        "members": members,
        "seeded_at": clock.now().isoformat(),
        "seconds": round(seconds, 1),
        "templates": totals.templates,
        "history_seconds": totals.history_seconds,
        "clone_seconds": totals.clone_seconds,
        "valid_until": totals.valid_until.isoformat() if totals.valid_until else None,
        "rows": totals.rows,
        "tiers": totals.tiers,
        "entry_kinds": totals.entry_kinds,
    }
    print(
        f"bench db: seeded and verified {database_url} in {seconds:.1f}s: "
        + ", ".join(f"{n} {t}" for t, n in totals.rows.items() if n)
        + f"; tiers {totals.tiers}; entries {totals.entry_kinds}"
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
