"""The checkout read model: one summary for the staff API and the console, what each voucher is for, few queries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from tortoise.transactions import in_transaction

from loyalty import checkout
from loyalty.clock import FrozenClock
from loyalty.errors import MemberNotFound
from loyalty.members import get_member
from loyalty.models import (
    Member,
    Offer,
    OfferBenefit,
    Program,
    Purchase,
    PurchaseLine,
    Reward,
    RewardKind,
    StampCard,
    StampProgress,
    Voucher,
    VoucherStatus,
)
from loyalty.program import cached_plans, load_program
from loyalty.vouchers import issue_voucher
from tests.conftest import START
from tests.loyalty import ledger_helpers
from tests.loyalty.test_offers import new_offer
from tests.schema.conftest import SQLCounter


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """The SQL statements Tortoise sends while the test runs."""
    logger = logging.getLogger("tortoise.db_client")
    counter, previous = SQLCounter(), logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter.statements
    logger.removeHandler(counter)
    logger.setLevel(previous)


async def _voucher(
    member: Member, *, reward: Reward | None = None, offer: Offer | None = None, stamp_card: StampCard | None = None
) -> Voucher:
    async with in_transaction() as conn:
        return await issue_voucher(conn, member.id, reward=reward, offer=offer, stamp_card=stamp_card)


async def _summary(member: Member) -> checkout.CheckoutSummary:
    return await checkout.checkout_summary(await get_member(member.id), await load_program(), START)


async def test_the_summary_shows_the_member_their_tier_offers_vouchers_and_stamp_cards(program: Program) -> None:
    # Given 300 points available and a 100 EUR purchase in its return window (100 pending, 100 qualifying)
    member = await ledger_helpers.new_member("uid-till")
    await ledger_helpers.give_available(member.id, 300)
    await ledger_helpers.earn_for_purchase(
        member.id, store_code="S1", receipt_id="R1", occurred_at=START, currency="EUR", total=10_000
    )
    # ... two offers, and a voucher of every source: a reward, a stamp card (which gives its reward), an offer and
    # none; also a used one and one past its expiry, which the till does not list
    await new_offer(name="A", priority=1)
    await new_offer(name="B", priority=2)
    five_off = await Reward.create(
        name="5 EUR off", kind=RewardKind.AMOUNT_OFF, points_cost=50, value=500, voucher_valid_days=5
    )
    latte = await Reward.create(
        name="Free latte", kind=RewardKind.FREE_PRODUCT, points_cost=0, sku="LATTE", voucher_valid_days=10
    )
    card = await StampCard.create(name="Coffee card", stamps_required=5, reward=latte)
    await StampProgress.create(member=member, card=card, stamps=2, updated_at=START)
    ten_percent = await new_offer(name="10% off", benefit=OfferBenefit.PERCENT_OFF, value=10)
    by_reward = await _voucher(member, reward=five_off)
    by_card = await _voucher(member, reward=latte, stamp_card=card)
    by_offer = await _voucher(member, offer=ten_percent)
    plain = await _voucher(member)
    used = await _voucher(member, reward=five_off)
    gone = await _voucher(member, reward=five_off)
    await Voucher.filter(id=used.id).update(status=VoucherStatus.REDEEMED)
    await Voucher.filter(id=gone.id).update(expires_at=START)

    # When the till shows the member
    summary = await _summary(member)

    # Then it shows all of it, as of START
    assert (summary.member.id, summary.member.points_available, summary.member.points_pending) == (member.id, 300, 100)
    assert summary.program.name == "Test Club"
    tier = summary.tier
    assert (tier.current.name, tier.next.name if tier.next else None, tier.qualifying_value) == (
        "Member",
        "Silver",
        100,
    )
    assert (tier.remaining_to_next, tier.progress, tier.period_ends_at) == (400, 0.2, datetime(2027, 1, 1, tzinfo=UTC))
    assert [(o.offer.name, o.activated, o.remaining_uses) for o in summary.offers] == [
        ("B", False, 1),
        ("A", False, 1),
        ("10% off", False, 1),
    ]
    assert [(v.voucher.id, v.name, v.kind, v.value, v.sku) for v in summary.vouchers] == [
        (by_reward.id, "5 EUR off", RewardKind.AMOUNT_OFF, 500, None),
        (by_card.id, "Free latte", RewardKind.FREE_PRODUCT, 0, "LATTE"),
        (by_offer.id, "10% off", RewardKind.PERCENT_OFF, 10, None),
        (plain.id, "Voucher", None, 0, None),
    ]
    assert [(c.name, c.stamps, c.stamps_required, c.completed) for c in summary.stamp_cards] == [
        ("Coffee card", 2, 5, 0)
    ]


async def test_a_voucher_names_its_stamp_card_or_offer_when_it_has_no_reward(program: Program) -> None:
    # Given vouchers that only name a stamp card, and an offer whose benefit a till cannot apply as a voucher
    member = await ledger_helpers.new_member("uid-sources")
    latte = await Reward.create(name="Free latte", kind=RewardKind.FREE_PRODUCT, points_cost=0)
    card = await StampCard.create(name="Coffee card", stamps_required=5, reward=latte)
    bonus = await new_offer(name="Bonus", benefit=OfferBenefit.BONUS_POINTS, value=100)
    free_bun = await new_offer(name="Free bun", benefit=OfferBenefit.FREE_ITEM, value=0, sku="BUN")
    vouchers = [await _voucher(member, stamp_card=card), await _voucher(member, offer=bonus)]
    vouchers.append(await _voucher(member, offer=free_bun))

    described = await checkout.describe_vouchers(vouchers)

    assert [(d.voucher.id, d.name, d.kind, d.value, d.sku) for d in described] == [
        (vouchers[0].id, "Coffee card", None, 0, None),
        (vouchers[1].id, "Bonus", None, 0, None),
        (vouchers[2].id, "Free bun", RewardKind.FREE_PRODUCT, 0, "BUN"),
    ]


async def test_the_till_lists_the_twenty_soonest_usable_vouchers(program: Program, clock: FrozenClock) -> None:
    # Given 21 vouchers expiring a minute apart, from 30 days on
    member = await ledger_helpers.new_member("uid-many")
    issued = []
    for _ in range(21):
        issued.append(await _voucher(member))
        clock.advance(timedelta(minutes=1))
    first_expiry = START + timedelta(days=30)

    # When the till lists them just before, at and after the first one's expiry
    before = await checkout.usable_vouchers(member.id, first_expiry - timedelta(microseconds=1), checkout.MAX_VOUCHERS)
    at_expiry = await checkout.usable_vouchers(member.id, first_expiry, checkout.MAX_VOUCHERS)

    # Then it shows twenty, soonest expiry first, and a voucher is no longer usable at its expiry
    assert [v.voucher.id for v in before] == [v.id for v in issued[:20]]
    assert [v.voucher.id for v in at_expiry] == [v.id for v in issued[1:21]]


async def test_the_summary_runs_the_same_queries_however_much_there_is_to_show(
    program: Program, statements: list[str]
) -> None:
    # Given a member with one of everything
    member = await ledger_helpers.new_member("uid-budget")

    async def add_one_of_each(n: int) -> None:
        reward = await Reward.create(name=f"Reward {n}", kind=RewardKind.FREE_PRODUCT, points_cost=10)
        offer = await new_offer(name=f"Offer {n}", benefit=OfferBenefit.AMOUNT_OFF, value=100)
        card = await StampCard.create(name=f"Card {n}", stamps_required=5, reward=reward)
        await StampProgress.create(member=member, card=card, stamps=1, updated_at=START)
        await _voucher(member, reward=reward)
        await _voucher(member, offer=offer)
        purchase = await Purchase.create(
            member=member, store_code="S1", receipt_id=f"R-{n}", occurred_at=START, currency="EUR", total=100,
            points_earned=0, qualifying_value=0, created_at=START,
        )  # fmt: skip
        await PurchaseLine.create(purchase=purchase, line_no=1, sku="TEA", quantity=1, amount=100)

    await add_one_of_each(0)
    await cached_plans()  # the membership plans are cached in the process, like the program
    statements.clear()
    one = await _summary(member)
    with_one = len(statements)

    # When there are ten of each
    for n in range(1, 10):
        await add_one_of_each(n)
    statements.clear()
    ten = await _summary(member)

    # Then the same statements ran: the member and the program (the caller's), qualifying value, the paid
    # membership (which also decides the offers), running offers with their use, usable vouchers with what they
    # are for, stamp cards with progress, receipts and lines
    assert [len(one.offers), len(one.vouchers), len(one.stamp_cards), len(one.receipts)] == [1, 2, 1, 1]
    assert [len(ten.offers), len(ten.vouchers), len(ten.stamp_cards), len(ten.receipts)] == [10, 20, 10, 10]
    assert len(statements) == with_one == 1 + 2 + 1 + 1 + 1 + 1 + 1 + 2, statements


async def test_the_summary_lists_the_offers_that_apply_most_relevant_first(program: Program) -> None:
    anna = await ledger_helpers.new_member("uid-anna")
    await new_offer(name="A", priority=1)
    await new_offer(name="B", priority=2)

    summary = (await _summary(anna)).offers

    assert [(i.offer.name, i.activated, i.remaining_uses) for i in summary] == [("B", False, 1), ("A", False, 1)]
    with pytest.raises(MemberNotFound):
        await get_member(999_999)
