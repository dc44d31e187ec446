"""Offers in the domain: targeting and its edges, ranking, activation and redemption at the checkout."""

from __future__ import annotations

import asyncio
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loyalty import offers
from loyalty.actors import Actor, Forbidden
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, DuplicateIdempotencyKey, InvalidInput, MemberNotFound
from loyalty.models import (
    AuditLog,
    EntryKind,
    IdempotencyRecord,
    LedgerEntry,
    Member,
    Offer,
    OfferActivation,
    OfferBenefit,
    OfferRedemption,
    OutboxEvent,
    Program,
    StaffRole,
    Tier,
)
from loyalty.seeding import seed_from_config
from tests.conftest import START
from tests.loyalty.ledger_helpers import balances, new_member, purchase

CASHIER = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass")


async def new_offer(**fields: Any) -> Offer:
    """A running, untargeted bonus-points offer (once per member) unless `fields` say otherwise."""
    values: dict[str, Any] = {
        "name": "Offer",
        "benefit": OfferBenefit.BONUS_POINTS,
        "value": 100,
        "valid_from": START - timedelta(days=1),
        "valid_until": START + timedelta(days=30),
        **fields,
    }
    return await Offer.create(**values)


async def set_member(member: Member, **fields: Any) -> Member:
    await Member.filter(id=member.id).update(**fields)
    return await Member.get(id=member.id)


async def in_tier(member: Member, name: str) -> Member:
    return await set_member(member, tier_id=(await Tier.get(name=name)).id)


async def offer_names(member: Member, at: datetime = START) -> list[str]:
    return [item.offer.name for item in await offers.offers_for(await Member.get(id=member.id), at)]


async def written() -> dict[str, int]:
    """What a refused operation must not have written."""
    return {
        "redemptions": await OfferRedemption.all().count(),
        "activations": await OfferActivation.all().count(),
        "entries": await LedgerEntry.all().count(),
        "audit": await AuditLog.all().count(),
        "events": await OutboxEvent.filter(type__startswith="offer.").count(),
        "idempotency": await IdempotencyRecord.all().count(),
    }


async def redeem(member: Member, offer: Offer, key: str = "k1", **fields: Any) -> offers.OfferRedemptionResult:
    values: dict[str, Any] = {"store_code": "S1", "purchase_total": None, "idempotency_key": key, **fields}
    return await offers.redeem_offer(CASHIER, member_id=member.id, offer_id=offer.id, **values)


@pytest.fixture
async def anna(program: Program) -> Member:
    return await new_member("uid-anna")


@pytest.fixture
async def bo(program: Program) -> Member:
    return await new_member("uid-bo")


# --- targeting ------------------------------------------------------------------------------------


async def test_an_untargeted_running_offer_applies_to_every_member(anna: Member, bo: Member) -> None:
    await new_offer(name="For all")

    assert await offer_names(anna) == ["For all"]
    assert await offer_names(bo) == ["For all"]


async def test_validity_window_includes_its_start_and_excludes_its_end(anna: Member) -> None:
    await new_offer(name="Window", valid_from=START, valid_until=START + timedelta(days=1))

    assert await offer_names(anna, START - timedelta(microseconds=1)) == []
    assert await offer_names(anna, START) == ["Window"]
    assert await offer_names(anna, START + timedelta(days=1, microseconds=-1)) == ["Window"]
    assert await offer_names(anna, START + timedelta(days=1)) == []


async def test_an_inactive_offer_applies_to_nobody(anna: Member) -> None:
    await new_offer(name="Paused", active=False)

    assert await offer_names(anna) == []


async def test_tier_names_target_exactly_those_tiers(anna: Member, bo: Member) -> None:
    await new_offer(name="Silver only", tier_names=["Silver"])
    await in_tier(bo, "Silver")

    assert await offer_names(anna) == []
    assert await offer_names(bo) == ["Silver only"]


async def test_min_tier_rank_gives_early_access_to_that_tier_and_above(anna: Member, bo: Member) -> None:
    await new_offer(name="Early access", min_tier_rank=1)

    assert await offer_names(anna) == []
    await in_tier(anna, "Silver")
    await in_tier(bo, "Gold")
    assert await offer_names(anna) == ["Early access"]
    assert await offer_names(bo) == ["Early access"]


