"""Tier qualification and progress.

Members qualify on a metric kept apart from the spendable balance (`QualifyingCredit`), so redeeming
never drops a tier. Upgrades are immediate and hold until the end of the next period; at evaluation
after that, a member who no longer qualifies moves down one tier. A manually assigned tier is a floor
until its end date.

Tier credit follows refunds: a refund takes its purchase's qualifying value back, and when that leaves an upgrade
without ground (`undo_unfounded_upgrade`) the upgrade is undone at once, back to the standing the member had before
it (tier and hold, remembered on the member when a run of upgrades starts in a period). Otherwise buying enough for
a tier and returning it kept the tier, its multiplier and its benefits for a year or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock, events, sql
from loyalty.models import Member, Program, QualifyingCredit, Tier, TierPeriod
from loyalty.program import tiers_of
from loyalty.rows import AnyMember

ROLLING_PERIOD = timedelta(days=365)


def period_start(program: Program, at: datetime) -> datetime:
    """Start of the qualification window that contains `at`."""
    if program.tier_period == TierPeriod.ROLLING_12_MONTHS:
        return at - ROLLING_PERIOD
    local = at.astimezone(ZoneInfo(program.timezone))
    return local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def period_end(program: Program, at: datetime) -> datetime:
    """End of the qualification window that contains `at` (for a rolling window: a year from `at`)."""
    if program.tier_period == TierPeriod.ROLLING_12_MONTHS:
        return at + ROLLING_PERIOD
    local = period_start(program, at).astimezone(ZoneInfo(program.timezone))
    return local.replace(year=local.year + 1).astimezone(UTC)


def next_period_end(program: Program, at: datetime) -> datetime:
    """End of the period after the one containing `at`: how long a newly reached tier holds."""
    if program.tier_period == TierPeriod.ROLLING_12_MONTHS:
        return at + ROLLING_PERIOD
    return period_end(program, period_end(program, at))


# The sum cast back to the column's type: PostgreSQL widens SUM(bigint) to numeric (a Decimal), the ORM does not.
_QUALIFYING_TOTALS = sql.statement(
    "tiers.qualifying_totals",
    QualifyingCredit,
    'SELECT "member_id", CAST(SUM("amount") AS BIGINT) AS "total" FROM "qualifying_credit"'
    ' WHERE "occurred_at" >= ? AND "occurred_at" < ? AND "member_id" IN ({ids}) GROUP BY "member_id"',
)


async def qualifying_values(
    member_ids: Sequence[int], program: Program, at: datetime, conn: BaseDBAsyncClient | None = None
) -> dict[int, int]:
    """Each member's qualifying value in the period containing `at` (one query for any number of members)."""
    # Bounded by the period's end, not by `at`: a purchase may be stamped a few minutes ahead of the business
    # clock (till clock skew, `checks.FUTURE_TOLERANCE`). With `occurred_at <= at` such a purchase did not count
    # when it was recorded, so the upgrade it earned was not immediate (and no evaluation was due later).
    window = [period_start(program, at), period_end(program, at)]
    rows = await sql.fetch(_QUALIFYING_TOTALS, window, ids=list(member_ids), conn=conn)
    totals = {row["member_id"]: int(row["total"] or 0) for row in rows}
    return {member_id: totals.get(member_id, 0) for member_id in member_ids}


async def qualifying_value(
    member_id: int, program: Program, at: datetime, conn: BaseDBAsyncClient | None = None
) -> int:
    """The member's qualifying value in the current period."""
    return (await qualifying_values([member_id], program, at, conn))[member_id]


def earned_tier(tiers: list[Tier], value: int) -> Tier:
    """The highest tier whose threshold `value` reaches."""
    reached = [t for t in tiers if t.threshold <= value]
    return reached[-1] if reached else tiers[0]


def _rank(tiers: list[Tier], tier_id: int | None) -> int:
    return next((t.rank for t in tiers if t.id == tier_id), 0)


def _same_period(program: Program, earlier: datetime, later: datetime) -> bool:
    """True if two instants fall in one qualification period (rolling: less than a period apart)."""
    if program.tier_period == TierPeriod.ROLLING_12_MONTHS:
        return later - earlier < ROLLING_PERIOD
    return period_start(program, earlier) == period_start(program, later)


