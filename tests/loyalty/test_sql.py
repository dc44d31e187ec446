"""The hand-written hot reads (`loyalty.sql`) must return exactly what the ORM returns, on both engines.

Every registered statement has a case in `CASES`: rows it must find, edge rows its WHERE must leave out, and the
ORM queryset it stands in for.
"""

import importlib
import pkgutil
import re
import subprocess
import sys
import tomllib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, cast

import pytest
from tortoise.expressions import Q, Subquery
from tortoise.functions import Count, Sum
from tortoise.models import Model
from tortoise.transactions import in_transaction

from loyalty import activity, cashback, inbox, ledger, members, memberships, rewards, rows, sql
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.members import members_by_id
from loyalty.models import (
    CashbackEntry,
    CashbackKind,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    EntryKind,
    LedgerEntry,
    LotStatus,
    Member,
    Membership,
    MembershipPlan,
    MembershipStatus,
    MessagePurpose,
    MessageStatus,
    Offer,
    OfferActivation,
    OfferBenefit,
    OfferRedemption,
    PointsLot,
    Program,
    Purchase,
    PushMessage,
    QualifyingCredit,
    Refund,
    Reward,
    RewardKind,
    StaffRole,
    StaffUser,
    StampCard,
    StampProgress,
    Tier,
    Voucher,
    VoucherStatus,
)
from loyalty.tiers import period_end, period_start
from loyalty.vouchers import issue_voucher
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import credit_points, give_available, new_member, purchase, redeem_points

ROOT = Path(__file__).resolve().parents[2]
ONE_TICK = timedelta(microseconds=1)  # the finest step both engines store


def _application_packages() -> list[str]:
    """The packages `pip install` ships (pyproject.toml), those that exist yet."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return [name for name in (p.removesuffix("*") for p in patterns) if (ROOT / name).is_dir()]


def _import_the_application() -> None:
    # A statement registers when its module loads: with every module loaded, `sql.registered()` is complete.
    for package in _application_packages():
        for module in pkgutil.walk_packages(importlib.import_module(package).__path__, f"{package}."):
            importlib.import_module(module.name)


_import_the_application()

# A statement of the tests' own: `{ids}` between other placeholders (and a quote inside an identifier: no literal).
_IDS_BETWEEN = sql.statement(
    "tests.ids_between_parameters",
    Member,
    """SELECT "id" FROM "member" AS "member's" WHERE "member_number" <> ? AND "id" IN ({ids}) AND "id" > ?"""
    ' ORDER BY "id"',
)


def _values(instance: Model | tuple[Any, ...]) -> dict[str, object]:
    if isinstance(instance, tuple):  # a row (loyalty.rows): its fields
        return dict(instance._asdict())  # type: ignore[attr-defined]
    return {column: getattr(instance, column) for column in sql.table(type(instance)).columns}


async def _consent_recorded(member_id: int, at: datetime) -> None:
    """The (push, marketing) consent behind a `marketing_consent` set by hand (the cache must equal the record)."""
    await Consent.create(
        member_id=member_id,
        channel=ConsentChannel.PUSH,
        purpose=ConsentPurpose.MARKETING,
        granted=True,
        source=ConsentSource.APP,
        changed_at=at,
    )


def _typed(row: Mapping[str, object]) -> dict[str, tuple[type, object]]:
    # With the type: 5 == Decimal(5) and "available" == LotStatus.AVAILABLE, but a caller sees the difference.
    return {column: (type(value), value) for column, value in row.items()}


async def test_members_by_id_builds_the_same_members_as_the_orm(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-sql")
    gold = await Tier.get(program_id=program.id, name="Gold")
    await Member.filter(id=member.id).update(
        birthday=date(1990, 2, 28),
        interests=["coffee", "books"],
        marketing_consent=True,
        marketing_consent_at=clock.now(),
        manual_tier_id=gold.id,
        manual_tier_until=clock.now() + timedelta(days=30),
    )
    await _consent_recorded(member.id, clock.now())
    other = await new_member("uid-sql-2")

    found = await members_by_id([member.id, other.id, other.id + 1000])

    assert sorted(found) == [member.id, other.id]
    assert _values(found[member.id]) == _values(await Member.get(id=member.id))
    assert found[member.id].manual_tier_id == gold.id  # a foreign-key column, added by Tortoise at start-up
    assert await members_by_id([]) == {}


async def test_activity_page_equals_the_orm_query(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-activity")
    await give_available(member.id, 500)
    for receipt in range(4):
        await purchase(member.id, f"R{receipt}", 1_000 + receipt, clock.now())
        clock.advance(timedelta(minutes=1))
    await ledger_helpers.redeem_points(member.id, 50, idempotency_key="k1")

    first = await activity.activity_page(member.id, 3)
    rest = await activity.activity_page(member.id, 10, before=first[-1].id)

    expected = await LedgerEntry.filter(member_id=member.id).exclude(kind=EntryKind.MATURE).order_by("-id")
    assert [_values(e) for e in first + rest] == [_values(e) for e in expected]
    assert (len(first), first[0].kind, len(expected)) == (3, EntryKind.REDEEM, 6)


async def test_fetch_fills_an_id_list_between_other_parameters(program: Program) -> None:
    members = [await new_member(f"uid-ids-{i}") for i in range(4)]
    ids = [m.id for m in members]

    rows = await sql.fetch(_IDS_BETWEEN, [members[1].member_number, ids[0]], ids=ids[:3])

    assert [row["id"] for row in rows] == [ids[2]]  # ids[0] is not > ids[0], ids[1] has the excluded number
    assert await sql.fetch(_IDS_BETWEEN, [members[1].member_number, ids[0]], ids=[]) == []


# --- every registered statement against its ORM equivalent ----------------------------------------------


@dataclass(frozen=True)
class Run:
    """One execution of a statement: its parameters, the ORM's equivalent, and what it must return."""

    orm: Awaitable[Sequence[Any]]  # a queryset (models, for `sql.select`) or a values query (rows)
    expected: list[Any]  # the ids of the models, or the exact rows
    params: Sequence[Any] = ()
    ids: Sequence[int] = ()


Case = Callable[[Program, FrozenClock], Awaitable[list[Run]]]
CASES: dict[str, Case] = {}


def case(name: str) -> Callable[[Case], Case]:
    def register(seed: Case) -> Case:
        CASES[name] = seed
        return seed

    return register


async def _members(program: Program, clock: FrozenClock) -> tuple[Member, Member, Member]:
    """A member with every kind of column filled in, one with the defaults and NULLs, and a third."""
    full = await new_member("uid-full")
    gold = await Tier.get(program_id=program.id, name="Gold")
    await Member.filter(id=full.id).update(
        phone="+4915100000001",
        display_name="Ann Full",
        birthday=date(1990, 2, 28),
        interests=["coffee", "books"],
        marketing_consent=True,
        marketing_consent_at=clock.now() - timedelta(days=3),
        timezone="Europe/Berlin",
        manual_tier_id=gold.id,
        manual_tier_until=clock.now() + timedelta(days=30, microseconds=7),
        last_purchase_at=clock.now() - timedelta(hours=5),
    )
    await _consent_recorded(full.id, clock.now() - timedelta(days=3))
    return await Member.get(id=full.id), await new_member("uid-plain"), await new_member("uid-third")


@case("members.by_id")
async def _members_by_id(program: Program, clock: FrozenClock) -> list[Run]:
    full, plain, third = await _members(program, clock)
    asked = [plain.id, full.id, plain.id, third.id + 1]  # a duplicate, and an id nobody has; not the third
    return [Run(orm=Member.filter(id__in=asked), expected=[full.id, plain.id], ids=asked)]


