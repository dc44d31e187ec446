"""purchaseRefund on the staff schema: by lines, by amount, bad input."""

from __future__ import annotations

from typing import Any

import pytest

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import AuditLog, Member
from tests.loyalty.ledger_helpers import TILL, balances
from tests.loyalty.purchase_helpers import all_counts, buy, line
from tests.schema.staff.conftest import run_staff

REFUND = """
mutation($input: PurchaseRefundInput!) {
  purchaseRefund(input: $input) {
    refund { amount pointsReversed pointsRecovered unrecovered }
    member { points { pending } }
    userErrors { code field }
  }
}
"""


def _input(**changes: Any) -> dict[str, Any]:
    return {"input": {"storeCode": "S1", "receiptId": "R1", "refundId": "F1", **changes}}


async def test_a_cashier_refunds_items_of_a_line(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given 4 items for 20.00 EUR and a 10.00 EUR item
    await buy(anna.id, "R1", [line("A", 2_000, quantity=4), line("B", 1_000)])

    # when one of the four comes back
    result = await run_staff(REFUND, cashier, _input(lines=[{"lineNo": 1, "quantity": 1}]))

    # then
    assert result.errors is None, result.errors
    assert result.data["purchaseRefund"] == {
        "refund": {"amount": 500, "pointsReversed": 5, "pointsRecovered": 5, "unrecovered": 0},
        "member": {"points": {"pending": 25}},
        "userErrors": [],
    }
    audit = await AuditLog.get(action="purchase.refund")
    assert (audit.actor_id, audit.store_code, audit.member_id) == (cashier.id, "S1", anna.id)


async def test_a_refund_by_amount(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    await buy(anna.id, "R1", [line("A", 3_000)])

    result = await run_staff(REFUND, cashier, _input(amount=3_000))

    assert result.data["purchaseRefund"]["refund"] == {
        "amount": 3_000,
        "pointsReversed": 30,
        "pointsRecovered": 30,
        "unrecovered": 0,
    }
    assert await balances(anna.id) == (0, 0, 0)


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"amount": 3_001}, "REFUND_EXCEEDS_PURCHASE", "amount"),
        ({"lines": [{"lineNo": 1, "quantity": 2}]}, "REFUND_EXCEEDS_PURCHASE", "lines"),
        ({"lines": [{"lineNo": 7, "quantity": 1}]}, "INVALID", "lines"),
        ({"amount": 100, "lines": [{"lineNo": 1, "quantity": 1}]}, "INVALID", "amount"),
        ({"amount": -5}, "INVALID", "amount"),
        ({"receiptId": "nope", "amount": 100}, "PURCHASE_NOT_FOUND", "receiptId"),
        ({"refundId": "", "amount": 100}, "INVALID", "refundId"),
        ({"amount": 100, "occurredAt": "2026-03-02T12:10:00+00:00"}, "INVALID", "occurredAt"),  # the future
        ({"amount": 100, "occurredAt": "2026-03-02T11:59:59+00:00"}, "INVALID", "occurredAt"),  # before the purchase
        ({"amount": 100, "occurredAt": "2026-03-02T12:00:00"}, "INVALID", "occurredAt"),  # no timezone
    ],
)
async def test_bad_refunds_get_a_precise_user_error_and_write_nothing(
    anna: Member, cashier: Actor, clock: FrozenClock, changes: dict[str, Any], code: str, field: str
) -> None:
    # given
    await buy(anna.id, "R1", [line("A", 3_000)])
    before = await all_counts()

    # when
    result = await run_staff(REFUND, cashier, _input(**changes))

    # then
    assert result.errors is None, result.errors
    assert result.data["purchaseRefund"] == {
        "refund": None,
        "member": None,
        "userErrors": [{"code": code, "field": ["input", field]}],
    }
    assert await all_counts() == before


async def test_a_refund_id_reused_for_another_refund_points_at_refund_id(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    # given refund F1 of 10.00 EUR
    await buy(anna.id, "R1", [line("A", 3_000)])
    await run_staff(REFUND, cashier, _input(amount=1_000))
    before = await all_counts()

    # when F1 is sent again for another amount
    result = await run_staff(REFUND, cashier, _input(amount=2_000))

    # then the error names the input that carries the key
    assert result.data["purchaseRefund"] == {
        "refund": None,
        "member": None,
        "userErrors": [{"code": "IDEMPOTENCY_KEY_REUSED", "field": ["input", "refundId"]}],
    }
    assert await all_counts() == before


async def test_a_cashier_cannot_refund_in_another_store(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    await buy(anna.id, "R1", [line("A", 3_000)], store_code="S2", actor=TILL)
    before = await all_counts()

    result = await run_staff(REFUND, cashier, _input(storeCode="S2", amount=100))

    assert [e.extensions for e in result.errors] == [{"code": "FORBIDDEN"}]
    assert await all_counts() == before