async def test_lifecycle_stages_target_members_in_those_stages(anna: Member, bo: Member) -> None:
    # Given a win-back offer for lapsed members; Anna enrolled 180 days ago and never bought, Bo just enrolled
    await new_offer(name="Come back", lifecycle_stages=["lapsed"])
    await set_member(anna, created_at=START - timedelta(days=180))

    assert await offer_names(anna) == ["Come back"]
    assert await offer_names(bo) == []
    # ... and a purchase a day before the lapsed threshold makes Anna lapsing, not lapsed
    await set_member(anna, last_purchase_at=START - timedelta(days=179))
    assert await offer_names(anna) == []


async def test_a_purchase_brings_a_lapsing_member_back_to_active(anna: Member) -> None:
    # Given Anna enrolled 100 days ago and never bought: lapsing, so she gets the win-back offer
    await new_offer(name="We miss you", lifecycle_stages=["lapsing"])
    await new_offer(name="Thanks for shopping", lifecycle_stages=["active"])
    await set_member(anna, created_at=START - timedelta(days=100))
    assert await offer_names(anna) == ["We miss you"]

    # When she buys something
    await purchase(anna.id, "R1", 1_000, START)

    # Then she is active again and sees the offer for active members instead
    assert await offer_names(anna) == ["Thanks for shopping"]


async def test_birthday_month_is_the_members_month_in_their_timezone(anna: Member, bo: Member) -> None:
    # Given a birthday offer; both are born in March, Anna lives in Stockholm (UTC+1 in winter), Bo in UTC
    await new_offer(name="Happy birthday", birthday_month=True, valid_from=START - timedelta(days=60))
    await set_member(anna, birthday=date(1990, 3, 15), timezone="Europe/Stockholm")
    await set_member(bo, birthday=date(1985, 3, 31), timezone="UTC")
    last_of_february_utc = datetime(2026, 2, 28, 23, 30, tzinfo=UTC)  # already 1 March in Stockholm

    assert await offer_names(anna, last_of_february_utc) == ["Happy birthday"]
    assert await offer_names(bo, last_of_february_utc) == []
    assert await offer_names(bo, datetime(2026, 3, 1, 0, 0, tzinfo=UTC)) == ["Happy birthday"]


async def test_birthday_month_excludes_members_without_a_birthday(anna: Member) -> None:
    await new_offer(name="Happy birthday", birthday_month=True)

    assert await offer_names(anna) == []


async def test_interests_need_one_shared_interest_in_any_case(anna: Member, bo: Member) -> None:
    await new_offer(name="Coffee lovers", interests=["Coffee", "Tea"])
    await set_member(anna, interests=["books", "coffee"])
    await set_member(bo, interests=["running"])

    assert await offer_names(anna) == ["Coffee lovers"]
    assert await offer_names(bo) == []


async def test_every_targeting_rule_must_hold(anna: Member) -> None:
    await new_offer(name="Narrow", tier_names=["Silver"], interests=["coffee"])
    await set_member(anna, interests=["coffee"])

    assert await offer_names(anna) == []
    await in_tier(anna, "Silver")
    assert await offer_names(anna) == ["Narrow"]


async def test_min_spend_is_shown_on_the_offer_not_targeting(anna: Member) -> None:
    await new_offer(name="Spend 50", min_spend=5_000)

    [item] = await offers.offers_for(anna, START)

    assert (item.offer.name, item.offer.min_spend) == ("Spend 50", 5_000)


async def test_an_offer_disappears_once_the_member_used_it_up(anna: Member, bo: Member) -> None:
    offer = await new_offer(name="Twice", per_member_limit=2)
    uses = [[i.remaining_uses for i in await offers.offers_for(anna, START)]]

    await redeem(anna, offer, "k1")
    uses.append([i.remaining_uses for i in await offers.offers_for(anna, START)])
    await redeem(anna, offer, "k2")
    uses.append([i.remaining_uses for i in await offers.offers_for(anna, START)])

    assert uses == [[2], [1], []]
    # Anna's uses are hers alone
    assert [i.remaining_uses for i in await offers.offers_for(bo, START)] == [2]


# --- ranking --------------------------------------------------------------------------------------


