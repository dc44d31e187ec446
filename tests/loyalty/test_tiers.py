"""Tiers: qualification apart from the balance, immediate upgrade, hold, stepwise downgrade, manual floor, progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from loyalty import jobs, tiers
from loyalty.clock import FrozenClock
from loyalty.models import Member, OutboxEvent, Program, Tier
from loyalty.program import load_program
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import configure, new_member, purchase

DAY = timedelta(days=1)
Y2027 = datetime(2027, 1, 1, tzinfo=UTC)
Y2028 = datetime(2028, 1, 1, tzinfo=UTC)
Y2029 = datetime(2029, 1, 1, tzinfo=UTC)


async def _tier_name(member_id: int) -> str:
    member = await Member.get(id=member_id)
    return (await Tier.get(id=member.tier_id)).name


async def _tier_events(member_id: int) -> list[tuple[str | None, str, str]]:
    # values(), not values_list(flat=True), which tortoise types as tuples.
    rows = await OutboxEvent.filter(member_id=member_id, type="tier.changed").order_by("id").values("payload")
    return [(row["payload"]["from"], row["payload"]["to"], row["payload"]["direction"]) for row in rows]


async def _qualifying(member_id: int) -> int:
    from loyalty import clock

    return await tiers.qualifying_value(member_id, await load_program(), clock.now())


async def test_upgrade_is_immediate_and_emits_tier_changed(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-tier")

    # when a purchase reaches the Silver threshold (500 qualifying points)
    result = await purchase(member.id, "R1", 50_000, clock.now())

    # then Silver at once, though the points are still pending, held until the end of the next calendar year
    assert result.tier == "Silver"
    assert await _tier_name(member.id) == "Silver"
    stored = await Member.get(id=member.id)
    assert (stored.tier_since, stored.tier_held_until) == (clock.now(), Y2028)
    assert await _tier_events(member.id) == [("Member", "Silver", "up")]


async def test_upgrade_counts_a_purchase_stamped_minutes_ahead_of_the_clock(
    program: Program, clock: FrozenClock
) -> None:
    # given a till whose clock runs 4 minutes ahead (within the accepted skew)
    member = await new_member("uid-tier")

    # when it records a purchase reaching Silver
    result = await purchase(member.id, "R1", 50_000, clock.now() + timedelta(minutes=4))

    # then the upgrade is immediate, as for any other purchase
    assert result.tier == "Silver"
    assert await _qualifying(member.id) == 500
    assert await _tier_events(member.id) == [("Member", "Silver", "up")]


async def test_the_tier_multiplier_applies_from_the_next_purchase_but_qualifying_uses_base_points(
    program: Program, clock: FrozenClock
) -> None:
    # given a Silver member (x1.25)
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 50_000, clock.now())

    # when
    second = await purchase(member.id, "R2", 10_001, clock.now())

    # then 100.01 EUR -> floor(100.01 * 1.25) = 125 points, qualifying +100
    assert second.points == 125
    assert await _qualifying(member.id) == 600


async def test_redeeming_never_drops_the_tier(program: Program, clock: FrozenClock) -> None:
    # given a Silver member with 600 available points
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 60_000, clock.now() - 20 * DAY)

    # when every point is spent and the tier is re-evaluated (a zero-point purchase)
    await ledger_helpers.redeem_points(member.id, 600, idempotency_key="k1")
    await purchase(member.id, "R2", 0, clock.now())

    # then the qualifying value and the tier are untouched
    assert (await Member.get(id=member.id)).points_available == 0
    assert await _qualifying(member.id) == 600
    assert await _tier_name(member.id) == "Silver"
    assert await _tier_events(member.id) == [("Member", "Silver", "up")]


async def test_tier_holds_until_the_end_of_the_next_period_then_drops(program: Program, clock: FrozenClock) -> None:
    # given Silver reached in March 2026 (held until 2028-01-01), nothing bought since
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 50_000, clock.now())

    # when the evaluation runs through 2027, up to one second before the hold ends
    clock.set(Y2027 + DAY)
    assert await jobs.evaluate_tiers() == 0
    clock.set(Y2028 - timedelta(seconds=1))
    assert await jobs.evaluate_tiers() == 0
    assert await _tier_name(member.id) == "Silver"

    # when the hold ends
    clock.set(Y2028)
    assert await jobs.evaluate_tiers() == 1

    # then one tier down, and the job is idempotent
    assert await _tier_name(member.id) == "Member"
    assert await jobs.evaluate_tiers() == 0
    assert await _tier_events(member.id) == [("Member", "Silver", "up"), ("Silver", "Member", "down")]


async def test_downgrade_moves_one_tier_at_a_time(program: Program, clock: FrozenClock) -> None:
    # given Gold reached in 2026
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 200_000, clock.now())
    assert await _tier_name(member.id) == "Gold"

    # when the hold ends with no qualifying activity: Gold -> Silver, held to the end of that period
    clock.set(Y2028)
    await jobs.evaluate_tiers()
    assert await _tier_name(member.id) == "Silver"
    assert (await Member.get(id=member.id)).tier_held_until == Y2029

    # and a period later: Silver -> Member
    clock.set(Y2029)
    await jobs.evaluate_tiers()
    assert await _tier_name(member.id) == "Member"
    assert [e[2] for e in await _tier_events(member.id)] == ["up", "down", "down"]


async def test_requalifying_in_the_next_period_extends_the_hold(program: Program, clock: FrozenClock) -> None:
    # given Silver in 2026, and 500 qualifying points again in 2027
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 50_000, clock.now())
    clock.set(datetime(2027, 6, 1, tzinfo=UTC))
    await purchase(member.id, "R2", 40_000, clock.now())  # x1.25 earns 500, qualifies 400: not enough
    assert (await Member.get(id=member.id)).tier_held_until == Y2028
    await purchase(member.id, "R3", 10_000, clock.now())  # 500 qualifying in 2027

    # then held until the end of 2028, and the 2028 evaluation keeps Silver
    assert (await Member.get(id=member.id)).tier_held_until == Y2029
    clock.set(Y2028)
    assert await jobs.evaluate_tiers() == 0
    assert await _tier_name(member.id) == "Silver"


async def test_manual_tier_is_a_floor_until_its_end_date(program: Program, clock: FrozenClock) -> None:
    # given a Member-tier member given Gold manually until 2026-06-01
    member = await new_member("uid-tier")
    gold = await Tier.get(name="Gold")
    until = datetime(2026, 6, 1, tzinfo=UTC)
    await Member.filter(id=member.id).update(manual_tier_id=gold.id, manual_tier_until=until)

    # when the tier is evaluated (a small purchase)
    result = await purchase(member.id, "R1", 1_000, clock.now())

    # then Gold, held exactly until the manual end date
    assert result.tier == "Gold"
    assert (await Member.get(id=member.id)).tier_held_until == until

    # when the manual tier ends: one tier down, then the next at the end of the period
    clock.set(until - timedelta(seconds=1))
    assert await jobs.evaluate_tiers() == 0
    clock.set(until)
    assert await jobs.evaluate_tiers() == 1
    assert await _tier_name(member.id) == "Silver"
    clock.set(Y2027)
    await jobs.evaluate_tiers()
    assert await _tier_name(member.id) == "Member"


async def test_manual_floor_keeps_the_tier_through_a_due_evaluation(program: Program, clock: FrozenClock) -> None:
    # given a Silver member whose hold ends 2028-01-01, with a manual Silver floor until mid-2028
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 50_000, clock.now())
    silver = await Tier.get(name="Silver")
    until = datetime(2028, 7, 1, tzinfo=UTC)
    await Member.filter(id=member.id).update(manual_tier_id=silver.id, manual_tier_until=until)

    # when the evaluation runs at the end of the hold
    clock.set(Y2028)
    await jobs.evaluate_tiers()

    # then the floor keeps Silver until its end date, after which the member drops
    assert await _tier_name(member.id) == "Silver"
    assert (await Member.get(id=member.id)).tier_held_until == until
    clock.set(until)
    await jobs.evaluate_tiers()
    assert await _tier_name(member.id) == "Member"


async def test_manual_floor_below_the_earned_tier_changes_nothing(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-tier")
    silver = await Tier.get(name="Silver")
    await Member.filter(id=member.id).update(manual_tier_id=silver.id, manual_tier_until=Y2029)
    await purchase(member.id, "R1", 200_000, clock.now())
    stored = await Member.get(id=member.id)
    assert (await _tier_name(member.id), stored.tier_held_until) == ("Gold", Y2028)


async def test_refund_reduces_the_qualifying_value(program: Program, clock: FrozenClock) -> None:
    # given a Silver member with 600 qualifying points
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 60_000, clock.now())
    assert await _qualifying(member.id) == 600

    # when half is refunded
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=30_000)

    # then the qualifying value drops, and with it the upgrade it no longer supports (tests/loyalty/
    # test_tier_refunds.py has every case); progress shows what is missing for Silver again
    assert await _qualifying(member.id) == 300
    assert await _tier_name(member.id) == "Member"
    progress = tiers.tier_progress(await Member.get(id=member.id), await load_program(), 300, clock.now())
    assert (progress.next.name if progress.next else None, progress.remaining_to_next) == ("Silver", 200)


async def test_refund_with_spend_metric_reduces_qualifying_spend_proportionally(
    program: Program, clock: FrozenClock
) -> None:
    await configure(tier_metric="spend")
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 9_999, clock.now())
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=3_333)
    assert await _qualifying(member.id) == 6_666
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=6_666)
    assert await _qualifying(member.id) == 0


async def test_calendar_year_period_resets_on_new_year(program: Program, clock: FrozenClock) -> None:
    # given 600 qualifying points in March 2026
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 60_000, clock.now())

    # then they count for all of 2026 and not in 2027
    clock.set(Y2027 - timedelta(seconds=1))
    assert await _qualifying(member.id) == 600
    clock.set(Y2027)
    assert await _qualifying(member.id) == 0


async def test_calendar_year_follows_the_program_timezone(program: Program, clock: FrozenClock) -> None:
    await configure(timezone="Europe/Berlin")
    loaded = await load_program()
    at = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # already 2027 in Berlin
    assert tiers.period_start(loaded, at) == datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert tiers.period_end(loaded, at) == datetime(2027, 12, 31, 23, 0, tzinfo=UTC)


async def test_rolling_12_months_counts_the_last_365_days(program: Program, clock: FrozenClock) -> None:
    # given a rolling program and 600 qualifying points on 2026-03-02
    await configure(tier_period="rolling_12_months")
    member = await new_member("uid-tier")
    t0 = clock.now()
    result = await purchase(member.id, "R1", 60_000, t0)

    # then Silver held for a rolling year, and the points count for exactly 365 days
    assert result.tier == "Silver"
    assert (await Member.get(id=member.id)).tier_held_until == t0 + 365 * DAY
    clock.set(Y2027 + DAY)
    assert await _qualifying(member.id) == 600
    clock.set(t0 + 365 * DAY)
    assert await _qualifying(member.id) == 600
    clock.set(t0 + 365 * DAY + timedelta(seconds=1))
    assert await _qualifying(member.id) == 0
    assert await jobs.evaluate_tiers() == 1
    assert await _tier_name(member.id) == "Member"


async def test_tier_progress_towards_the_next_tier(program: Program, clock: FrozenClock) -> None:
    # given a Silver member with 800 qualifying points
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 80_000, clock.now())
    stored = await Member.get(id=member.id)

    # when
    progress = tiers.tier_progress(stored, await load_program(), await _qualifying(member.id), clock.now())

    # then
    assert (progress.current.name, progress.next.name if progress.next else None) == ("Silver", "Gold")
    assert (progress.qualifying_value, progress.next_threshold, progress.remaining_to_next) == (800, 2000, 1200)
    assert progress.progress == 0.2  # (800 - 500) / (2000 - 500)
    assert (progress.period_ends_at, progress.held_until, progress.needed_to_keep) == (Y2027, Y2028, 0)


async def test_tier_progress_for_entry_and_top_tier(program: Program, clock: FrozenClock) -> None:
    loaded = await load_program()
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 10_000, clock.now())
    entry = tiers.tier_progress(await Member.get(id=member.id), loaded, 100, clock.now())
    assert (entry.current.name, entry.remaining_to_next, entry.progress, entry.needed_to_keep) == (
        "Member",
        400,
        0.2,
        0,
    )
    await purchase(member.id, "R2", 190_000, clock.now())
    top = tiers.tier_progress(await Member.get(id=member.id), loaded, 2_000, clock.now())
    assert (top.current.name, top.next, top.next_threshold, top.remaining_to_next, top.progress) == (
        "Gold",
        None,
        None,
        None,
        1.0,
    )
    # and a held Gold member who has fallen short this year sees what keeping Gold needs
    clock.set(Y2027)
    held = tiers.tier_progress(await Member.get(id=member.id), loaded, await _qualifying(member.id), clock.now())
    assert (held.current.name, held.qualifying_value, held.needed_to_keep, held.period_ends_at) == (
        "Gold",
        0,
        2_000,
        Y2028,
    )


@pytest.mark.postgres_only
async def test_concurrent_tier_evaluations_downgrade_one_tier_only(program: Program, clock: FrozenClock) -> None:
    # given a Gold member whose hold has ended
    member = await new_member("uid-tier")
    await purchase(member.id, "R1", 200_000, clock.now())
    clock.set(Y2028)

    # when three evaluation jobs run at once
    await asyncio.gather(*(jobs.evaluate_tiers() for _ in range(3)))

    # then exactly one step down
    assert await _tier_name(member.id) == "Silver"
    assert await _tier_events(member.id) == [("Member", "Gold", "up"), ("Gold", "Silver", "down")]
