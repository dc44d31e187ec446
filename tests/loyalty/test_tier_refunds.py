"""Tier credit follows refunds: an upgrade a refund leaves without ground is undone (`tiers.undo_unfounded_upgrade`).

Test program: Member 0, Silver 500 (x1.25), Gold 2000 (x1.5) qualifying points a calendar year (UTC); 1 point per
euro; a 14-day return window. The clock starts on 2026-03-02 12:00 UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty import jobs
from loyalty.clock import FrozenClock
from loyalty.models import AuditLog, Member, OutboxEvent, Program, Tier
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import balances, new_member, purchase

DAY = timedelta(days=1)
Y2027 = datetime(2027, 1, 1, tzinfo=UTC)
Y2028 = datetime(2028, 1, 1, tzinfo=UTC)
Y2029 = datetime(2029, 1, 1, tzinfo=UTC)


async def _standing(member_id: int) -> tuple[str, datetime | None]:
    member = await Member.get(id=member_id)
    return (await Tier.get(id=member.tier_id)).name, member.tier_held_until


async def _tier_events(member_id: int) -> list[tuple[str | None, str, str, str]]:
    rows = await OutboxEvent.filter(member_id=member_id, type="tier.changed").order_by("id").values("payload")
    return [(r["payload"]["from"], r["payload"]["to"], r["payload"]["direction"], r["payload"]["reason"]) for r in rows]


async def _refund(receipt_id: str, refund_id: str, amount: int) -> Any:
    return await ledger_helpers.refund_purchase(
        store_code="S1", receipt_id=receipt_id, refund_id=refund_id, amount=amount
    )


async def test_a_full_refund_inside_the_window_undoes_the_upgrade(program: Program, clock: FrozenClock) -> None:
    # given a new member lifted to Silver by one 500.00 EUR purchase
    member = await new_member("uid-undo")
    before = await Member.get(id=member.id)
    await purchase(member.id, "R1", 50_000, clock.now())
    assert await _standing(member.id) == ("Silver", Y2028)

    # when it is returned five days later
    clock.advance(5 * DAY)
    result = await _refund("R1", "F1", 50_000)

    # then the member is back where they were, told so by an event and the audit log
    assert (result.tier_from, result.tier_to) == ("Silver", "Member")
    assert await _standing(member.id) == ("Member", before.tier_held_until)
    assert await _tier_events(member.id) == [
        ("Member", "Silver", "up", "evaluation"),
        ("Silver", "Member", "down", "refund"),
    ]
    audit = await AuditLog.get(action="purchase.refund")
    assert (audit.before, audit.after) == (
        {"tier": "Silver"},
        {"refund_id": "F1", "amount": 50_000, "points_reversed": 500, "tier": "Member"},
    )
    stored = await Member.get(id=member.id)
    assert (stored.tier_since, stored.tier_upgraded_at, stored.tier_before_upgrade_id) == (clock.now(), None, None)
    # and Silver's multiplier applies no more: 100.00 EUR earn 100 points, not 125
    assert (await purchase(member.id, "R2", 10_000, clock.now())).points == 100


async def test_a_partial_refund_that_keeps_the_threshold_keeps_the_tier(program: Program, clock: FrozenClock) -> None:
    # given Silver with 800 qualifying points from one purchase
    member = await new_member("uid-partial")
    await purchase(member.id, "R1", 80_000, clock.now())

    # when 300.00 come back: exactly the threshold is left
    kept = await _refund("R1", "F1", 30_000)

    # then Silver stays; one point less and it goes
    assert (kept.tier_from, kept.tier_to) == (None, None)
    assert await _standing(member.id) == ("Silver", Y2028)
    lowered = await _refund("R1", "F2", 100)
    assert (lowered.tier_from, lowered.tier_to) == ("Silver", "Member")
    assert [e[:3] for e in await _tier_events(member.id)] == [("Member", "Silver", "up"), ("Silver", "Member", "down")]


async def test_a_refund_after_the_return_window_undoes_the_upgrade_too(program: Program, clock: FrozenClock) -> None:
    # given Silver from a purchase whose points have become available
    member = await new_member("uid-late")
    await purchase(member.id, "R1", 50_000, clock.now())
    clock.advance(20 * DAY)
    await jobs.expire_points()

    # when it is returned after the window
    await _refund("R1", "F1", 50_000)

    # then the tier follows the money whenever it comes back
    assert (await _standing(member.id))[0] == "Member"
    assert await balances(member.id) == (0, 0, 0)


async def test_a_refund_after_the_hold_ended_leaves_the_tier_to_the_evaluation(
    program: Program, clock: FrozenClock
) -> None:
    # given Silver reached in 2026, held until 2028, and the hold over
    member = await new_member("uid-held")
    await purchase(member.id, "R1", 50_000, clock.now())
    clock.set(Y2028 + DAY)

    # when the 2026 purchase is refunded
    result = await _refund("R1", "F1", 50_000)

    # then the refund moves no tier; the evaluation job downgrades as it would have anyway
    assert (result.tier_from, result.tier_to) == (None, None)
    assert await _standing(member.id) == ("Silver", Y2028)
    assert await jobs.evaluate_tiers() == 1
    assert (await _standing(member.id))[0] == "Member"
    assert [e[3] for e in await _tier_events(member.id)] == ["evaluation", "evaluation"]


async def test_refunding_a_purchase_that_did_not_lift_the_tier_keeps_it(program: Program, clock: FrozenClock) -> None:
    # given Silver from R1, then R2 which lifted nothing
    member = await new_member("uid-other")
    await purchase(member.id, "R1", 60_000, clock.now())
    await purchase(member.id, "R2", 10_000, clock.now())

    # when R2 is returned
    await _refund("R2", "F1", 10_000)

    # then
    assert await _standing(member.id) == ("Silver", Y2028)
    assert len(await _tier_events(member.id)) == 1


async def test_a_tier_held_from_last_period_is_not_touched_by_a_refund(program: Program, clock: FrozenClock) -> None:
    # given Gold held until the end of 2026 (qualified in 2025), nothing qualifying yet this year
    member = await new_member("uid-gold")
    gold = await Tier.get(name="Gold")
    await Member.filter(id=member.id).update(tier_id=gold.id, tier_held_until=Y2027)

    # when a small purchase of this year is refunded
    await purchase(member.id, "R1", 10_000, clock.now())
    await _refund("R1", "F1", 10_000)

    # then Gold holds as before
    assert await _standing(member.id) == ("Gold", Y2027)
    assert await _tier_events(member.id) == []


async def test_an_upgrade_reached_by_two_purchases_is_undone_when_either_goes_back(
    program: Program, clock: FrozenClock
) -> None:
    # given 300 + 300 qualifying points: Silver at the second purchase
    member = await new_member("uid-two")
    await purchase(member.id, "R1", 30_000, clock.now())
    await purchase(member.id, "R2", 30_000, clock.now())
    assert (await _standing(member.id))[0] == "Silver"

    # when the first one is returned
    await _refund("R1", "F1", 30_000)

    # then 300 are left: Member again
    assert (await _standing(member.id))[0] == "Member"
    # ... while with a third purchase the same refund leaves 600, and Silver stays
    other = await new_member("uid-three")
    for receipt in ("S1", "S2", "S3"):
        await purchase(other.id, receipt, 30_000, clock.now())
    await _refund("S1", "G1", 30_000)
    assert await _standing(other.id) == ("Silver", Y2028)


async def test_a_run_of_upgrades_is_undone_one_refund_at_a_time(program: Program, clock: FrozenClock) -> None:
    # given Member -> Silver (R1, 600) -> Gold (R2, +1500)
    member = await new_member("uid-run")
    await purchase(member.id, "R1", 60_000, clock.now())
    clock.advance(DAY)
    await purchase(member.id, "R2", 150_000, clock.now())
    assert await _standing(member.id) == ("Gold", Y2028)

    # when R2 comes back, then Silver (as an upgrade to it holds); when R1 comes back too, then Member
    await _refund("R2", "F1", 150_000)
    assert await _standing(member.id) == ("Silver", Y2028)
    await _refund("R1", "F2", 60_000)
    assert (await _standing(member.id))[0] == "Member"
    assert [e[:3] for e in await _tier_events(member.id)] == [
        ("Member", "Silver", "up"),
        ("Silver", "Gold", "up"),
        ("Gold", "Silver", "down"),
        ("Silver", "Member", "down"),
    ]


async def test_a_partial_refund_of_a_jump_stops_at_the_tier_still_reached(program: Program, clock: FrozenClock) -> None:
    # given Member straight to Gold with 2100
    member = await new_member("uid-jump")
    await purchase(member.id, "R1", 210_000, clock.now())

    # when 1500.00 come back, then Silver; when the rest does, then Member
    await _refund("R1", "F1", 150_000)
    assert await _standing(member.id) == ("Silver", Y2028)
    await _refund("R1", "F2", 60_000)
    assert (await _standing(member.id))[0] == "Member"


async def test_undoing_restores_the_tier_and_hold_the_member_had_before(program: Program, clock: FrozenClock) -> None:
    # given Silver held until the end of 2026 from last year, then Gold reached this year
    member = await new_member("uid-base")
    silver = await Tier.get(name="Silver")
    await Member.filter(id=member.id).update(tier_id=silver.id, tier_held_until=Y2027)
    await purchase(member.id, "R1", 200_000, clock.now())
    assert await _standing(member.id) == ("Gold", Y2028)

    # when it goes back
    await _refund("R1", "F1", 200_000)

    # then Silver with the hold it had, not the entry tier
    assert await _standing(member.id) == ("Silver", Y2027)


async def test_an_upgrade_at_the_end_of_the_year_is_undone_by_a_return_in_january(
    program: Program, clock: FrozenClock
) -> None:
    # given Silver reached on 28 December
    member = await new_member("uid-december")
    clock.set(datetime(2026, 12, 28, 12, tzinfo=UTC))
    await purchase(member.id, "R1", 50_000, clock.now())

    # when it is returned on 5 January
    clock.set(datetime(2027, 1, 5, 12, tzinfo=UTC))
    await _refund("R1", "F1", 50_000)

    # then the upgrade goes
    assert (await _standing(member.id))[0] == "Member"


async def test_an_upgrade_earned_again_in_the_new_period_stays(program: Program, clock: FrozenClock) -> None:
    # given Silver on 28 December, and enough for Silver again on 3 January
    member = await new_member("uid-again")
    clock.set(datetime(2026, 12, 28, 12, tzinfo=UTC))
    await purchase(member.id, "R1", 50_000, clock.now())
    clock.set(datetime(2027, 1, 3, 12, tzinfo=UTC))
    await purchase(member.id, "R2", 60_000, clock.now())

    # when the December purchase is returned
    clock.set(datetime(2027, 1, 5, 12, tzinfo=UTC))
    await _refund("R1", "F1", 50_000)

    # then Silver stays, on this year's purchases
    assert await _standing(member.id) == ("Silver", Y2029)


async def test_a_manual_tier_stays_a_floor_when_an_upgrade_is_undone(program: Program, clock: FrozenClock) -> None:
    # given a manual Silver until 2029 and Gold reached by a purchase
    member = await new_member("uid-manual")
    silver = await Tier.get(name="Silver")
    await Member.filter(id=member.id).update(manual_tier_id=silver.id, manual_tier_until=Y2029)
    await purchase(member.id, "R1", 200_000, clock.now())

    # when it goes back
    await _refund("R1", "F1", 200_000)

    # then Silver until the manual end date
    assert await _standing(member.id) == ("Silver", Y2029)