async def test_most_relevant_first_activated_then_priority_then_ending_soonest_then_id(
    anna: Member, bo: Member
) -> None:
    # Given offers of every ordering criterion, one of which Anna activated
    await new_offer(name="low priority", priority=0)
    await new_offer(name="ends later", priority=5, valid_until=START + timedelta(days=20))
    await new_offer(name="ends sooner", priority=5, valid_until=START + timedelta(days=10))
    await new_offer(name="ends sooner, newer", priority=5, valid_until=START + timedelta(days=10))
    await new_offer(name="high priority", priority=9)
    clipped = await new_offer(name="activated", priority=-1, requires_activation=True)
    await offers.activate_offer(anna.id, clipped.id)

    # Then Anna sees her activated offer first; Bo, who activated nothing, sees it by priority
    assert await offer_names(anna) == [
        "activated",
        "high priority",
        "ends sooner",
        "ends sooner, newer",
        "ends later",
        "low priority",
    ]
    assert (await offer_names(bo))[0] == "high priority"
    assert (await offer_names(bo))[-1] == "activated"


# --- activation -----------------------------------------------------------------------------------


async def test_activating_an_offer_records_it_once_and_emits_an_event(anna: Member, clock: FrozenClock) -> None:
    offer = await new_offer(name="Clip me", requires_activation=True)

    first = await offers.activate_offer(anna.id, offer.id)
    clock.advance(timedelta(minutes=5))
    again = await offers.activate_offer(anna.id, offer.id)

    assert (first.activated, first.remaining_uses) == (True, 1)
    assert (again.offer.id, again.activated, again.remaining_uses) == (offer.id, True, 1)
    activation = await OfferActivation.get(member_id=anna.id, offer_id=offer.id)
    assert activation.activated_at == START
    assert await OfferActivation.all().count() == 1
    events = await OutboxEvent.filter(type="offer.activated").values_list("member_id", "payload")
    assert events == [(anna.id, {"type": "offer.activated", "member_id": anna.id, "offer_id": offer.id})]


@pytest.mark.parametrize("case", ["missing", "other tier", "expired", "used up"])
async def test_only_an_offer_that_applies_now_can_be_activated(anna: Member, clock: FrozenClock, case: str) -> None:
    offer = await new_offer(name="Gold only", tier_names=["Gold"], requires_activation=True)
    if case == "missing":
        offer.id = 999_999
    elif case == "expired":
        await Offer.filter(id=offer.id).update(tier_names=[], valid_until=START)
    elif case == "used up":
        await Offer.filter(id=offer.id).update(tier_names=[], requires_activation=False)
        await redeem(anna, offer)
    before = await written()

    with pytest.raises(offers.OfferNotFound) as refused:
        await offers.activate_offer(anna.id, offer.id)

    assert (refused.value.code, refused.value.field) == ("OFFER_NOT_FOUND", "offer_id")
    assert await written() == before


@pytest.mark.postgres_only
async def test_concurrent_activations_of_one_offer_activate_it_once(anna: Member) -> None:
    offer = await new_offer(requires_activation=True)

    results = await asyncio.gather(*(offers.activate_offer(anna.id, offer.id) for _ in range(8)))

    assert [r.activated for r in results] == [True] * 8
    assert await OfferActivation.filter(offer_id=offer.id).count() == 1
    assert await OutboxEvent.filter(type="offer.activated").count() == 1


# --- redemption -----------------------------------------------------------------------------------


async def test_a_bonus_points_offer_credits_points_in_the_same_transaction(anna: Member) -> None:
    offer = await new_offer(name="Double up", value=250)

    result = await redeem(anna, offer, purchase_total=1_000)

    assert (result.benefit, result.points_credited, result.points_balance, result.discount) == (
        OfferBenefit.BONUS_POINTS,
        250,
        250,
        None,
    )
    assert (result.remaining_uses, result.redeemed_at, result.store_code) == (0, START, "S1")
    assert await balances(anna.id) == (250, 0, 250)
    entry = await LedgerEntry.get(member_id=anna.id)
    assert (entry.kind, entry.delta_available, entry.description) == (EntryKind.ADJUSTMENT, 250, "Offer: Double up")
    redemption = await OfferRedemption.get(id=result.redemption_id)
    assert (redemption.member_id, redemption.offer_id, redemption.store_code) == (anna.id, offer.id, "S1")
    audit = await AuditLog.get()
    assert (audit.actor_id, audit.action, audit.store_code, audit.member_id, audit.target) == (
        1,
        "offer.redeem",
        "S1",
        anna.id,
        f"offer:{offer.id}",
    )
    assert audit.before == {"uses": 0, "points_available": 0}
    assert audit.after == {"uses": 1, "points_available": 250, "redemption_id": result.redemption_id}
    assert await OutboxEvent.filter(type="offer.redeemed").values_list("payload", flat=True) == [
        {
            "type": "offer.redeemed",
            "member_id": anna.id,
            "offer_id": offer.id,
            "redemption_id": result.redemption_id,
            "store_code": "S1",
            "benefit": "bonus_points",
            "points": 250,
        }
    ]