@case("invitations.version_and_holder")
async def _invitation_version_and_holder(program: Program, clock: FrozenClock) -> list[Run]:
    holder, other = await new_member("uid-holder"), await new_member("uid-other")
    await Member.filter(id=holder.id).update(referral_code="ACDE3467")
    await Member.filter(id=other.id).update(referral_code="ACDE3469")
    version = (await Program.get(id=program.id)).version

    def orm(code: str | None, program_id: int = program.id) -> Any:
        found = Member.filter(referral_code=code) if code is not None else Member.filter(id=0)
        return Program.filter(id=program_id).annotate(holder=Subquery(found.values("id"))).values("version", "holder")

    return [
        Run(orm=orm("ACDE3467"), expected=[{"version": version, "holder": holder.id}], params=["ACDE3467", program.id]),
        Run(orm=orm("ACDE3468"), expected=[{"version": version, "holder": None}], params=["ACDE3468", program.id]),
        Run(orm=orm(None), expected=[{"version": version, "holder": None}], params=[None, program.id]),  # no code
        Run(orm=orm("ACDE3467", program.id + 1), expected=[], params=["ACDE3467", program.id + 1]),  # no program
    ]


def _window(program: Program, clock: FrozenClock) -> list[datetime]:
    return [period_start(program, clock.now()), period_end(program, clock.now())]


def _row_params(program: Program, clock: FrozenClock) -> list[object]:
    """The member row's own parameters: the tier period's window, then the membership's time."""
    return [*_window(program, clock), *memberships.benefit_plan_params(clock.now())]


async def _member_rows(program: Program, clock: FrozenClock, query: Any) -> list[dict[str, object]]:
    """The ORM's members of `query` as rows: every column, then the qualifying value of the current period and the
    plan of the membership giving benefits now."""
    start, end = _window(program, clock)
    found = []
    for member in await query:
        credits = QualifyingCredit.filter(member_id=member.id, occurred_at__gte=start, occurred_at__lt=end)
        giving = Membership.filter(memberships.giving_benefits(clock.now()), member_id=member.id)
        plan_ids = await giving.values_list("plan_id", flat=True)
        found.append(
            {
                **_values(member),
                "qualifying_value": sum(await credits.values_list("amount", flat=True)),
                "membership_plan_id": plan_ids[0] if plan_ids else None,
            }
        )
    return found


async def _memberships(clock: FrozenClock, giving: Member, ended: Member) -> None:
    """A membership giving benefits now (cancelled, a second before its end), one whose grace ended a second ago."""
    plan = await MembershipPlan.create(code="PLUS", name="Plus", price=4900, currency="EUR", period="monthly")
    now = clock.now()
    for member, status, ends, grace_until in (
        (giving, MembershipStatus.CANCELLED, now + ONE_TICK, None),
        (ended, MembershipStatus.GRACE, now - timedelta(days=7), now),
    ):
        await Membership.create(
            member_id=member.id,
            plan_id=plan.id,
            status=status,
            started_at=now - timedelta(days=40),
            period_start=now - timedelta(days=30),
            period_end=ends,
            grace_until=grace_until,
            due_at=grace_until or ends,
            updated_at=now,
        )


async def _qualifying_history(program: Program, clock: FrozenClock, member: Member) -> None:
    """Qualifying credits in the period (a refund among them), and on both of its edges."""
    start, end = _window(program, clock)
    for amount, occurred_at in (
        (100, start),
        (50, end - ONE_TICK),
        (-30, clock.now()),
        (1_000, end),
        (7, start - ONE_TICK),
    ):
        await QualifyingCredit.create(member_id=member.id, amount=amount, occurred_at=occurred_at)


@case("members.rows_by_id")
async def _member_rows_by_id(program: Program, clock: FrozenClock) -> list[Run]:
    full, plain, third = await _members(program, clock)
    await _qualifying_history(program, clock, full)
    await _memberships(clock, full, plain)
    await QualifyingCredit.create(member_id=third.id, amount=5, occurred_at=clock.now())  # not asked for
    asked = [plain.id, full.id, plain.id, third.id + 1]  # a duplicate, and a deleted (never existing) member
    orm = _member_rows(program, clock, Member.filter(id__in=asked))
    return [
        Run(orm=orm, expected=[full.id, plain.id], params=_row_params(program, clock), ids=asked),
        Run(
            orm=_member_rows(program, clock, Member.filter(id=third.id + 1)),
            expected=[],
            params=_row_params(program, clock),
            ids=[third.id + 1],
        ),
    ]


@case("members.row_by_number")
async def _member_row_by_number(program: Program, clock: FrozenClock) -> list[Run]:
    full, plain, _ = await _members(program, clock)
    await _qualifying_history(program, clock, full)
    unknown = "0" * len(full.member_number)
    return [
        Run(
            orm=_member_rows(program, clock, Member.filter(member_number=number)),
            expected=expected,
            params=[*_row_params(program, clock), number],
        )
        for number, expected in ((full.member_number, [full.id]), (plain.member_number, [plain.id]), (unknown, []))
    ]


@case("members.rows_by_email")
async def _member_rows_by_email(program: Program, clock: FrozenClock) -> list[Run]:
    full, plain, third = await _members(program, clock)
    await Member.filter(id=third.id).update(email="Shared@Example.com")
    await Member.filter(id=plain.id).update(email="shared@example.com")
    window = _row_params(program, clock)
    both = ["Shared@Example.com", "shared@example.com"]
    return [
        Run(
            orm=_member_rows(program, clock, Member.filter(email=full.email)),
            expected=[full.id],
            params=[*window, full.email, full.email],
        ),
        # two members: both come back (at most two), and the caller sees an ambiguous lookup
        Run(
            orm=_member_rows(program, clock, Member.filter(email__in=both)),
            expected=[plain.id, third.id],
            params=[*window, *both],
        ),
        Run(
            orm=_member_rows(program, clock, Member.filter(email="nobody@example.com")),
            expected=[],
            params=[*window, "nobody@example.com", "x"],
        ),
    ]


@case("members.rows_by_phone")
async def _member_rows_by_phone(program: Program, clock: FrozenClock) -> list[Run]:
    full, _, _ = await _members(program, clock)
    window = _row_params(program, clock)
    return [
        Run(
            orm=_member_rows(program, clock, Member.filter(phone=full.phone)),
            expected=[full.id],
            params=[*window, full.phone, "+49 151 00000001"],
        ),
        Run(orm=_member_rows(program, clock, Member.filter(phone="+1")), expected=[], params=[*window, "+1", "+1"]),
    ]


async def _ledger(clock: FrozenClock) -> tuple[Member, dict[str, int]]:
    """A member's entries of four kinds, maturing among them, oldest first; another member's entry in between."""
    member = await new_member("uid-ledger")
    other = await new_member("uid-ledger-other")
    await purchase(member.id, "R1", 1_000, clock.now())
    earn = await LedgerEntry.get(member_id=member.id, kind=EntryKind.EARN)
    await give_available(other.id, 5)
    adjustment = await credit_points(member.id, 300, kind=EntryKind.ADJUSTMENT, idempotency_key="a1")
    clock.advance(timedelta(days=15))  # past the return window
    await ledger.settle_member_if_due(await Member.get(id=member.id), clock.now())
    mature = await LedgerEntry.get(member_id=member.id, kind=EntryKind.MATURE)
    redeem = await redeem_points(member.id, 50, idempotency_key="r1")
    return member, {"earn": earn.id, "adjustment": adjustment, "mature": mature.id, "redeem": redeem.entry_id}


@case("activity.page")
async def _activity_page(program: Program, clock: FrozenClock) -> list[Run]:
    member, entry = await _ledger(clock)
    newest = LedgerEntry.filter(member_id=member.id).exclude(kind=EntryKind.MATURE).order_by("-id")
    mature = EntryKind.MATURE.value
    return [
        Run(orm=newest.limit(2), expected=[entry["redeem"], entry["adjustment"]], params=[member.id, mature, 2]),
        Run(
            orm=newest.limit(10),
            expected=[entry["redeem"], entry["adjustment"], entry["earn"]],
            params=[member.id, mature, 10],
        ),
    ]


