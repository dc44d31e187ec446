"""Paid membership benefits where they apply (earning, offers, rewards), gone at lapse before any job ran; the
payment path under real concurrency (PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from loyalty import jobs, rewards
from loyalty.clock import FrozenClock
from loyalty.earning import ActiveRules, LineInput, compute_points
from loyalty.memberships import PaymentRecorded
from loyalty.models import (
    Member,
    Membership,
    MembershipPayment,
    MembershipStatus,
    Offer,
    OfferBenefit,
    OutboxEvent,
    Program,
    Reward,
    RewardKind,
    Tier,
)
from loyalty.offers import OfferNotFound, activate_offer, offers_for
from loyalty.purchases import PurchaseRequest, preview_purchase
from tests.conftest import START
from tests.loyalty.ledger_helpers import give_available, new_member, purchase
from tests.loyalty.membership_helpers import PLUS, PREMIUM, YEARLY, pay, plans


@pytest.fixture
async def anna(program: Program) -> Member:
    return await new_member("anna")


def test_the_membership_multiplier_multiplies_with_tier_and_campaign() -> None:
    # given a 1.25 tier, a plan at 2 and a campaign at 1.5, on 33.33 EUR at 1 point per euro
    program = Program(earn_rate=Decimal(1), currency_exponent=2, excluded_categories=[])
    tier = Tier(name="Silver", rank=1, multiplier=Decimal("1.25"))
    campaign = type("C", (), {"name": "Double", "multiplier": Decimal("1.5"), "tier_names": []})()
    lines = [LineInput(sku="A", category="", quantity=1, amount=3333)]

    # when the points are computed
    breakdown = compute_points(program, tier, lines, ActiveRules([campaign], []), Decimal(2))  # type: ignore[list-item]

    # then floor(33.33 * 1.25 * 2 * 1.5) = 124: base 33, tier 41 - 33 = 8, membership 83 - 41 = 42, campaign 41
    assert (breakdown.points, breakdown.base, breakdown.tier_extra, breakdown.membership_extra) == (124, 33, 8, 42)
    assert (breakdown.campaign_extra, breakdown.membership_multiplier, breakdown.tier_multiplier) == (41, "2", "1.25")


async def test_a_paid_member_earns_at_the_plan_multiplier_until_the_benefits_end(
    anna: Member, clock: FrozenClock
) -> None:
    # given a Plus membership (x2) paid now
    await plans()
    await pay(clock, anna.id, "p1")
    end = (await Membership.get(member_id=anna.id)).grace_until
    assert end is not None

    # when the member buys for 50.00 EUR, and the till previews the same
    recorded = await purchase(anna.id, "R1", 5000, clock.now())
    request = PurchaseRequest(
        anna.id, "S1", "R2", clock.now(), "EUR", 5000, (LineInput(sku="ITEM", category="", quantity=1, amount=5000),)
    )
    preview = await preview_purchase(request)

    # then 100 points (50 base, 50 from the membership), both ways
    assert (recorded.points, recorded.breakdown.membership_extra, recorded.breakdown.membership_multiplier) == (
        100,
        50,
        "2",
    )
    assert (preview.points, preview.membership_extra) == (100, 50)
    # and a second before the grace ends still x2; at its end x1, before the lapse job ran
    clock.set(end - timedelta(seconds=1))
    assert (await purchase(anna.id, "R3", 5000, clock.now())).points == 100
    clock.set(end)
    assert (await Membership.get(member_id=anna.id)).status == MembershipStatus.ACTIVE  # the job has not run
    assert (await purchase(anna.id, "R4", 5000, clock.now())).points == 50
    assert (await preview_purchase(request)).membership_multiplier == "1"


async def test_offers_for_paid_members_follow_the_membership(anna: Member, clock: FrozenClock) -> None:
    # given an offer included in Premium, an early-access offer for rank 1 and an offer for everyone
    for name, rank in (("Premium lounge", None), ("Early sale", 1), ("For all", None)):
        await Offer.create(
            name=name,
            benefit=OfferBenefit.BONUS_POINTS,
            value=10,
            valid_from=START - timedelta(days=1),
            valid_until=START + timedelta(days=90),
            min_membership_rank=rank,
        )
    await plans(PLUS, YEARLY, {**PREMIUM, "included_offers": ["Premium lounge"]})
    lounge = await Offer.get(name="Premium lounge")

    async def names() -> list[str]:
        return sorted(o.offer.name for o in await offers_for(await Member.get(id=anna.id), clock.now()))

    # then without a membership only the offer for all; the included one cannot be activated
    assert await names() == ["For all"]
    with pytest.raises(OfferNotFound):
        await activate_offer(anna.id, lounge.id)
    # with Plus (rank 1) the early sale too; with Premium the lounge as well
    await pay(clock, anna.id, "p1")
    assert await names() == ["Early sale", "For all"]
    await pay(clock, anna.id, "p2", plan="PREMIUM", amount=9900)
    assert await names() == ["Early sale", "For all", "Premium lounge"]
    assert (await activate_offer(anna.id, lounge.id)).activated
    # and once the benefits end, before the job, only the offer for all again
    membership = await Membership.get(member_id=anna.id)
    assert membership.grace_until is not None
    clock.set(membership.grace_until)
    assert await names() == ["For all"]


async def test_rewards_for_paid_members_need_the_rank(anna: Member, clock: FrozenClock) -> None:
    # given a reward for members whose plan ranks 2 or more, and enough points
    await plans()
    await give_available(anna.id, 1_000)
    lounge = await Reward.create(name="Lounge", kind=RewardKind.EXPERIENCE, points_cost=100, min_membership_rank=2)
    program = await Program.get()
    await program.fetch_related("tiers")

    async def reason() -> rewards.Unavailable | None:
        member = await Member.get(id=anna.id)
        return (await rewards.catalog_items(member, program, clock.now(), [lounge.id]))[lounge.id].unavailable

    # then without a membership, and with Plus (rank 1), it is MEMBERSHIP_REQUIRED and redeeming is refused
    assert await reason() == rewards.Unavailable.MEMBERSHIP_REQUIRED
    await pay(clock, anna.id, "p1")
    assert await reason() == rewards.Unavailable.MEMBERSHIP_REQUIRED
    with pytest.raises(rewards.MembershipRequired) as refused:
        await rewards.redeem_reward(anna.id, lounge.id, idempotency_key="k1")
    assert (refused.value.code, refused.value.field) == ("MEMBERSHIP_REQUIRED", "reward_id")
    assert (await Member.get(id=anna.id)).points_available == 1_000
    # with Premium (rank 2) it can be redeemed
    await pay(clock, anna.id, "p2", plan="PREMIUM", amount=9900)
    assert await reason() is None
    await rewards.redeem_reward(anna.id, lounge.id, idempotency_key="k2")
    assert (await Member.get(id=anna.id)).points_available == 900


# --- concurrency (PostgreSQL) ---------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_the_same_payment_reported_ten_times_at_once_has_one_effect(anna: Member, clock: FrozenClock) -> None:
    # given a plan
    await plans()

    # when the payment system sends the same notification ten times at once
    results = await asyncio.gather(*(pay(clock, anna.id, "p1") for _ in range(10)))

    # then one membership, one payment, one event, and every answer the first one
    assert all(isinstance(r, PaymentRecorded) for r in results)
    assert len({r.payment_record_id for r in results}) == 1
    assert await Membership.all().count() == 1
    assert await MembershipPayment.all().count() == 1
    assert await OutboxEvent.filter(type__startswith="membership.").count() == 1


@pytest.mark.postgres_only
async def test_renewals_and_the_lapse_job_at_once_leave_a_consistent_state(
    clock: FrozenClock, program: Program
) -> None:
    # given 10 members whose period ended just now (the job would move them to grace)
    await plans()
    members = [await new_member(f"m{n}") for n in range(10)]
    for member in members:
        await pay(clock, member.id, f"first-{member.id}")
    period_end = (await Membership.get(member_id=members[0].id)).period_end
    clock.set(period_end)

    # when every member's renewal arrives while the job runs
    outcome = await asyncio.gather(
        jobs.lapse_memberships(), *(pay(clock, m.id, f"renew-{m.id}") for m in members), jobs.lapse_memberships()
    )

    # then every membership is active for the next period, whichever came first
    rows = await Membership.all().order_by("member_id")
    assert {(m.status, m.period_start) for m in rows} == {(MembershipStatus.ACTIVE, period_end)}
    assert all(m.due_at == m.period_end for m in rows)
    # and each member's events are in a valid order: a grace, if the job came first, then the renewal
    moved = outcome[0] + outcome[-1]
    for member in members:
        kinds = [e.type for e in await OutboxEvent.filter(member_id=member.id).order_by("id") if "membership" in e.type]
        assert kinds in (
            ["membership.started", "membership.renewed"],
            ["membership.started", "membership.grace", "membership.renewed"],
        )
    assert await OutboxEvent.filter(type="membership.grace").count() == moved
