"""Refunds of receipts with lines: by lines (proportional to quantity) and by amount, idempotent, bounded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty import purchases
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, InvalidInput, PurchaseNotFound, RefundExceedsPurchase
from loyalty.models import AuditLog, BonusRule, EntryKind, LedgerEntry, Program, Purchase, PurchaseLine, Refund
from loyalty.purchases import LineRefund, RefundResult
from tests.loyalty.ledger_helpers import balances, configure, new_member
from tests.loyalty.purchase_helpers import CASHIER, all_counts, buy, line


async def _refund(
    refund_id: str, *, amount: int | None = None, lines: list[tuple[int, int]] | None = None
) -> RefundResult:
    return await purchases.refund_purchase(
        CASHIER,
        store_code="S1",
        receipt_id="R1",
        refund_id=refund_id,
        amount=amount,
        lines=[LineRefund(no, quantity) for no, quantity in lines] if lines is not None else None,
    )


async def test_refunding_items_of_a_line_reverses_that_lines_points_by_quantity(
    program: Program, clock: FrozenClock
) -> None:
    # given 3 items on line 1 (10 points) and line 2 (25 points)
    member = await new_member("uid-refund")
    bought = await buy(member.id, "R1", [line("A", 1_000, quantity=3), line("B", 2_500)])
    assert [x.points for x in bought.breakdown.lines] == [10, 25]

    # when the items of line 1 come back one by one
    results = [await _refund(f"F{i}", lines=[(1, 1)]) for i in range(3)]

    # then cumulative flooring: 3 + 3 + 4 points, 333 + 333 + 334 cents, line 2 untouched
    assert [(r.points_reversed, r.amount) for r in results] == [(3, 333), (3, 333), (4, 334)]
    assert await balances(member.id) == (0, 25, 25)
    stored = await PurchaseLine.filter(purchase_id=bought.purchase_id).order_by("line_no")
    assert [x.refunded_quantity for x in stored] == [3, 0]
    purchase = await Purchase.get(id=bought.purchase_id)
    assert (purchase.refunded_total, purchase.points_reversed) == (1_000, 10)
    assert await AuditLog.filter(action="purchase.refund").count() == 3


async def test_refunding_several_lines_at_once_and_then_the_rest_by_amount(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 1_000, quantity=2), line("B", 2_500), line("C", 500)])

    # when lines 1 (one of two) and 2 are refunded, then the rest by amount
    by_lines = await _refund("F1", lines=[(1, 1), (2, 1)])
    rest = await _refund("F2", amount=1_000)

    # then the purchase is fully reversed, exactly
    assert (by_lines.points_reversed, by_lines.amount) == (30, 3_000)
    assert (rest.points_reversed, rest.amount) == (10, 1_000)
    assert await balances(member.id) == (0, 0, 0)


async def test_refunding_a_gift_card_line_gives_the_money_back_but_reverses_no_points(
    program: Program, clock: FrozenClock
) -> None:
    await configure(excluded_categories=["giftcard"])
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("GC", 5_000, category="giftcard"), line("A", 1_000)])

    result = await _refund("F1", lines=[(1, 1)])

    assert (result.points_reversed, result.amount) == (0, 5_000)
    assert await balances(member.id) == (0, 10, 10)


async def test_a_refund_retried_with_its_refund_id_reverses_once(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 1_000, quantity=2)])
    first = await _refund("F1", lines=[(1, 1)])
    before = await all_counts()

    again = await _refund("F1", lines=[(1, 1)])

    assert again == first
    assert await all_counts() == before
    assert await balances(member.id) == (0, 5, 5)


async def test_a_refund_with_its_time_replays_with_it_and_not_with_another(
    program: Program, clock: FrozenClock
) -> None:
    # given a refund of goods that came back an hour after the purchase
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 1_000, quantity=2)], at=clock.now() - timedelta(hours=2))
    returned_at = clock.now() - timedelta(hours=1)
    first = await purchases.refund_purchase(
        CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=500, occurred_at=returned_at
    )
    before = await all_counts()

    # when the till retries it with the same time, and with another (or none)
    again = await purchases.refund_purchase(
        CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=500, occurred_at=returned_at
    )
    refusals = []
    for other in (returned_at + timedelta(minutes=1), None):
        with pytest.raises(DomainError) as refused:
            await purchases.refund_purchase(
                CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=500, occurred_at=other
            )
        refusals.append((refused.value.code, refused.value.field))

    # then one clawback, dated when the goods came back
    assert again == first
    assert refusals == [("IDEMPOTENCY_KEY_REUSED", "refund_id")] * 2
    assert await all_counts() == before
    entry = await LedgerEntry.get(kind=EntryKind.REFUND_CLAWBACK)
    assert (entry.delta_pending, entry.occurred_at, entry.created_at) == (-5, returned_at, clock.now())


@pytest.mark.parametrize(
    ("refund", "error", "code"),
    [
        ({"lines": [(1, 3)]}, RefundExceedsPurchase, "REFUND_EXCEEDS_PURCHASE"),
        ({"lines": [(3, 1)]}, RefundExceedsPurchase, "REFUND_EXCEEDS_PURCHASE"),  # a voided line was never sold
        ({"lines": [(1, 1), (9, 1)]}, InvalidInput, "INVALID"),  # no such line; line 1 is not refunded either
        ({"lines": [(1, 1), (1, 1)]}, InvalidInput, "INVALID"),
        ({"lines": [(1, 0)]}, InvalidInput, "INVALID"),
        ({"lines": [(1, -1)]}, InvalidInput, "INVALID"),
        ({"lines": []}, InvalidInput, "INVALID"),
        ({"amount": 3_001}, RefundExceedsPurchase, "REFUND_EXCEEDS_PURCHASE"),
        ({"amount": 0}, InvalidInput, "INVALID"),
        ({"amount": 500, "lines": [(1, 1)]}, InvalidInput, "INVALID"),
        ({}, InvalidInput, "INVALID"),
    ],
)
async def test_a_bad_refund_is_refused_with_a_precise_code_and_writes_nothing(
    program: Program, clock: FrozenClock, refund: dict[str, Any], error: type[DomainError], code: str
) -> None:
    # given 2 items on line 1, one on line 2 and a voided line 3
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 2_000, quantity=2), line("B", 1_000), line("X", 700, voided=True)])
    before = await all_counts()

    # when / then
    with pytest.raises(error) as refused:
        await _refund("F1", **refund)
    assert refused.value.code == code
    assert await all_counts() == before
    assert await PurchaseLine.filter(refunded_quantity__gt=0).count() == 0
    assert await balances(member.id) == (0, 30, 30)


async def test_lines_refunded_after_a_partial_refund_by_amount_never_reverse_more_than_earned(
    program: Program, clock: FrozenClock
) -> None:
    # given line 1 earns 10 + 50 bonus points, line 2 earns 10; half the money is refunded by amount (35 points)
    await BonusRule.create(name="Promo", match_type="sku", match_value="A", points_per_item=50)
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 1_000), line("B", 1_000)])
    await _refund("F1", amount=1_000)

    # when line 1 (60 points) is returned as well
    last = await _refund("F2", lines=[(1, 1)])

    # then only the 35 points left of the purchase go, and no money is left to refund
    assert (last.points_reversed, last.amount) == (35, 1_000)
    assert await balances(member.id) == (0, 0, 0)
    with pytest.raises(RefundExceedsPurchase):
        await _refund("F3", lines=[(2, 1)])
    assert await Refund.all().count() == 2


async def test_a_free_item_can_be_returned_by_line(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("SAMPLE", 0, quantity=2)])

    result = await _refund("F1", lines=[(1, 2)])

    assert (result.points_reversed, result.amount) == (0, 0)
    assert await PurchaseLine.filter(refunded_quantity=2).count() == 1


async def test_a_refund_for_a_named_member_refuses_another_members_receipt_and_writes_nothing(
    program: Program, clock: FrozenClock
) -> None:
    # given Anna's receipt R1, refunded once for her, and Bo at the till
    anna = await new_member("uid-anna")
    bo = await new_member("uid-bo")
    await buy(anna.id, "R1", [line("A", 1_000)])
    first = await purchases.refund_purchase(
        CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=500, member_id=anna.id
    )
    before = await all_counts()

    # when the receipt is refunded for Bo, with a new refund id and replaying Anna's
    refusals = []
    for refund_id in ("F2", "F1"):
        with pytest.raises(PurchaseNotFound) as refused:
            await purchases.refund_purchase(
                CASHIER, store_code="S1", receipt_id="R1", refund_id=refund_id, amount=500, member_id=bo.id
            )
        refusals.append(refused.value.message)

    # then both are refused the same way and nothing was written
    assert first.points_reversed == 5
    assert refusals == ["this member has no receipt R1 in store S1"] * 2
    assert await all_counts() == before