@case("activity.page_before")
async def _activity_page_before(program: Program, clock: FrozenClock) -> list[Run]:
    member, entry = await _ledger(clock)
    newest = LedgerEntry.filter(member_id=member.id).exclude(kind=EntryKind.MATURE).order_by("-id")
    mature = EntryKind.MATURE.value
    return [
        # `before` itself is left out (the cursor is the last entry of the page before)
        Run(
            orm=newest.filter(id__lt=entry["redeem"]).limit(10),
            expected=[entry["adjustment"], entry["earn"]],
            params=[member.id, mature, entry["redeem"], 10],
        ),
        Run(
            orm=newest.filter(id__lt=entry["adjustment"]).limit(1),
            expected=[entry["earn"]],
            params=[member.id, mature, entry["adjustment"], 1],
        ),
        Run(orm=newest.filter(id__lt=entry["earn"]), expected=[], params=[member.id, mature, entry["earn"], 10]),
    ]


async def _available_lot(member_id: int, points: int, expires_at: datetime | None, key: str) -> PointsLot:
    """A lot credited through the ledger, its expiry then moved (expiry is not part of the balances)."""
    await give_available(member_id, points, key=key)
    lot = await PointsLot.filter(member_id=member_id).order_by("-id").first()
    assert lot is not None
    await PointsLot.filter(id=lot.id).update(expires_at=expires_at)
    return lot


@case("activity.expiring_soon")
async def _expiring_soon(program: Program, clock: FrozenClock) -> list[Run]:
    ann, bob, cid = (await new_member("uid-ann"), await new_member("uid-bob"), await new_member("uid-cid"))
    until = clock.now() + timedelta(days=30)
    # spent: available, inside the window, nothing left
    await _available_lot(ann.id, 10, until - timedelta(days=5), "spent")
    await redeem_points(ann.id, 10, idempotency_key="spend")
    await _available_lot(ann.id, 40, until, "at-until")  # on the boundary: in
    await _available_lot(ann.id, 25, until - timedelta(days=1), "soon")
    await _available_lot(ann.id, 15, until, "at-until-too")  # the same expiry: after the first, by id
    await _available_lot(ann.id, 60, until + ONE_TICK, "later")  # just past the window
    await _available_lot(ann.id, 70, None, "never")  # does not expire
    await purchase(ann.id, "R-pending", 2_000, clock.now())  # pending: not spendable, so not "expiring"
    await PointsLot.filter(member_id=ann.id, status=LotStatus.PENDING).update(expires_at=until - timedelta(days=2))
    await PointsLot.create(
        member_id=ann.id,
        amount=9,
        remaining=9,
        status=LotStatus.EXPIRED,
        created_at=clock.now(),
        available_at=clock.now(),
        expires_at=until - timedelta(days=3),
    )
    await _available_lot(bob.id, 7, until - timedelta(hours=12), "bob")
    await _available_lot(cid.id, 8, until - timedelta(hours=1), "cid")  # not asked for
    asked = [ann.id, bob.id]
    orm = (
        PointsLot.filter(member_id__in=asked, status=LotStatus.AVAILABLE, remaining__gt=0, expires_at__lte=until)
        .order_by("expires_at", "id")
        .values("member_id", "expires_at", "remaining")
    )
    expected = [
        {"member_id": ann.id, "expires_at": until - timedelta(days=1), "remaining": 25},
        {"member_id": bob.id, "expires_at": until - timedelta(hours=12), "remaining": 7},
        {"member_id": ann.id, "expires_at": until, "remaining": 40},
        {"member_id": ann.id, "expires_at": until, "remaining": 15},
    ]
    return [Run(orm=orm, expected=expected, params=[LotStatus.AVAILABLE.value, until], ids=asked)]


@case("tiers.qualifying_totals")
async def _qualifying_totals(program: Program, clock: FrozenClock) -> list[Run]:
    ann, bob, cid, dan = [await new_member(f"uid-q-{name}") for name in ("ann", "bob", "cid", "dan")]
    start, end = period_start(program, clock.now()), period_end(program, clock.now())
    for member, amount, occurred_at in (
        (ann, 100, start),  # the period's first moment: in
        (ann, 50, end - ONE_TICK),
        (ann, -30, clock.now()),  # a refund
        (ann, 1_000, end),  # the next period's first moment: out
        (ann, 2_000, start - ONE_TICK),  # the last period: out
        (bob, 70, clock.now()),
        (cid, 500, clock.now()),  # not asked for
    ):
        await QualifyingCredit.create(member_id=member.id, amount=amount, occurred_at=occurred_at)
    asked = [ann.id, bob.id, dan.id]  # dan has no credits: no row
    orm = (
        QualifyingCredit.filter(occurred_at__gte=start, occurred_at__lt=end, member_id__in=asked)
        .annotate(total=Sum("amount"))
        .group_by("member_id")
        .values("member_id", "total")
    )
    expected = [{"member_id": ann.id, "total": 120}, {"member_id": bob.id, "total": 70}]
    return [Run(orm=orm, expected=expected, params=[start, end], ids=asked)]


@case("offers.for_member")
async def _offers_for_member(program: Program, clock: FrozenClock) -> list[Run]:
    at = clock.now()

    async def offer(name: str, valid_from: datetime, valid_until: datetime, **fields: Any) -> Offer:
        benefit = fields.pop("benefit", OfferBenefit.BONUS_POINTS)
        return await Offer.create(name=name, benefit=benefit, valid_from=valid_from, valid_until=valid_until, **fields)

    starts_now = await offer("starts now", at, at + timedelta(days=1))
    await offer("ends now", at - timedelta(days=10), at)
    await offer("switched off", at - timedelta(days=1), at + timedelta(days=1), active=False)
    await offer("starts later", at + ONE_TICK, at + timedelta(days=1))
    everything = await offer(
        "every column",
        at - timedelta(days=1),
        at + timedelta(days=1, microseconds=3),
        benefit=OfferBenefit.FREE_ITEM,
        description="A coffee on us",
        value=0,
        sku="COF-1",
        per_member_limit=2,
        requires_activation=True,
        tier_names=["Gold"],
        min_tier_rank=2,
        lifecycle_stages=["active", "lapsing"],
        birthday_month=True,
        interests=["coffee"],
        min_spend=1_500,
        priority=5,
    )
    ann, bob = await new_member("uid-offers-ann"), await new_member("uid-offers-bob")
    for member, offer_id in ((ann, everything.id), (ann, everything.id), (ann, starts_now.id), (bob, starts_now.id)):
        await OfferRedemption.create(offer_id=offer_id, member_id=member.id, store_code="S1", redeemed_at=at)
    await OfferActivation.create(offer_id=everything.id, member_id=ann.id, activated_at=at)
    await OfferActivation.create(offer_id=starts_now.id, member_id=bob.id, activated_at=at)
    running = Offer.filter(active=True, valid_from__lte=at, valid_until__gt=at).order_by("id")

    async def orm(member: Member) -> list[dict[str, object]]:
        return [
            {
                **_values(o),
                "uses": await OfferRedemption.filter(offer_id=o.id, member_id=member.id).count(),
                "activated": await OfferActivation.exists(offer_id=o.id, member_id=member.id),
            }
            for o in await running
        ]

    empty = await new_member("uid-offers-empty")  # no history: every running offer, unused
    return [
        Run(orm=orm(member), expected=[starts_now.id, everything.id], params=[member.id, member.id, True, at, at])
        for member in (ann, bob, empty)
    ]


@case("stamps.for_member")
async def _stamp_cards_for_member(program: Program, clock: FrozenClock) -> list[Run]:
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=0, sku="COF-1")
    items = await StampCard.create(name="Coffee card", stamps_required=5, reward=coffee, match_category="coffee")
    retired = await StampCard.create(name="Retired", stamps_required=3, reward=coffee, active=False)
    visits = await StampCard.create(
        name="Visits", description="Ten visits", stamps_required=10, counts="visits", min_spend=500, reward=coffee
    )
    ann, bob, empty = [await new_member(f"uid-stamps-{name}") for name in ("ann", "bob", "empty")]
    for member, card, stamps, completed in ((ann, items, 3, 2), (ann, retired, 1, 0), (bob, visits, 9, 0)):
        await StampProgress.create(member=member, card=card, stamps=stamps, completed=completed, updated_at=clock.now())

    async def orm(member: Member) -> list[dict[str, object]]:
        mine = {p.card_id: p for p in await StampProgress.filter(member_id=member.id)}
        return [
            {
                "id": c.id,
                "name": c.name,
                "description": c.description,
                "stamps_required": c.stamps_required,
                "stamps": mine[c.id].stamps if c.id in mine else 0,
                "completed": mine[c.id].completed if c.id in mine else 0,
            }
            for c in await StampCard.filter(active=True).order_by("id")
        ]

    return [
        Run(orm=orm(member), expected=[items.id, visits.id], params=[member.id, True]) for member in (ann, bob, empty)
    ]


