"""Earning rules: base rate, tier multiplier, campaigns, bonuses, exclusions and rounding."""

from __future__ import annotations

import tomllib
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from loyalty import purchases
from loyalty.clock import FrozenClock
from loyalty.earning import LinePoints, apply_earning_config
from loyalty.errors import InvalidInput
from loyalty.models import BonusRule, Campaign, Program, PurchaseLine
from loyalty.seeding import seed_from_config
from tests.loyalty.ledger_helpers import balances, configure, new_member
from tests.loyalty.purchase_helpers import buy, line, receipt, set_tier

DAY = timedelta(days=1)
MICRO = timedelta(microseconds=1)


async def test_base_points_are_floored_once_per_purchase_not_per_line(program: Program, clock: FrozenClock) -> None:
    # given two lines of 1.50 EUR (1 point per euro)
    member = await new_member("uid-earn")

    # when
    recorded = await buy(member.id, "R1", [line("A", 150), line("B", 150)])

    # then 3 points (per-line flooring would give 2), shared out so the lines add up to the purchase
    assert recorded.points == 3
    assert [lp.points for lp in recorded.breakdown.lines] == [1, 2]
    stored = await PurchaseLine.filter(purchase_id=recorded.purchase_id).order_by("line_no").values_list("points")
    assert stored == [(1,), (2,)]
    assert await balances(member.id) == (0, 3, 3)


async def test_tier_multiplier_applies_to_the_whole_purchase_then_floors(program: Program, clock: FrozenClock) -> None:
    # given a Silver member (1.25)
    member = await new_member("uid-earn")
    await set_tier(member, "Silver")

    # when 3.99 EUR is bought
    recorded = await buy(member.id, "R1", [line("A", 399)])

    # then floor(3.99 * 1.25) = floor(4.9875) = 4: base 3, tier extra 1
    breakdown = recorded.breakdown
    assert (breakdown.base, breakdown.tier_extra, breakdown.campaign_extra, breakdown.points) == (3, 1, 0, 4)
    assert breakdown.tier_multiplier == "1.25"


async def test_campaign_counts_from_its_start_up_to_but_not_including_its_end(
    program: Program, clock: FrozenClock
) -> None:
    # given a double-points campaign over one day that ended an hour ago
    member = await new_member("uid-earn")
    ends = clock.now() - timedelta(hours=1)
    starts = ends - DAY
    await Campaign.create(name="Double day", multiplier=Decimal(2), starts_at=starts, ends_at=ends)

    async def points_at(at: datetime) -> int:
        return (await purchases.preview_purchase(receipt(member.id, "R-preview", [line("A", 1_000)], at=at))).points

    # then
    assert await points_at(starts - MICRO) == 10
    assert await points_at(starts) == 20
    assert await points_at(ends - MICRO) == 20
    assert await points_at(ends) == 10


async def test_a_campaign_applies_by_the_purchase_time_not_the_time_it_is_recorded(
    program: Program, clock: FrozenClock
) -> None:
    # given a campaign that ended an hour ago, and a receipt from inside it sent late
    member = await new_member("uid-earn")
    await Campaign.create(
        name="Double day", multiplier=Decimal(2), starts_at=clock.now() - DAY, ends_at=clock.now() - timedelta(hours=1)
    )

    # when
    recorded = await buy(member.id, "R1", [line("A", 1_000)], at=clock.now() - timedelta(hours=2))

    # then
    assert (recorded.points, recorded.breakdown.campaign_extra, recorded.breakdown.campaigns) == (
        20,
        10,
        ["Double day"],
    )


async def test_tier_limited_campaign_applies_only_to_its_tiers(program: Program, clock: FrozenClock) -> None:
    # given a Gold-only triple-points campaign, a Member-tier and a Gold member
    await Campaign.create(
        name="Gold week",
        multiplier=Decimal(3),
        starts_at=clock.now() - DAY,
        ends_at=clock.now() + DAY,
        tier_names=["Gold"],
    )
    plain = await new_member("uid-plain")
    gold = await new_member("uid-gold")
    await set_tier(gold, "Gold")

    # when
    plain_points = (await buy(plain.id, "R1", [line("A", 1_000)])).breakdown
    gold_points = (await buy(gold.id, "R2", [line("A", 1_000)])).breakdown

    # then Member: 10; Gold: 10 * 1.5 * 3 = 45
    assert (plain_points.points, plain_points.campaigns) == (10, [])
    assert (gold_points.base, gold_points.tier_extra, gold_points.campaign_extra, gold_points.points) == (10, 5, 30, 45)
    assert gold_points.campaign_multiplier == "3"


async def test_campaign_multipliers_multiply_and_inactive_ones_do_not_count(
    program: Program, clock: FrozenClock
) -> None:
    # given x2 and x1.5 campaigns running and a switched-off x10 one
    window = {"starts_at": clock.now() - DAY, "ends_at": clock.now() + DAY}
    await Campaign.create(name="Double", multiplier=Decimal(2), **window)
    await Campaign.create(name="Half again", multiplier=Decimal("1.5"), **window)
    await Campaign.create(name="Off", multiplier=Decimal(10), active=False, **window)
    member = await new_member("uid-earn")

    # when
    recorded = await buy(member.id, "R1", [line("A", 1_000)])

    # then 10 * 2 * 1.5
    assert (recorded.points, recorded.breakdown.campaign_multiplier) == (30, "3")
    assert recorded.breakdown.campaigns == ["Double", "Half again"]


