"""The demo data: members in every state a demo needs, made by the real services under a controlled clock."""

from __future__ import annotations

import copy
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loyalty.clock import FrozenClock
from loyalty.errors import DomainError
from loyalty.models import Member, Offer, Purchase, PurchaseLine, Reward, StampCard
from loyalty.seeding import DemoMember, demo_members, seed_from_config, seed_members

DEMO = tomllib.loads((Path(__file__).parents[2] / "demo" / "program.toml").read_text())


async def test_the_demo_members_show_every_state_as_the_rules_make_them(db: str, clock: FrozenClock) -> None:
    # When the demo program is seeded (twice: the second time changes nothing)
    await seed_from_config(DEMO)
    await seed_from_config(DEMO)

    # Then each member shows their states, as of now
    shown = {m.email: m for m in await demo_members()}
    assert {email: (m.tier, m.stage, m.points_available, m.points_pending) for email, m in shown.items()} == {
        "anna@example.com": ("Gold", "active", 1935, 45),
        "bo@example.com": ("Silver", "lapsing", 675, 0),
        "cecilia@example.com": ("Member", "new", 0, 35),
        "david@example.com": ("Member", "lapsed", 31, 0),
        "eva@example.com": ("Member", "active", 18, 12),
    }
    assert {email: (m.vouchers, m.activated_offers, m.stamp_cards) for email, m in shown.items()} == {
        "anna@example.com": (
            {"active": 1, "expired": 1, "redeemed": 1},
            ["Gold preview: 20% off the new season"],
            ["Coffee card 2/8"],
        ),
        "bo@example.com": ({"redeemed": 1}, [], ["Coffee card 1/8"]),
        "cecilia@example.com": ({}, [], ["Coffee card 2/8"]),
        "david@example.com": ({"expired": 1}, [], ["Coffee card 1/8"]),
        "eva@example.com": ({"active": 1}, ["10% off your next visit"], ["Coffee card 4/8"]),
    }
    assert shown["eva@example.com"].describe() == (
        "Member, active; 18 points available, 12 pending; vouchers: 1 active; "
        "activated: 10% off your next visit; stamps: Coffee card 4/8"
    )
    assert await Purchase.filter(store_code="DEMO").count() == 10


@pytest.mark.parametrize(
    "seeded_at",
    [
        datetime(2026, 1, 2, 8, 0, tzinfo=UTC),  # just after a tier period starts
        datetime(2026, 12, 31, 22, 30, tzinfo=UTC),  # just before one ends (Stockholm: the next year)
        datetime(2027, 7, 15, 12, 0, tzinfo=UTC),
    ],
)
async def test_every_state_a_demo_needs_is_there_whatever_the_date(
    db: str, clock: FrozenClock, seeded_at: datetime
) -> None:
    clock.set(seeded_at)

    await seed_from_config(DEMO)
    shown = await demo_members()

    assert _states(shown) >= {
        "points available", "points pending",
        "stage new", "stage active", "stage lapsing", "stage lapsed",
        "tier Member", "tier Silver", "tier Gold",
        "voucher active", "voucher redeemed", "voucher expired",
        "an activated offer", "a stamp card half full",
    }  # fmt: skip


def _states(members: list[DemoMember]) -> set[str]:
    states = set()
    for m in members:
        states |= {f"tier {m.tier}", f"stage {m.stage}", *(f"voucher {status}" for status in m.vouchers)}
        if m.points_available:
            states.add("points available")
        if m.points_pending:
            states.add("points pending")
        if m.activated_offers:
            states.add("an activated offer")
        if any(card.endswith(" 4/8") for card in m.stamp_cards):
            states.add("a stamp card half full")
    return states


async def test_the_skus_match_between_rewards_offers_stamp_cards_and_purchases(db: str, clock: FrozenClock) -> None:
    await seed_from_config(DEMO)

    bought = set(await PurchaseLine.all().values_list("sku", flat=True))
    categories = set(await PurchaseLine.all().values_list("category", flat=True))
    rewards = {r.sku for r in await Reward.filter(sku__not_isnull=True)}
    offers = {o.sku for o in await Offer.filter(sku__not_isnull=True)}
    cards = {c.match_category for c in await StampCard.all()}

    assert rewards == offers == {"COFFEE"}
    assert rewards <= bought
    assert cards <= categories
    assert "coffee-beans" in categories  # the bonus rule's category


@pytest.mark.parametrize(
    ("story", "message"),
    [
        ({"enrolled_days_ago": -1}, "days_ago must be a whole number of days"),
        ({"enrolled_days_ago": 5, "steps": [{"days_ago": 6, "reward": "Free coffee"}]}, "a step before the enrolment"),
        ({"steps": [{"days_ago": 0}]}, "a step does one of purchase, reward, redeem_voucher, activate"),
        ({"steps": [{"days_ago": 0, "purchase": [["X", "", 1]]}]}, "a line is [sku, category, quantity, amount]"),
        ({"steps": [{"days_ago": 0, "reward": "No such reward"}]}, "no reward named 'No such reward'"),
        ({"steps": [{"days_ago": 0, "reward": "Free coffee"}]}, "2026-03-02: this reward costs 25 points; 0 are"),
    ],
)
async def test_a_malformed_story_is_refused_naming_the_member(
    db: str, clock: FrozenClock, story: dict[str, Any], message: str
) -> None:
    config = copy.deepcopy(DEMO)
    config["members"] = []
    await seed_from_config(config)

    with pytest.raises(DomainError) as refused:
        await seed_members([{"email": "zoe@example.com", "name": "Zoe", **story}])

    assert "demo member 'zoe@example.com'" in refused.value.message
    assert message in refused.value.message
    assert refused.value.code == ("INSUFFICIENT_POINTS" if "points" in message else "INVALID")
    if "points" not in message:  # found before anything was written
        assert await Member.all().count() == 0