async def _vouchers_of_every_source(clock: FrozenClock) -> tuple[Member, dict[str, Voucher]]:
    """A member's vouchers from a reward, an offer (one kind per benefit), a stamp card and none, some not usable."""
    member, other = await new_member("uid-vouchers"), await new_member("uid-vouchers-other")
    reward = await Reward.create(name="Ten off", kind=RewardKind.AMOUNT_OFF, points_cost=100, value=1_000, sku="X")
    card_reward = await Reward.create(name="Free coffee", kind=RewardKind.FREE_PRODUCT, points_cost=0, sku="COF")
    card = await StampCard.create(name="Coffee card", stamps_required=5, reward=card_reward)
    bare_card = await StampCard.create(name="Bare card", stamps_required=5, reward=card_reward)
    at = clock.now()
    percent = await Offer.create(
        name="Ten percent",
        benefit=OfferBenefit.PERCENT_OFF,
        value=10,
        valid_from=at,
        valid_until=at + timedelta(days=9),
    )
    bonus = await Offer.create(
        name="Bonus", benefit=OfferBenefit.BONUS_POINTS, value=50, valid_from=at, valid_until=at + timedelta(days=9)
    )
    made: dict[str, Voucher] = {}
    async with in_transaction() as conn:
        made["reward"] = await issue_voucher(conn, member.id, reward=reward, points_cost=100)
        made["stamps"] = await issue_voucher(conn, member.id, reward=card_reward, stamp_card=card)
        made["percent"] = await issue_voucher(conn, member.id, offer=percent)
        made["bonus"] = await issue_voucher(conn, member.id, offer=bonus)
        made["card only"] = await issue_voucher(conn, member.id, stamp_card=bare_card)
        made["nothing"] = await issue_voucher(conn, member.id)
        made["used"] = await issue_voucher(conn, member.id, reward=reward)
        made["past"] = await issue_voucher(conn, member.id, reward=reward)
        made["at now"] = await issue_voucher(conn, member.id, reward=reward)
        made["other's"] = await issue_voucher(conn, other.id, reward=reward)
    await Voucher.filter(id=made["used"].id).update(status=VoucherStatus.REDEEMED, redeemed_at=at, redeemed_store="S1")
    await Voucher.filter(id=made["past"].id).update(expires_at=at - ONE_TICK)  # still ACTIVE, but expired
    await Voucher.filter(id=made["at now"].id).update(expires_at=at)  # expires at the instant: not usable
    for offset, key in enumerate(("reward", "stamps", "percent", "bonus", "card only", "nothing")):
        await Voucher.filter(id=made[key].id).update(expires_at=at + timedelta(days=1, microseconds=offset))
    return member, made


@case("checkout.usable_vouchers")
async def _usable_vouchers(program: Program, clock: FrozenClock) -> list[Run]:
    member, made = await _vouchers_of_every_source(clock)
    at = clock.now()
    usable = Voucher.filter(member_id=member.id, status=VoucherStatus.ACTIVE, expires_at__gt=at).order_by(
        "expires_at", "id"
    )

    async def orm(limit: int) -> list[dict[str, object]]:
        rows = []
        for v in await usable.limit(limit):
            reward = await Reward.get_or_none(id=v.reward_id) if v.reward_id else None
            offer = await Offer.get_or_none(id=v.offer_id) if v.offer_id else None
            card = await StampCard.get_or_none(id=v.stamp_card_id) if v.stamp_card_id else None
            rows.append(
                {
                    **_values(v),
                    "reward_name": reward.name if reward else None,
                    "reward_kind": reward.kind if reward else None,
                    "reward_value": reward.value if reward else None,
                    "reward_sku": reward.sku if reward else None,
                    "offer_name": offer.name if offer else None,
                    "offer_benefit": offer.benefit if offer else None,
                    "offer_value": offer.value if offer else None,
                    "offer_sku": offer.sku if offer else None,
                    "card_name": card.name if card else None,
                }
            )
        return rows

    order = [made[key].id for key in ("reward", "stamps", "percent", "bonus", "card only", "nothing")]
    params = [member.id, VoucherStatus.ACTIVE.value, at]
    return [
        Run(orm=orm(20), expected=order, params=[*params, 20]),
        Run(orm=orm(2), expected=order[:2], params=[*params, 2]),
    ]


@case("staff.active_by_id")
async def _active_staff(program: Program, clock: FrozenClock) -> list[Run]:
    async def staff(email: str, role: StaffRole = StaffRole.CASHIER, **fields: Any) -> StaffUser:
        return await StaffUser.create(
            email=email, password_hash="not-a-hash", role=role, created_at=clock.now(), **fields
        )

    cashier = await staff("cashier@example.com", store_codes=["S1", "S2"], last_login_at=clock.now())
    gone = await staff("gone@example.com", active=False)
    manager = await staff("manager@example.com", role=StaffRole.MANAGER, display_name="Mia")
    return [
        Run(orm=StaffUser.filter(id=staff_id, active=True), expected=expected, params=[staff_id, True])
        for staff_id, expected in ((cashier.id, [cashier.id]), (manager.id, [manager.id]), (gone.id, []))
    ]


@dataclass(frozen=True)
class _VoucherList:
    """A member's vouchers in each state, and the ORM's two parts of their list (`vouchers.voucher_page`)."""

    member: Member
    made: dict[str, Voucher]
    at: datetime

    def usable(self) -> Any:
        live = Voucher.filter(member_id=self.member.id, status=VoucherStatus.ACTIVE, expires_at__gt=self.at)
        return live.order_by("expires_at", "id")

    def others(self) -> Any:
        mine = Voucher.filter(member_id=self.member.id)
        return mine.filter(~Q(status=VoucherStatus.ACTIVE, expires_at__gt=self.at)).order_by("-id")

    def live(self) -> list[Any]:
        return [self.member.id, VoucherStatus.ACTIVE.value, self.at]

    def keyset(self, key: str) -> list[Any]:
        cursor = self.made[key]
        return [cursor.expires_at, cursor.expires_at, cursor.id]

    def after(self, key: str) -> Q:
        cursor = self.made[key]
        return Q(expires_at__gt=cursor.expires_at) | Q(expires_at=cursor.expires_at, id__gt=cursor.id)

    def orm(self, *parts: tuple[int, Any]) -> Awaitable[list[dict[str, object]]]:
        async def rows() -> list[dict[str, object]]:
            return [{**_values(v), "phase": phase} for phase, query in parts for v in await query]

        return rows()

    def ids(self, *keys: str) -> list[int]:
        return [self.made[key].id for key in keys]