@pytest.mark.parametrize(
    ("benefit", "value", "sku", "total", "expected"),
    [
        (OfferBenefit.AMOUNT_OFF, 500, None, 2_000, (500, None, None)),
        (OfferBenefit.AMOUNT_OFF, 500, None, 300, (300, None, None)),  # never more than the purchase
        (OfferBenefit.AMOUNT_OFF, 500, None, None, (500, None, None)),
        (OfferBenefit.PERCENT_OFF, 15, None, 1_999, (299, 15, None)),  # 299.85 floored
        (OfferBenefit.PERCENT_OFF, 15, None, None, (None, 15, None)),
        (OfferBenefit.FREE_ITEM, 0, "SKU-COFFEE", 100, (None, None, "SKU-COFFEE")),
    ],
)
async def test_other_benefits_tell_the_till_what_to_apply(
    anna: Member,
    benefit: OfferBenefit,
    value: int,
    sku: str | None,
    total: int | None,
    expected: tuple[int | None, int | None, str | None],
) -> None:
    offer = await new_offer(benefit=benefit, value=value, sku=sku)

    result = await redeem(anna, offer, purchase_total=total)

    assert (result.discount, result.percent_off, result.free_item_sku) == expected
    assert (result.points_credited, result.benefit) == (0, benefit)
    assert await LedgerEntry.all().count() == 0
    assert await OfferRedemption.all().count() == 1


async def test_an_offer_that_needs_activation_is_redeemable_once_activated(anna: Member) -> None:
    offer = await new_offer(requires_activation=True)
    before = await written()

    with pytest.raises(offers.NotActivated) as refused:
        await redeem(anna, offer)

    assert (refused.value.code, refused.value.field) == ("NOT_ACTIVATED", "offer_id")
    assert await written() == before
    await offers.activate_offer(anna.id, offer.id)
    assert (await redeem(anna, offer)).activated is True


@pytest.mark.parametrize("total", [None, 4_999])
async def test_a_purchase_below_min_spend_is_refused(anna: Member, total: int | None) -> None:
    offer = await new_offer(min_spend=5_000)
    before = await written()

    with pytest.raises(offers.MinSpendNotMet) as refused:
        await redeem(anna, offer, purchase_total=total)

    assert (refused.value.code, refused.value.field) == ("MIN_SPEND_NOT_MET", "purchase_total")
    assert await written() == before


async def test_a_purchase_of_exactly_min_spend_qualifies(anna: Member) -> None:
    offer = await new_offer(min_spend=5_000)

    assert (await redeem(anna, offer, purchase_total=5_000)).points_credited == 100


async def test_the_per_member_limit_is_enforced(anna: Member) -> None:
    offer = await new_offer()
    await redeem(anna, offer, "k1")
    before = await written()

    with pytest.raises(offers.OfferLimitReached) as refused:
        await redeem(anna, offer, "k2")

    assert refused.value.code == "OFFER_LIMIT_REACHED"
    assert await written() == before


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"tier_names": ["Gold"]}, offers.OfferNotApplicable),
        ({"valid_until": START}, offers.OfferNotApplicable),
        ({"valid_from": START + timedelta(seconds=1)}, offers.OfferNotApplicable),
        ({"active": False}, offers.OfferNotApplicable),
    ],
)
async def test_an_offer_that_does_not_apply_now_is_refused_at_the_till(
    anna: Member, fields: dict[str, Any], error: type[DomainError]
) -> None:
    offer = await new_offer(**fields)
    before = await written()

    with pytest.raises(error) as refused:
        await redeem(anna, offer)

    assert (refused.value.code, refused.value.field) == ("OFFER_NOT_APPLICABLE", "offer_id")
    assert await written() == before