@dataclass(frozen=True)
class TierDecision:
    """What an evaluation decides: the tier, and the member columns to store (empty when nothing moves)."""

    tier: Tier
    previous: Tier | None  # the tier before, when it changes
    changed: bool
    value: int  # the qualifying value it was decided on
    fields: dict[str, Any]


def decide_tier(member: Member, program: Program, value: int, at: datetime) -> TierDecision:
    """The evaluation of `member`'s tier on qualifying value `value` at `at`, without writing (see `evaluate_tier`)."""
    tiers = tiers_of(program)
    current_rank = _rank(tiers, member.tier_id) if member.tier_id else 0
    earned = earned_tier(tiers, value)
    held_until = member.tier_held_until
    rank = current_rank
    if earned.rank >= current_rank:
        rank = earned.rank
        hold = next_period_end(program, at)
        held_until = hold if held_until is None or earned.rank > current_rank else max(held_until, hold)
    elif held_until is None or at >= held_until:
        rank = current_rank - 1
        held_until = period_end(program, at)
    if member.manual_tier_id and member.manual_tier_until and member.manual_tier_until > at:
        floor = _rank(tiers, member.manual_tier_id)
        if floor > rank:
            rank = floor
            # The floor tier holds exactly until the manual end date. (Taking the max with the hold computed for
            # the lower, earned tier kept the manual tier up to the end of the *next* period, long after the
            # manual end date.) After that date the evaluation moves down one tier at a time as usual.
            held_until = member.manual_tier_until
    new_tier = tiers[rank]
    changed = new_tier.id != member.tier_id
    upgraded_at, before_id, before_held = (
        member.tier_upgraded_at,
        member.tier_before_upgrade_id,
        member.tier_before_upgrade_held_until,
    )
    if earned.rank > current_rank and (upgraded_at is None or not _same_period(program, upgraded_at, at)):
        # A run of upgrades starts: remember the standing before it, which a refund may have to restore.
        upgraded_at, before_id, before_held = at, member.tier_id, member.tier_held_until
    elif rank < current_rank:
        upgraded_at, before_id, before_held = None, None, None
    fields: dict[str, Any] = {}
    if changed or held_until != member.tier_held_until or upgraded_at != member.tier_upgraded_at:
        fields = _standing_fields(
            new_tier, at if changed else member.tier_since, held_until, (upgraded_at, before_id, before_held)
        )
    previous = next((t for t in tiers if t.id == member.tier_id), None) if changed else None
    return TierDecision(new_tier, previous, changed, value, fields)


def apply_tier_decision(member: Member, decision: TierDecision, outbox: events.Outbox) -> None:
    """Set a decision's stored columns on the `member` instance (the caller writes them, e.g. with the purchase's
    balance update) and add its `tier.changed` to `outbox`."""
    for name, value in decision.fields.items():
        setattr(member, name, value)
    if decision.changed:
        outbox.add(events.TIER_CHANGED, member_id=member.id, payload=_tier_changed(decision, "evaluation"))


async def evaluate_tier(conn: BaseDBAsyncClient, member: Member, program: Program) -> Tier:
    """Re-evaluate `member`'s tier inside the caller's transaction (member row locked) and persist it.

    Emits `tier.changed` when the tier moves.
    """
    at = clock.now()
    decision = decide_tier(member, program, await qualifying_value(member.id, program, at, conn), at)
    if decision.fields:
        outbox = events.Outbox()
        apply_tier_decision(member, decision, outbox)
        await Member.filter(id=member.id).using_db(conn).update(**decision.fields, updated_at=clock.now())
        await outbox.flush(conn)
    return decision.tier


def _standing_fields(
    tier: Tier,
    since: datetime | None,
    held_until: datetime | None,
    before_upgrade: tuple[datetime | None, int | None, datetime | None],
) -> dict[str, Any]:
    """The member columns of a tier standing: tier, since, hold and the standing before a run of upgrades."""
    return {
        "tier_id": tier.id,
        "tier_since": since,
        "tier_held_until": held_until,
        "tier_upgraded_at": before_upgrade[0],
        "tier_before_upgrade_id": before_upgrade[1],
        "tier_before_upgrade_held_until": before_upgrade[2],
    }