async def _voucher_list(clock: FrozenClock) -> _VoucherList:
    member, other = await new_member("uid-voucher-list"), await new_member("uid-voucher-list-other")
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10, sku="COF")
    at = clock.now()
    made: dict[str, Voucher] = {}
    async with in_transaction() as conn:
        for key in ("soon", "tie a", "tie b", "later", "lapsed", "expired", "redeemed", "cancelled", "at now"):
            made[key] = await issue_voucher(conn, member.id, reward=reward, points_cost=10)
        await issue_voucher(conn, other.id, reward=reward)
    tie = at + timedelta(days=3, microseconds=5)
    for key, changes in (
        ("soon", {"expires_at": at + timedelta(days=1)}),
        ("tie a", {"expires_at": tie}),
        ("tie b", {"expires_at": tie}),  # the same expiry: after "tie a", by id
        ("later", {"expires_at": at + timedelta(days=9)}),
        ("lapsed", {"expires_at": at - ONE_TICK}),  # ACTIVE, but past its expiry: effectively expired
        ("expired", {"status": VoucherStatus.EXPIRED, "expires_at": at - timedelta(days=1)}),
        ("redeemed", {"status": VoucherStatus.REDEEMED, "redeemed_at": at, "redeemed_store": "S1"}),
        ("cancelled", {"status": VoucherStatus.CANCELLED, "cancelled_at": at}),
        ("at now", {"expires_at": at}),  # expires at the instant: not usable
    ):
        await Voucher.filter(id=made[key].id).update(**changes)
    made = {key: await Voucher.get(id=v.id) for key, v in made.items()}
    return _VoucherList(member, made, at)


_USABLE_ORDER = ("soon", "tie a", "tie b", "later")
_OTHERS_ORDER = ("at now", "cancelled", "redeemed", "expired", "lapsed")  # newest first


