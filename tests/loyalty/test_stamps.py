"""Stamp cards: items and visits, completion with surplus, vouchers, progress for the app and the till."""

from __future__ import annotations

from loyalty.clock import FrozenClock
from loyalty.models import Program, StampCard, StampProgress, Voucher, VoucherStatus
from loyalty.purchases import LineRefund, refund_purchase
from loyalty.stamps import StampCardProgress, StampOutcome, stamp_cards_for
from tests.loyalty.ledger_helpers import configure, new_member
from tests.loyalty.purchase_helpers import CASHIER, buy, line, stamp_card


async def test_items_card_completes_with_surplus_and_issues_one_voucher_per_completion(
    program: Program, clock: FrozenClock
) -> None:
    # given a 5-stamp coffee card
    card = await stamp_card(required=5, match_category="coffee")
    member = await new_member("uid-stamps")

    # when 7 coffees are bought (and a pastry that does not count)
    first = await buy(member.id, "R1", [line("LATTE", 2_100, category="coffee", quantity=7), line("BUN", 300)])

    # then one voucher for the card's reward, 2 stamps carried over
    assert first.stamps == [StampOutcome(card.id, "Coffee card", 7, 2, 5, 1)]
    voucher = await Voucher.get()
    assert (voucher.member_id, voucher.stamp_card_id, voucher.reward_id, voucher.status) == (
        member.id,
        card.id,
        card.reward_id,
        VoucherStatus.ACTIVE,
    )

    # when 8 more come in one purchase: 2 + 8 = 10 = two completions
    second = await buy(member.id, "R2", [line("LATTE", 2_400, category="coffee", quantity=8)])

    # then
    assert second.stamps == [StampOutcome(card.id, "Coffee card", 8, 0, 5, 2)]
    assert await Voucher.filter(member_id=member.id, stamp_card_id=card.id).count() == 3
    progress = await StampProgress.get(member_id=member.id, card_id=card.id)
    assert (progress.stamps, progress.completed) == (0, 3)


async def test_voided_excluded_and_unmatched_lines_give_no_stamps(program: Program, clock: FrozenClock) -> None:
    # given a card for SKU BEANS in category coffee, and an unrestricted card; gift cards excluded
    await configure(excluded_categories=["giftcard"])
    beans = await stamp_card("Beans", 10, match_category="coffee", match_sku="BEANS")
    anything = await stamp_card("Anything", 10)
    member = await new_member("uid-stamps")

    # when
    recorded = await buy(
        member.id,
        "R1",
        [
            line("BEANS", 1_000, category="coffee", quantity=2),
            line("BEANS", 500, category="coffee", voided=True),
            line("BEANS", 500, category="tea"),
            line("GC", 5_000, category="giftcard", quantity=3),
        ],
    )

    # then beans: only the 2 matching, sold coffee beans; anything: 2 + 1 (never the gift cards or the voided line)
    assert recorded.stamps == [
        StampOutcome(beans.id, "Beans", 2, 2, 10, 0),
        StampOutcome(anything.id, "Anything", 3, 3, 10, 0),
    ]


async def test_visits_card_stamps_once_per_purchase_from_the_minimum_spend(
    program: Program, clock: FrozenClock
) -> None:
    # given a 3-visit card from 20.00 EUR
    card = await stamp_card("Visits", 3, counts="visits", min_spend=2_000)
    member = await new_member("uid-stamps")

    # when purchases of 19.99, 20.00 (5 items) and 50.00 are made
    below = await buy(member.id, "R1", [line("A", 1_999)])
    at_minimum = await buy(member.id, "R2", [line("A", 2_000, quantity=5)])
    above = await buy(member.id, "R3", [line("A", 5_000)])

    # then
    assert below.stamps == []
    assert at_minimum.stamps == [StampOutcome(card.id, "Visits", 1, 1, 3, 0)]
    assert above.stamps == [StampOutcome(card.id, "Visits", 1, 2, 3, 0)]


async def test_visits_card_with_a_match_needs_a_matching_line(program: Program, clock: FrozenClock) -> None:
    await stamp_card("Lunch", 5, counts="visits", match_category="lunch")
    member = await new_member("uid-stamps")

    without = await buy(member.id, "R1", [line("A", 1_000)])
    with_lunch = await buy(member.id, "R2", [line("A", 1_000), line("SOUP", 900, category="lunch", quantity=2)])

    assert (without.stamps, [s.added for s in with_lunch.stamps]) == ([], [1])


async def test_a_refund_keeps_the_stamps_and_the_voucher(program: Program, clock: FrozenClock) -> None:
    # given a completed card
    card = await stamp_card(required=2)
    member = await new_member("uid-stamps")
    await buy(member.id, "R1", [line("A", 900, quantity=3)])

    # when everything is returned
    await refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", lines=[LineRefund(1, 3)])

    # then
    progress = await StampProgress.get(member_id=member.id, card_id=card.id)
    assert (progress.stamps, progress.completed) == (1, 1)
    assert await Voucher.filter(status=VoucherStatus.ACTIVE).count() == 1


async def test_progress_lists_every_active_card_including_untouched_ones(program: Program, clock: FrozenClock) -> None:
    # given two active cards (one touched) and an inactive one
    coffee = await stamp_card("Coffee", 5, match_category="coffee")
    lunch = await stamp_card("Lunch", 3, counts="visits")
    retired = await stamp_card("Old", 4)
    await StampCard.filter(id=retired.id).update(active=False)
    member = await new_member("uid-stamps")
    other = await new_member("uid-other")
    await buy(member.id, "R1", [line("LATTE", 600, category="coffee", quantity=2)])

    # when / then
    assert await stamp_cards_for(member.id) == [
        StampCardProgress(coffee.id, "Coffee", "", 2, 5, 0),
        StampCardProgress(lunch.id, "Lunch", "", 1, 3, 0),
    ]
    assert [p.stamps for p in await stamp_cards_for(other.id)] == [0, 0]