async def test_excluded_category_and_voided_lines_earn_nothing(program: Program, clock: FrozenClock) -> None:
    # given gift cards are excluded and a coffee bonus exists (it must not reach excluded or voided lines)
    await configure(excluded_categories=["giftcard"])
    await BonusRule.create(name="Any", match_type="sku", match_value="GC50", points_per_item=100)
    await BonusRule.create(name="Voided", match_type="sku", match_value="X", points_per_item=100)
    member = await new_member("uid-earn")

    # when a receipt has a 50 EUR gift card, a voided line and 12.00 EUR of goods
    recorded = await buy(
        member.id,
        "R1",
        [line("GC50", 5_000, category="giftcard"), line("X", 9_900, voided=True), line("A", 1_200)],
        total=6_200,
    )

    # then only the 12.00 EUR earn
    assert (recorded.points, recorded.breakdown.eligible_amount, recorded.breakdown.bonus) == (12, 1_200, 0)
    assert recorded.breakdown.lines == [
        LinePoints(line_no=1, excluded=True, voided=False, points=0, bonus=0),
        LinePoints(line_no=2, excluded=False, voided=True, points=0, bonus=0),
        LinePoints(line_no=3, excluded=False, voided=False, points=12, bonus=0),
    ]
    stored = await PurchaseLine.filter(purchase_id=recorded.purchase_id).order_by("line_no")
    assert [(x.excluded, x.voided, x.points) for x in stored] == [
        (True, False, 0),
        (False, True, 0),
        (False, False, 12),
    ]


async def test_bonus_per_item_and_extra_rate_are_flat_and_floored_per_line(
    program: Program, clock: FrozenClock
) -> None:
    # given 5 points per coffee item and 0.5 extra points per euro on SKU BEANS, for a Gold member (x1.5)
    await BonusRule.create(name="Coffee", match_type="category", match_value="coffee", points_per_item=5)
    await BonusRule.create(name="Beans", match_type="sku", match_value="BEANS", extra_rate=Decimal("0.5"))
    member = await new_member("uid-earn")
    await set_tier(member, "Gold")

    # when 3 coffees (9.00) and beans (3.99, also coffee) are bought
    recorded = await buy(
        member.id, "R1", [line("LATTE", 900, category="coffee", quantity=3), line("BEANS", 399, category="coffee")]
    )

    # then base floor(12.99 * 1.5) = 19; coffee 15 + 5; beans floor(3.99 * 0.5) = 1 (not multiplied by the tier)
    breakdown = recorded.breakdown
    assert (breakdown.base, breakdown.tier_extra, breakdown.bonus, breakdown.points) == (12, 7, 21, 40)
    assert breakdown.bonus_rules == ["Coffee", "Beans"]
    assert [(x.points, x.bonus) for x in breakdown.lines] == [(13 + 15, 15), (6 + 6, 6)]
    assert sum(x.points for x in breakdown.lines) == recorded.points


async def test_bonus_rules_outside_their_window_or_inactive_do_not_count(program: Program, clock: FrozenClock) -> None:
    # given a bonus that ended exactly now, one starting a second from now and an inactive one
    now = clock.now()
    await BonusRule.create(name="Ended", match_type="sku", match_value="A", points_per_item=7, ends_at=now)
    await BonusRule.create(
        name="Later", match_type="sku", match_value="A", points_per_item=7, starts_at=now + timedelta(seconds=1)
    )
    await BonusRule.create(name="Off", match_type="sku", match_value="A", points_per_item=7, active=False)
    await BonusRule.create(name="Open", match_type="sku", match_value="A", points_per_item=1, starts_at=now)
    member = await new_member("uid-earn")

    # when
    recorded = await buy(member.id, "R1", [line("A", 100)])

    # then only the rule that started exactly now counts
    assert (recorded.points, recorded.breakdown.bonus_rules) == (2, ["Open"])


async def test_a_fractional_earn_rate_floors_the_purchase_once(program: Program, clock: FrozenClock) -> None:
    # given 0.1 points per euro
    await configure(earn_rate=0.1)
    member = await new_member("uid-earn")

    # when 19.99 EUR in three lines is bought
    recorded = await buy(member.id, "R1", [line("A", 999), line("B", 500), line("C", 500)])

    # then floor(1.999) = 1, carried by the line where the running sum crosses 1
    assert recorded.points == 1
    assert [x.points for x in recorded.breakdown.lines] == [0, 1, 0]


async def test_the_demo_program_seeds_exclusions_birthday_points_campaigns_and_bonuses_once(
    db: str, clock: FrozenClock
) -> None:
    config = tomllib.loads((Path(__file__).parents[2] / "demo" / "program.toml").read_text())

    await seed_from_config(config)
    await seed_from_config(config)  # seeding again updates, never duplicates

    program = await Program.get()
    assert (program.excluded_categories, program.birthday_points) == (["giftcard", "deposit"], 200)
    campaigns = await Campaign.all().order_by("id").values_list("name", "multiplier", "tier_names", "ends_at")
    assert campaigns == [
        ("Double points week", Decimal(2), [], clock.now() + 7 * DAY),
        ("Gold weekend: 50% more", Decimal("1.5"), ["Gold"], clock.now() + 3 * DAY),
    ]
    rules = await BonusRule.all().values_list("match_type", "match_value", "points_per_item", "ends_at")
    assert rules == [("category", "coffee-beans", 10, None)]


@pytest.mark.parametrize(
    ("campaigns", "bonus_rules", "field"),
    [
        ([{"name": "X", "multiplier": 0}], [], "multiplier"),
        ([{"multiplier": 2}], [], "name"),
        ([], [{"name": "B", "match_type": "brand", "match_value": "acme"}], "match_type"),
    ],
)
async def test_bad_earning_config_is_refused(
    program: Program, campaigns: list[dict[str, object]], bonus_rules: list[dict[str, object]], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await apply_earning_config(campaigns, bonus_rules)
    assert refused.value.field == field
    assert (await Campaign.all().count(), await BonusRule.all().count()) == (0, 0)