@case("vouchers.page")
async def _voucher_page(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    # and a member with many vouchers: 30 usable (one expiry for all: ordered by id), 5 used
    many = _VoucherList(await new_member("uid-many-vouchers"), {}, v.at)
    async with in_transaction() as conn:
        for n in range(35):
            many.made[f"v{n}"] = await issue_voucher(conn, many.member.id)
    await Voucher.filter(id__in=many.ids(*(f"v{n}" for n in range(30, 35)))).update(status=VoucherStatus.REDEEMED)
    return [
        *(
            Run(
                orm=v.orm((0, v.usable().limit(limit)), (1, v.others().limit(limit))),
                expected=v.ids(*_USABLE_ORDER[:limit], *_OTHERS_ORDER[:limit]),
                params=[*v.live(), limit, *v.live(), limit],
            )
            for limit in (20, 3)
        ),
        Run(
            orm=many.orm((0, many.usable().limit(20)), (1, many.others().limit(20))),
            expected=[*many.ids(*(f"v{n}" for n in range(20))), *reversed(many.ids(*(f"v{n}" for n in range(30, 35))))],
            params=[*many.live(), 20, *many.live(), 20],
        ),
    ]


@case("vouchers.page_after_usable")
async def _voucher_page_after_usable(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    return [
        Run(
            orm=v.orm((0, v.usable().filter(v.after(key)).limit(3)), (1, v.others().limit(3))),
            expected=v.ids(*rest, *_OTHERS_ORDER[:3]),
            params=[*v.live(), *v.keyset(key), 3, *v.live(), 3],
        )
        for key, rest in (("tie a", ("tie b", "later")), ("later", ()))
    ]


@case("vouchers.page_after_others")
async def _voucher_page_after_others(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    cursor = v.made["redeemed"].id
    return [
        Run(
            orm=v.orm((1, v.others().filter(id__lt=cursor).limit(20))),
            expected=v.ids("expired", "lapsed"),
            params=[*v.live(), cursor, 20],
        )
    ]


@case("vouchers.usable")
async def _usable_vouchers_page(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    return [
        Run(orm=v.orm((0, v.usable().limit(2))), expected=v.ids("soon", "tie a"), params=[*v.live(), 2]),
    ]


@case("vouchers.usable_after")
async def _usable_vouchers_after(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    return [
        Run(
            orm=v.orm((0, v.usable().filter(v.after("tie b")).limit(20))),
            expected=v.ids("later"),
            params=[*v.live(), *v.keyset("tie b"), 20],
        )
    ]


def _expired_ones() -> list[str]:
    return [VoucherStatus.ACTIVE.value, VoucherStatus.EXPIRED.value]


@case("vouchers.expired")
async def _expired_vouchers(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    expired = v.others().filter(status__in=(VoucherStatus.ACTIVE, VoucherStatus.EXPIRED))
    return [
        Run(
            orm=v.orm((1, expired.limit(20))),
            expected=v.ids("at now", "expired", "lapsed"),
            params=[*v.live(), *_expired_ones(), 20],
        )
    ]


@case("vouchers.expired_before")
async def _expired_vouchers_before(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    cursor = v.made["expired"].id
    expired = v.others().filter(status__in=(VoucherStatus.ACTIVE, VoucherStatus.EXPIRED), id__lt=cursor)
    return [
        Run(
            orm=v.orm((1, expired.limit(20))),
            expected=v.ids("lapsed"),
            params=[*v.live(), *_expired_ones(), cursor, 20],
        )
    ]


@case("vouchers.with_status")
async def _vouchers_with_status(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    return [
        Run(
            orm=v.orm((1, v.others().filter(status=status).limit(20))),
            expected=v.ids(key),
            params=[*v.live(), status.value, 20],
        )
        for status, key in ((VoucherStatus.REDEEMED, "redeemed"), (VoucherStatus.CANCELLED, "cancelled"))
    ]


@case("vouchers.with_status_before")
async def _vouchers_with_status_before(program: Program, clock: FrozenClock) -> list[Run]:
    v = await _voucher_list(clock)
    redeemed = VoucherStatus.REDEEMED
    return [
        Run(
            orm=v.orm((1, v.others().filter(status=redeemed, id__lt=cursor).limit(20))),
            expected=expected,
            params=[*v.live(), redeemed.value, cursor, 20],
        )
        for cursor, expected in ((v.made["redeemed"].id, []), (v.made["cancelled"].id, v.ids("redeemed")))
    ]


async def _catalog(program: Program, clock: FrozenClock) -> tuple[Member, dict[str, Reward]]:
    """Rewards visible or not at now, in catalog order by sort order, cost and id; a member's counted vouchers."""
    at = clock.now()
    gold = await Tier.get(program_id=program.id, name="Gold")

    async def reward(name: str, cost: int, **fields: Any) -> Reward:
        return await Reward.create(
            name=name, kind=fields.pop("kind", RewardKind.FREE_PRODUCT), points_cost=cost, **fields
        )

    made = {
        "cheap": await reward("cheap", 50, sort_order=1),
        "first": await reward("first", 500, sort_order=0, per_member_limit=2, stock=4, min_tier=gold),
        "same cost": await reward("same cost", 50, sort_order=1),
        "dear": await reward("dear", 900, sort_order=1, kind=RewardKind.DONATION, cause="Trees", value=100),
        "starts now": await reward("starts now", 10, sort_order=2, valid_from=at, valid_until=at + ONE_TICK),
        "off": await reward("off", 10, active=False),
        "later": await reward("later", 10, valid_from=at + ONE_TICK),
        "ended": await reward("ended", 10, valid_until=at),
    }
    member, other = await new_member("uid-catalog"), await new_member("uid-catalog-other")
    card = await StampCard.create(name="Card", stamps_required=5, reward=made["first"])
    async with in_transaction() as conn:
        for status in (VoucherStatus.ACTIVE, VoucherStatus.REDEEMED, VoucherStatus.EXPIRED, VoucherStatus.CANCELLED):
            voucher = await issue_voucher(conn, member.id, reward=made["first"])
            await Voucher.filter(id=voucher.id).update(status=status)
        await issue_voucher(conn, member.id, reward=made["first"], stamp_card=card)  # a card's: uses no slot
        await issue_voucher(conn, member.id, reward=made["cheap"])
        await issue_voucher(conn, other.id, reward=made["cheap"])
    return member, made


def _catalog_orm(member: Member, query: Any) -> Awaitable[list[dict[str, object]]]:
    async def rows() -> list[dict[str, object]]:
        counted = Voucher.filter(
            member_id=member.id,
            status__in=(VoucherStatus.ACTIVE, VoucherStatus.REDEEMED, VoucherStatus.EXPIRED),
            stamp_card_id__isnull=True,
            offer_id__isnull=True,
        )
        return [{**_values(r), "used": await counted.filter(reward_id=r.id).count()} for r in await query]

    return rows()


def _visible_rewards(at: datetime) -> Any:
    return Reward.filter(
        Q(active=True)
        & (Q(valid_from__isnull=True) | Q(valid_from__lte=at))
        & (Q(valid_until__isnull=True) | Q(valid_until__gt=at))
    ).order_by("sort_order", "points_cost", "id")


_COUNTED = [VoucherStatus.ACTIVE.value, VoucherStatus.REDEEMED.value, VoucherStatus.EXPIRED.value]


@case("rewards.catalog")
async def _rewards_catalog(program: Program, clock: FrozenClock) -> list[Run]:
    member, made = await _catalog(program, clock)
    at = clock.now()
    order = [made[key].id for key in ("first", "cheap", "same cost", "dear", "starts now")]
    params = [member.id, *_COUNTED, True, at, at]
    return [
        Run(orm=_catalog_orm(member, _visible_rewards(at).limit(20)), expected=order, params=[*params, 20]),
        Run(orm=_catalog_orm(member, _visible_rewards(at).limit(2)), expected=order[:2], params=[*params, 2]),
    ]


@case("rewards.catalog_after")
async def _rewards_catalog_after(program: Program, clock: FrozenClock) -> list[Run]:
    member, made = await _catalog(program, clock)
    at = clock.now()
    params = [member.id, *_COUNTED, True, at, at]

    def after(key: str) -> list[Any]:
        r = made[key]
        return [r.sort_order, r.sort_order, r.points_cost, r.sort_order, r.points_cost, r.id]

    cheap = made["cheap"]
    later = _visible_rewards(at).filter(
        Q(sort_order__gt=cheap.sort_order)
        | Q(sort_order=cheap.sort_order, points_cost__gt=cheap.points_cost)
        | Q(sort_order=cheap.sort_order, points_cost=cheap.points_cost, id__gt=cheap.id)
    )
    return [
        Run(
            orm=_catalog_orm(member, later.limit(20)),
            expected=[made[key].id for key in ("same cost", "dear", "starts now")],
            params=[*params, *after("cheap"), 20],
        ),
        Run(orm=_catalog_orm(member, Reward.filter(id=0)), expected=[], params=[*params, *after("starts now"), 20]),
    ]


@case("rewards.catalog_by_id")
async def _rewards_catalog_by_id(program: Program, clock: FrozenClock) -> list[Run]:
    member, made = await _catalog(program, clock)
    asked = [made["first"].id, made["off"].id, made["cheap"].id, made["cheap"].id, 10_000]  # hidden ones too
    orm = _catalog_orm(member, Reward.filter(id__in=asked))
    return [
        Run(
            orm=orm,
            expected=[made["first"].id, made["off"].id, made["cheap"].id],
            params=[member.id, *_COUNTED],
            ids=asked,
        )
    ]


@case("donations.totals")
async def _donations_totals(program: Program, clock: FrozenClock) -> list[Run]:
    # Donations through the catalog (kept as they happen); vouchers that are no donation: a card's donation voucher
    # not handed in (active, expired, cancelled) and a redeemed voucher of a reward that is no donation.
    member = await new_member("uid-donor")
    await credit_points(member.id, 1_000, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")

    async def reward(name: str, kind: RewardKind, value: int, cause: str | None) -> Reward:
        return await Reward.create(name=name, kind=kind, points_cost=10, value=value, cause=cause)

    trees = await reward("trees", RewardKind.DONATION, 500, "Trees")
    forest = await reward("forest", RewardKind.DONATION, 2_000, "Trees")
    sea = await reward("sea", RewardKind.DONATION, 200, "Oceans")
    nameless = await reward("nameless", RewardKind.DONATION, 7, None)
    coffee = await reward("coffee", RewardKind.FREE_PRODUCT, 300, "Trees")
    for key, given in enumerate((trees, trees, forest, sea, nameless)):
        await rewards.redeem_reward(member.id, given.id, idempotency_key=f"d{key}")
    card = await StampCard.create(name="Card", stamps_required=5, reward=sea)
    async with in_transaction() as conn:
        for status in (VoucherStatus.ACTIVE, VoucherStatus.EXPIRED, VoucherStatus.CANCELLED):
            voucher = await issue_voucher(conn, member.id, reward=sea, stamp_card=card)
            await Voucher.filter(id=voucher.id).using_db(conn).update(status=status)
        voucher = await issue_voucher(conn, member.id, reward=coffee)
        await Voucher.filter(id=voucher.id).using_db(conn).update(status=VoucherStatus.REDEEMED)

    async def aggregate() -> list[dict[str, object]]:  # what the Rewards screen computed before the table
        found = (
            await Voucher.filter(reward__kind=RewardKind.DONATION, status=VoucherStatus.REDEEMED)
            .annotate(amount=Sum("reward__value"), n=Count("id"))
            .group_by("reward__cause")
            .values_list("reward__cause", "amount", "n")
        )
        totals = [{"cause": cause or "", "amount": int(amount), "donations": int(n)} for cause, amount, n in found]
        return sorted(totals, key=lambda row: str(row["cause"]))

    expected = [
        {"cause": "", "amount": 7, "donations": 1},
        {"cause": "Oceans", "amount": 200, "donations": 1},
        {"cause": "Trees", "amount": 3_000, "donations": 3},
    ]
    return [Run(orm=aggregate(), expected=expected, params=[""])]


async def _inbox(clock: FrozenClock) -> tuple[Member, dict[str, int]]:
    """A member's messages: three sent (two at one instant), one expiring later, one expired, one expiring exactly
    now, one scheduled, one suppressed; another member's sent message."""
    member, other = await new_member("uid-inbox"), await new_member("uid-inbox-other")
    now = clock.now()
    ids: dict[str, int] = {}

    async def message(name: str, owner: Member, status: MessageStatus, sent_at: datetime | None, **more: Any) -> None:
        created = await PushMessage.create(
            member_id=owner.id,
            occasion=name,
            purpose=MessagePurpose.MARKETING,
            title=f"Title {name}",
            body=f"Body {name}",
            status=status,
            due_at=now - timedelta(days=3),
            created_at=now - timedelta(days=3),
            sent_at=sent_at,
            **more,
        )
        ids[name] = created.id

    sent = MessageStatus.SENT
    await message("oldest", member, sent, now - timedelta(days=2), target="offer:7", read_at=now - timedelta(days=1))
    await message("tie_a", member, sent, now - timedelta(hours=5), opened_at=now - timedelta(hours=4))
    await message("tie_b", member, sent, now - timedelta(hours=5), expires_at=now + ONE_TICK)
    await message("newest", member, sent, now - timedelta(minutes=1), target="voucher:3")
    await message("expired", member, sent, now - timedelta(hours=1), expires_at=now - timedelta(hours=1))
    await message("expires_now", member, sent, now - timedelta(hours=2), expires_at=now)
    await message("scheduled", member, MessageStatus.SCHEDULED, None)
    await message("suppressed", member, MessageStatus.SUPPRESSED, None, suppressed_reason="consent")
    await message("other", other, sent, now - timedelta(minutes=2))
    return member, ids


def _inbox_orm(member: Member, clock: FrozenClock) -> Any:
    return (
        PushMessage.filter(member_id=member.id, status=MessageStatus.SENT)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=clock.now()))
        .order_by("-sent_at", "-id")
    )


def _inbox_values(query: Any) -> Any:
    return query.values(*inbox.InboxRow._fields)


@case("inbox.page")
async def _inbox_page(program: Program, clock: FrozenClock) -> list[Run]:
    member, ids = await _inbox(clock)
    live = [member.id, MessageStatus.SENT.value, clock.now()]
    newest_first = [ids["newest"], ids["tie_b"], ids["tie_a"], ids["oldest"]]
    orm = _inbox_orm(member, clock)
    return [
        Run(orm=_inbox_values(orm.limit(2)), expected=newest_first[:2], params=[*live, 2]),
        Run(orm=_inbox_values(orm.limit(10)), expected=newest_first, params=[*live, 10]),
    ]


def _after(message_id: int, member: Member) -> list[int]:
    return [message_id, member.id, message_id, member.id]  # the cursor's message, read twice


@case("inbox.page_after")
async def _inbox_page_after(program: Program, clock: FrozenClock) -> list[Run]:
    member, ids = await _inbox(clock)
    live = [member.id, MessageStatus.SENT.value, clock.now()]
    orm = _inbox_orm(member, clock)
    tie_b = await PushMessage.get(id=ids["tie_b"])
    after_tie_b = orm.filter(Q(sent_at__lt=tie_b.sent_at) | Q(sent_at=tie_b.sent_at, id__lt=tie_b.id))
    return [
        # within the tie: after the later id, the earlier one; the cursor itself is left out
        Run(
            orm=_inbox_values(after_tie_b.limit(10)),
            expected=[ids["tie_a"], ids["oldest"]],
            params=[*live, *_after(ids["tie_b"], member), 10],
        ),
        Run(
            orm=_inbox_values(after_tie_b.limit(1)),
            expected=[ids["tie_a"]],
            params=[*live, *_after(ids["tie_b"], member), 1],
        ),
        # after an expired message (the app's older page): its position still counts
        Run(
            orm=_inbox_values(orm.filter(sent_at__lt=(await PushMessage.get(id=ids["expired"])).sent_at)),
            expected=[ids["tie_b"], ids["tie_a"], ids["oldest"]],
            params=[*live, *_after(ids["expired"], member), 10],
        ),
        # after the last, and after another member's message: nothing
        Run(orm=_inbox_values(orm.filter(id=0)), expected=[], params=[*live, *_after(ids["oldest"], member), 10]),
        Run(orm=_inbox_values(orm.filter(id=0)), expected=[], params=[*live, *_after(ids["other"], member), 10]),
    ]


async def _cashback(clock: FrozenClock) -> tuple[Member, dict[str, int]]:
    """A member with a credit, a spend, a return and a payout, and another member's credit (left out)."""
    member = await new_member("uid-cashback")
    other = await new_member("uid-cashback-other")
    await give_available(member.id, 500)
    await give_available(other.id, 500)
    reward = await Reward.create(name="Back", kind=RewardKind.CASHBACK, points_cost=100, value=1_000)
    voucher = await rewards.redeem_reward(member.id, reward.id, idempotency_key="c1")
    await rewards.redeem_reward(other.id, reward.id, idempotency_key="c1")
    credit = await CashbackEntry.get(member_id=member.id, voucher_id=voucher)
    await purchase(member.id, "R1", 4_000, clock.now())
    till = ledger_helpers.TILL
    spent = await cashback.spend_cashback(
        till, member.id, store_code="S1", receipt_id="R1", amount=400, idempotency_key="s1"
    )
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=1_000)
    returned = await CashbackEntry.get(member_id=member.id, kind=CashbackKind.RETURN)
    admin = Actor(kind="staff", id=9, role=StaffRole.ADMIN, name="Admin")
    paid = await cashback.payout_cashback(admin, member.id, amount=50, reference="P1")
    return member, {"credit": credit.id, "spend": spent.entry_id, "return": returned.id, "payout": paid.entry_id}


@case("cashback.page")
async def _cashback_page(program: Program, clock: FrozenClock) -> list[Run]:
    member, entry = await _cashback(clock)
    newest = CashbackEntry.filter(member_id=member.id).order_by("-id")
    return [
        Run(orm=newest.limit(2), expected=[entry["payout"], entry["return"]], params=[member.id, 2]),
        Run(
            orm=newest.limit(10),
            expected=[entry["payout"], entry["return"], entry["spend"], entry["credit"]],
            params=[member.id, 10],
        ),
    ]


@case("cashback.page_before")
async def _cashback_page_before(program: Program, clock: FrozenClock) -> list[Run]:
    member, entry = await _cashback(clock)
    newest = CashbackEntry.filter(member_id=member.id).order_by("-id")
    return [
        # `before` itself is left out
        Run(
            orm=newest.filter(id__lt=entry["return"]).limit(10),
            expected=[entry["spend"], entry["credit"]],
            params=[member.id, entry["return"], 10],
        ),
        Run(orm=newest.filter(id__lt=entry["credit"]), expected=[], params=[member.id, entry["credit"], 10]),
    ]


@case("tests.ids_between_parameters")
async def _ids_between_parameters(program: Program, clock: FrozenClock) -> list[Run]:
    members = [await new_member(f"uid-between-{i}") for i in range(4)]
    ids = [m.id for m in members]
    excluded = members[1].member_number
    orm = Member.filter(id__in=ids[:3], id__gt=ids[0]).exclude(member_number=excluded).order_by("id").values("id")
    return [Run(orm=orm, expected=[{"id": ids[2]}], params=[excluded, ids[0]], ids=ids[:3])]


def _order_free(rows: list[Any]) -> list[Any]:
    return sorted(rows, key=lambda row: repr(sorted(row.items()) if isinstance(row, dict) else row))


@pytest.mark.parametrize("name", sorted(CASES))
async def test_each_statement_returns_what_its_orm_equivalent_returns(
    name: str, program: Program, clock: FrozenClock
) -> None:
    # given rows the statement must find and rows its WHERE must leave out
    declared = sql.registered()[name]
    runs = await CASES[name](program, clock)
    # (without ORDER BY the order is the engine's to choose)
    arranged: Callable[[list[Any]], list[Any]] = (lambda rows: rows) if "ORDER BY" in declared.text else _order_free

    for run in runs:
        # when it runs, and its ORM equivalent
        orm = list(await run.orm)

        # then the same rows in the same order, with the same values of the same types
        if isinstance(declared, sql.Rows):
            found = await sql.fetch_rows(declared, run.params, ids=run.ids)
            assert all(type(row) is declared.row for row in found)
            rows = [row._asdict() for row in found]
            expected = [_values(m) if isinstance(m, Model) else m for m in orm]
            assert arranged([_typed(row) for row in rows]) == arranged([_typed(row) for row in expected])
            if run.expected and not isinstance(run.expected[0], dict):
                assert arranged([row["id"] for row in rows]) == arranged(run.expected)
            else:
                assert arranged(rows) == arranged(run.expected)
            continue
        rows = await sql.fetch(declared, run.params, ids=run.ids)
        if isinstance(declared, sql.Select):
            models = await sql.fetch_models(declared, run.params, ids=run.ids)
            assert arranged([m.id for m in models]) == arranged([m.id for m in orm]) == arranged(run.expected)
            assert arranged([_typed(_values(m)) for m in models]) == arranged([_typed(_values(m)) for m in orm])
            assert arranged([_typed(row) for row in rows]) == arranged([_typed(_values(m)) for m in orm])
        else:
            assert arranged([_typed(row) for row in rows]) == arranged([_typed(row) for row in orm])
            assert arranged(rows) == arranged(run.expected)


def test_every_registered_statement_has_a_case() -> None:
    # given every module of the application imported (at the top of this file)
    # then each registered statement has a case above, and each case a statement
    assert sorted(sql.registered()) == sorted(CASES)
    assert {"members.by_id", "offers.for_member", "staff.active_by_id"} <= set(CASES)  # the walk found the domain's


# --- declaring and running statements -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("""SELECT "id" FROM "member" WHERE "email" = 'who?' AND "id" = ?""", "a string literal"),
        ("""SELECT "id" FROM "member" WHERE "timezone" = 'UTC'""", "a string literal"),
        ('SELECT "id" FROM "member" WHERE "id" = ? -- by id', "a comment"),
        ('SELECT "id" FROM "member" /* by id? */ WHERE "id" = ?', "a comment"),
        ('SELECT "id" FROM "member" WHERE "id" = ?; DELETE FROM "member"', "a ;"),
        ('SELECT "id" FROM "member" WHERE "id" = $1', "a $"),
        ('SELECT "id" FROM "member" WHERE "email" = $$who?$$', "a $"),
        ('SELECT "id" AS "which?" FROM "member" WHERE "id" = ?', "a ? inside a quoted identifier"),
        ('SELECT "id" FROM "member', "an unterminated quoted identifier"),
        ('SELECT "id" FROM "member" WHERE "id" IN ({ids}) OR "tier_id" IN ({ids})', "more than one {ids} list"),
    ],
)
def test_a_statement_whose_placeholders_could_be_misnumbered_is_refused(text: str, refusal: str) -> None:
    # when a statement with a literal, a comment, a second statement or a stray placeholder is declared
    with pytest.raises(ValueError, match=re.escape(f"statement 'tests.refused': {refusal}")):
        sql.statement("tests.refused", Member, text)

    # then it is refused at once, and nothing is registered
    assert "tests.refused" not in sql.registered()


def test_a_select_is_checked_like_a_statement() -> None:
    # when the clauses after a whole-row select hold a literal
    with pytest.raises(ValueError, match=re.escape("statement 'tests.refused': a string literal")):
        sql.select("tests.refused", Member, """WHERE "timezone" = 'UTC'""")

    # then nothing is registered
    assert "tests.refused" not in sql.registered()


def test_a_name_is_registered_once() -> None:
    # given the statement registered as "members.by_id"
    first = sql.registered()["members.by_id"]

    # when another statement is declared under that name
    with pytest.raises(ValueError, match=re.escape("a statement named 'members.by_id' is already registered")):
        sql.select("members.by_id", Member, 'WHERE "member_number" = ?')

    # then the first one stays
    assert sql.registered()["members.by_id"] is first


async def test_only_registered_statements_run(program: Program) -> None:
    # given a member, and statements that did not go through `sql.statement` / `sql.select`
    member = await new_member("uid-unregistered")
    stray = sql.Statement("tests.stray", Member, 'SELECT "id" FROM "member"')
    forged = sql.Select("members.by_id", Member, 'WHERE "id" IN ({ids})')  # a registered name, not its statement
    text: Any = 'SELECT "id" FROM "member"'

    # when they are run, then they are refused before reaching the database
    with pytest.raises(LookupError, match=re.escape("not a registered statement: Statement(name='tests.stray'")):
        await sql.fetch(stray)
    with pytest.raises(LookupError, match=re.escape("not a registered statement: Select(name='members.by_id'")):
        await sql.fetch_models(forged, ids=[member.id])
    with pytest.raises(LookupError, match=re.escape("not a registered statement: 'SELECT")):
        await sql.fetch(text)
    assert "tests.stray" not in sql.registered()


async def test_table_describes_a_models_columns_keys_and_references(db: str) -> None:
    # when the tables of a ledger model and of a member are described
    entries, purchases, members = sql.table(LedgerEntry), sql.table(Purchase), sql.table(Member)

    # then in the order the models declare their fields, foreign keys where their relation is declared
    assert entries == sql.Table(
        name="ledger_entry",
        columns=(
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
            "occurred_at",
        ),
        primary_key="id",
        references={"member_id": Member, "lot_id": PointsLot, "purchase_id": Purchase, "reverses_id": LedgerEntry},
        unique=(("reverses_id",),),
    )
    assert list(entries.references) == ["member_id", "lot_id", "purchase_id", "reverses_id"]
    assert (purchases.unique, sql.table(Refund).unique) == (
        (("store_code", "receipt_id"),),
        (("purchase_id", "refund_id"),),
    )
    assert (members.unique, dict(members.references)) == (
        (("firebase_uid",), ("member_number",), ("referral_code",)),
        {"tier_id": Tier, "manual_tier_id": Tier, "tier_before_upgrade_id": Tier},
    )
    assert members.columns[14:18] == ("tier_id", "tier_since", "tier_held_until", "manual_tier_id")


def test_a_table_is_not_described_before_tortoise_has_started() -> None:
    # given a fresh process, the models imported but Tortoise not started
    script = "from loyalty import sql\nfrom loyalty.models import Member\nsql.table(Member)"

    # when a table is described
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)

    # then it is refused (its foreign-key columns are not known yet), not described without them
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "RuntimeError: Member: its table is known only once Tortoise has started"
    )


PRIVATE_TORTOISE = re.compile(
    r"\._meta\b|\b(_init_from_db|fields_map|fields_db_projection|db_fields|db_table|to_python_value|to_db_value)\b"
)


def test_private_tortoise_api_is_used_only_in_loyalty_sql() -> None:
    # given the application's source and the bench, which writes rows in bulk past the ORM
    sources = [
        path for package in [*_application_packages(), "bench"] for path in sorted((ROOT / package).rglob("*.py"))
    ]

    # then only loyalty/sql.py reaches into Tortoise's internals
    uses = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path != ROOT / "loyalty" / "sql.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if PRIVATE_TORTOISE.search(line)
    ]
    assert uses == []
    assert len(sources) > 50  # the walk found the application


# --- rows -----------------------------------------------------------------------------------------------


async def test_each_row_named_after_a_model_has_its_columns_first_in_order(db: str) -> None:
    # given Tortoise started (a model's foreign-key columns are known then)
    # then each row begins with its model's columns, named and ordered as the model's table has them
    for row, model in rows.MODEL_ROWS.items():
        columns = sql.table(cast(type[Model], model)).columns
        assert row._fields[: len(columns)] == columns, row.__name__  # type: ignore[attr-defined]
    assert rows.MemberRow._fields[len(sql.table(Member).columns) :] == ("qualifying_value", "membership_plan_id")
    assert rows.OfferRow._fields[len(sql.table(Offer).columns) :] == ("uses", "activated")


class _Plain(NamedTuple):
    id: int


class _Money(NamedTuple):
    id: int
    amount: Decimal


class _Either(NamedTuple):
    id: int | str


def test_rows_are_read_as_a_named_tuple_whose_fields_have_a_known_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql, "_registry", dict(sql.registered()))  # what is declared here goes away after the test
    text = 'SELECT "id" FROM "member"'

    # when rows are declared as something else than a NamedTuple, or with a field of no known conversion
    # then the declaration is refused, and nothing is registered
    with pytest.raises(TypeError, match=re.escape("statement 'tests.dicts': rows are read as a NamedTuple")):
        sql.rows("tests.dicts", Member, cast(Any, dict), text)
    with pytest.raises(TypeError, match=re.escape("no conversion for a row field of type <class 'decimal.Decimal'>")):
        sql.rows("tests.money", Member, _Money, text)
    with pytest.raises(TypeError, match=re.escape("a row field is one type or None, not int | str")):
        sql.rows("tests.either", Member, _Either, text)
    assert not {"tests.dicts", "tests.money", "tests.either"} & set(sql.registered())