def _tier_changed(decision: TierDecision, reason: str) -> dict[str, Any]:
    previous, new_tier = decision.previous, decision.tier
    return {
        "from": previous.name if previous else None,
        "to": new_tier.name,
        "direction": "up" if previous is None or new_tier.rank > previous.rank else "down",
        "qualifying_value": decision.value,
        "reason": reason,
    }


async def undo_unfounded_upgrade(conn: BaseDBAsyncClient, member: Member, program: Program) -> Tier | None:
    """After a refund took qualifying value back: undo the member's upgrade if nothing qualifies for it any more.

    Runs inside the refund's transaction (member row locked, the refund's negative credit written). The upgrade
    stands while the qualifying value of the period it was reached in, or of the current period, still reaches the
    tier. Otherwise the member goes back to the standing before the run of upgrades (tier and its hold), or to the
    highest tier the value still reaches above that (held as an upgrade to it would be); a manual tier stays a
    floor. Nothing to undo once the hold has ended (the evaluation job downgrades as usual) or when the tier was
    not reached by an upgrade. Emits `tier.changed` (direction `down`, reason `refund`); returns the new tier, or
    None when the tier stays.
    """
    at = clock.now()
    if member.tier_upgraded_at is None or member.tier_held_until is None or at >= member.tier_held_until:
        return None
    tiers = tiers_of(program)
    current_rank = _rank(tiers, member.tier_id)
    reached_at = member.tier_since or member.tier_upgraded_at
    value = max(
        await qualifying_value(member.id, program, reached_at, conn),
        await qualifying_value(member.id, program, at, conn),
    )
    if value >= tiers[current_rank].threshold:
        return None
    base_rank = _rank(tiers, member.tier_before_upgrade_id)
    rank = max(base_rank, earned_tier(tiers, value).rank)
    before_upgrade: tuple[datetime | None, int | None, datetime | None] = (
        member.tier_upgraded_at,
        member.tier_before_upgrade_id,
        member.tier_before_upgrade_held_until,
    )
    if rank == base_rank:
        held_until = member.tier_before_upgrade_held_until
        before_upgrade = (None, None, None)
    else:  # still above where the run started: as if the upgrade had stopped at this tier
        held_until = next_period_end(program, reached_at)
    if member.manual_tier_id and member.manual_tier_until and member.manual_tier_until > at:
        floor = _rank(tiers, member.manual_tier_id)
        if floor > rank:
            rank, held_until = floor, member.manual_tier_until
    if rank >= current_rank:
        return None
    fields = _standing_fields(tiers[rank], at, held_until, before_upgrade)
    decision = TierDecision(tiers[rank], tiers[current_rank], True, value, fields)
    for name, field_value in fields.items():
        setattr(member, name, field_value)
    await Member.filter(id=member.id).using_db(conn).update(**fields, updated_at=clock.now())
    await events.emit(conn, events.TIER_CHANGED, member_id=member.id, payload=_tier_changed(decision, "refund"))
    return decision.tier


@dataclass(frozen=True)
class TierProgress:
    current: Tier
    next: Tier | None
    qualifying_value: int
    next_threshold: int | None
    remaining_to_next: int | None
    progress: float  # 0..1 towards the next tier; 1.0 at the top tier
    period_ends_at: datetime
    held_until: datetime | None
    needed_to_keep: int  # qualifying value still missing this period to keep the current tier


def tier_progress(member: AnyMember, program: Program, value: int, at: datetime) -> TierProgress:
    """What the member app shows about tiers, from the member's tier and qualifying value."""
    tiers = tiers_of(program)
    rank = _rank(tiers, member.tier_id)
    current = tiers[rank]
    upcoming = tiers[rank + 1] if rank + 1 < len(tiers) else None
    if upcoming is None:
        remaining, fraction = None, 1.0
    else:
        remaining = max(0, upcoming.threshold - value)
        span = upcoming.threshold - current.threshold
        fraction = min(1.0, max(0.0, (value - current.threshold) / span)) if span > 0 else 1.0
    return TierProgress(
        current=current,
        next=upcoming,
        qualifying_value=value,
        next_threshold=upcoming.threshold if upcoming else None,
        remaining_to_next=remaining,
        progress=round(fraction, 4),
        period_ends_at=period_end(program, at),
        held_until=member.tier_held_until,
        needed_to_keep=max(0, current.threshold - value),
    )