async def test_unknown_offer_and_unknown_member_are_refused(anna: Member) -> None:
    offer = await new_offer()
    before = await written()

    with pytest.raises(offers.OfferNotFound):
        await offers.redeem_offer(
            CASHIER, member_id=anna.id, offer_id=999_999, store_code="S1", purchase_total=None, idempotency_key="k"
        )
    with pytest.raises(MemberNotFound):
        await offers.redeem_offer(
            CASHIER, member_id=999_999, offer_id=offer.id, store_code="S1", purchase_total=None, idempotency_key="k"
        )

    assert await written() == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"store_code": ""}, "store_code"),
        ({"store_code": "S" * 33}, "store_code"),
        ({"purchase_total": -1}, "purchase_total"),
        ({"purchase_total": True}, "purchase_total"),
        ({"idempotency_key": "  "}, "idempotency_key"),
        ({"idempotency_key": "k" * 200}, "idempotency_key"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(anna: Member, fields: dict[str, Any], field: str) -> None:
    offer = await new_offer()
    actor = Actor(kind="staff", id=2, role=StaffRole.MANAGER)  # any store, so the store code itself is judged
    values: dict[str, Any] = {"store_code": "S1", "purchase_total": None, "idempotency_key": "k1", **fields}
    before = await written()

    with pytest.raises(InvalidInput) as refused:
        await offers.redeem_offer(actor, member_id=anna.id, offer_id=offer.id, **values)

    assert (refused.value.code, refused.value.field) == ("INVALID", field)
    assert await written() == before


async def test_a_cashier_cannot_redeem_in_another_store(anna: Member) -> None:
    offer = await new_offer()
    before = await written()

    with pytest.raises(Forbidden):
        await redeem(anna, offer, store_code="S2")

    assert await written() == before


async def test_a_retry_with_the_same_key_replays_the_first_redemption(anna: Member, clock: FrozenClock) -> None:
    offer = await new_offer(value=100, per_member_limit=3)
    first = await redeem(anna, offer, "till-1", purchase_total=1_000)
    clock.advance(timedelta(minutes=1))

    again = await redeem(anna, offer, "till-1", purchase_total=1_000)

    assert again == first
    assert await OfferRedemption.all().count() == 1
    assert await balances(anna.id) == (100, 0, 100)
    with pytest.raises(DuplicateIdempotencyKey):
        await redeem(anna, offer, "till-1", purchase_total=2_000)


@pytest.mark.postgres_only
async def test_ten_concurrent_redemptions_of_a_once_per_member_offer_succeed_once(anna: Member) -> None:
    offer = await new_offer(value=100)

    results = await asyncio.gather(*(redeem(anna, offer, f"till-{i}") for i in range(10)), return_exceptions=True)

    assert sum(isinstance(r, offers.OfferRedemptionResult) for r in results) == 1
    assert sum(isinstance(r, offers.OfferLimitReached) for r in results) == 9
    assert await OfferRedemption.filter(member_id=anna.id).count() == 1
    assert await balances(anna.id) == (100, 0, 100)
    assert await AuditLog.all().count() == 1


# --- configuration --------------------------------------------------------------------------------


async def test_the_demo_program_seeds_an_offer_for_each_lifecycle_stage_once(db: str) -> None:
    config = tomllib.loads((Path(__file__).parents[2] / "demo" / "program.toml").read_text())

    await seed_from_config(config)
    await seed_from_config(config)  # seeding again updates, never duplicates

    seeded = await Offer.all().order_by("id")
    assert len(seeded) == 5
    assert sorted(stage for offer in seeded for stage in offer.lifecycle_stages) == [
        "active",
        "lapsed",
        "lapsing",
        "new",
    ]
    assert [o.min_tier_rank for o in seeded if not o.lifecycle_stages] == [2]
    assert all(o.valid_from == START and o.valid_until > START for o in seeded)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"benefit": "free_lunch"}, "offers"),
        ({"benefit": "amount_off", "value": 500, "lifecycle_stages": ["dormant"]}, "offers"),
        ({"benefit": "bonus_points", "value": 0}, "value"),
        ({"name": "", "benefit": "amount_off"}, "name"),
    ],
)
async def test_bad_offer_config_is_refused(db: str, spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await offers.apply_offer_config([{"name": "Bad", **spec}])

    assert refused.value.field == field
    assert await Offer.all().count() == 0