async def test_a_row_narrower_or_wider_than_its_statement_is_refused(
    program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a member, and statements whose columns are not their row's fields
    monkeypatch.setattr(sql, "_registry", dict(sql.registered()))
    member = await new_member("uid-width")
    wider = sql.rows("tests.wider", Member, _Plain, 'SELECT "id", "member_number" FROM "member"')
    fits = sql.rows("tests.fits", Member, _Plain, 'SELECT "id" FROM "member" WHERE "id" = ?')

    # when they run, then the mismatch is an error, not a misread row
    with pytest.raises(ValueError, match=re.escape("_Plain has 1 fields, the statement returned 2 columns")):
        await sql.fetch_rows(wider)
    assert await sql.fetch_rows(fits, [member.id]) == [_Plain(member.id)]
    with pytest.raises(LookupError, match=re.escape("not a registered statement: Select(name='members.by_id'")):
        await sql.fetch_rows(cast(Any, sql.registered()["members.by_id"]))


async def test_an_empty_member_reads_as_zeros_and_defaults(program: Program, clock: FrozenClock) -> None:
    # given a member who has done nothing yet
    member = await new_member("uid-empty")

    # when their row is read
    found = await members.member_rows([member.id, member.id + 1], program, clock.now())

    # then one row (the other id is nobody's), with the ORM's values and no qualifying value
    assert list(found) == [member.id]
    row = found[member.id]
    assert row._asdict() == {
        **_values(await Member.get(id=member.id)),
        "qualifying_value": 0,
        "membership_plan_id": None,
    }
    assert (row.points_available, row.interests, row.marketing_consent, row.birthday) == (0, [], False, None)
