"""purchaseRecord and purchasePreview on the staff schema."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from strawberry import relay

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import Campaign, Member, StaffRole
from tests.loyalty.ledger_helpers import configure
from tests.loyalty.purchase_helpers import all_counts, stamp_card
from tests.schema.staff.conftest import run_staff

RECORD = """
mutation($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) {
    purchase {
      receiptId points availableAt tier
      earning { points base tierExtra campaignExtra bonus campaigns lines { lineNo points } }
      stamps { name added stamps stampsRequired vouchersIssued }
    }
    member { memberNumber points { pending } }
    userErrors { code field message }
  }
}
"""

PREVIEW = """
query($input: PurchaseRecordInput!) {
  purchasePreview(input: $input) {
    earning { points base campaignExtra campaignMultiplier lines { lineNo points excluded voided } }
    userErrors { code field }
  }
}
"""


def _input(anna: Member, clock: FrozenClock, **changes: Any) -> dict[str, Any]:
    return {
        "member": relay.to_base64("Member", anna.id),
        "storeCode": "S1",
        "receiptId": "R1",
        "occurredAt": clock.now().isoformat(),
        "currency": "EUR",
        "total": 3_000,
        "lines": [
            {"sku": "LATTE", "category": "coffee", "quantity": 2, "amount": 1_000},
            {"sku": "CAKE", "amount": 2_000},
            {"sku": "X", "amount": 500, "voided": True},
        ],
        **changes,
    }


async def test_a_cashier_records_a_receipt(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given a double-points campaign and a coffee card
    await Campaign.create(
        name="Double",
        multiplier=Decimal(2),
        starts_at=clock.now() - timedelta(days=1),
        ends_at=clock.now() + timedelta(days=1),
    )
    await stamp_card("Coffee card", 5, match_category="coffee")

    # when
    result = await run_staff(RECORD, cashier, {"input": _input(anna, clock)})

    # then
    assert result.errors is None, result.errors
    payload = result.data["purchaseRecord"]
    assert payload["userErrors"] == []
    assert payload["purchase"] == {
        "receiptId": "R1",
        "points": 60,
        "availableAt": (clock.now() + timedelta(days=14)).isoformat(),
        "tier": "Member",
        "earning": {
            "points": 60,
            "base": 30,
            "tierExtra": 0,
            "campaignExtra": 30,
            "bonus": 0,
            "campaigns": ["Double"],
            "lines": [{"lineNo": 1, "points": 20}, {"lineNo": 2, "points": 40}, {"lineNo": 3, "points": 0}],
        },
        "stamps": [{"name": "Coffee card", "added": 2, "stamps": 2, "stampsRequired": 5, "vouchersIssued": 0}],
    }
    assert payload["member"] == {"memberNumber": anna.member_number, "points": {"pending": 60}}


async def test_a_retried_receipt_answers_the_same(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    first = await run_staff(RECORD, cashier, {"input": _input(anna, clock)})
    before = await all_counts()

    again = await run_staff(RECORD, cashier, {"input": _input(anna, clock)})

    assert again.data["purchaseRecord"]["purchase"] == first.data["purchaseRecord"]["purchase"]
    assert await all_counts() == before


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"member": relay.to_base64("Member", 999)}, "MEMBER_NOT_FOUND", "member"),
        ({"member": "not-an-id"}, "MEMBER_NOT_FOUND", "member"),
        ({"currency": "SEK"}, "CURRENCY_MISMATCH", "currency"),
        ({"total": 2_999}, "LINES_TOTAL_MISMATCH", "total"),
        ({"lines": [{"sku": "A", "amount": 3_100}, {"sku": "B", "amount": -100}]}, "INVALID", "lines"),
        ({"lines": [{"sku": "A", "amount": 3_000, "quantity": -2}]}, "INVALID", "lines"),
        ({"receiptId": ""}, "INVALID", "receiptId"),
        ({"occurredAt": "2026-03-02T12:06:00+00:00"}, "INVALID", "occurredAt"),
    ],
)
async def test_bad_receipts_get_a_precise_user_error_and_write_nothing(
    anna: Member, cashier: Actor, clock: FrozenClock, changes: dict[str, Any], code: str, field: str
) -> None:
    # given
    before = await all_counts()

    # when
    recorded = await run_staff(RECORD, cashier, {"input": _input(anna, clock, **changes)})
    previewed = await run_staff(PREVIEW, cashier, {"input": _input(anna, clock, **changes)})

    # then
    assert recorded.errors is None, recorded.errors
    assert recorded.data["purchaseRecord"]["purchase"] is None
    assert [(e["code"], e["field"]) for e in recorded.data["purchaseRecord"]["userErrors"]] == [
        (code, ["input", field])
    ]
    assert previewed.data["purchasePreview"] == {
        "earning": None,
        "userErrors": [{"code": code, "field": ["input", field]}],
    }
    assert await all_counts() == before


async def test_the_same_receipt_with_other_content_is_a_user_error(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    await run_staff(RECORD, cashier, {"input": _input(anna, clock)})
    before = await all_counts()

    result = await run_staff(
        RECORD, cashier, {"input": _input(anna, clock, total=2_000, lines=[{"sku": "A", "amount": 2_000}])}
    )

    assert result.data["purchaseRecord"]["userErrors"] == [
        {
            "code": "IDEMPOTENCY_KEY_REUSED",
            "field": ["input", "receiptId"],
            "message": "this receipt id was already used with a different request",
        }
    ]
    assert await all_counts() == before


async def test_receipts_above_the_sanity_limits_are_refused_with_the_limit_in_money(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    # given 100.00 EUR a receipt and 140.00 EUR a day, 50.00 of it bought already
    await configure(max_purchase_total=10_000, max_daily_purchase_total=14_000)
    await run_staff(RECORD, cashier, {"input": _input(anna, clock, total=5_000, lines=[{"sku": "A", "amount": 5_000}])})
    before = await all_counts()
    too_large = {"receiptId": "R2", "total": 10_001, "lines": [{"sku": "A", "amount": 10_001}]}
    over_the_day = {"receiptId": "R2", "total": 10_000, "lines": [{"sku": "A", "amount": 10_000}]}

    # when the till records them, and previews them
    recorded = [
        (await run_staff(RECORD, cashier, {"input": _input(anna, clock, **changes)})).data["purchaseRecord"]
        for changes in (too_large, over_the_day)
    ]
    previewed = [
        (await run_staff(PREVIEW, cashier, {"input": _input(anna, clock, **changes)})).data["purchasePreview"]
        for changes in (too_large, over_the_day)
    ]

    # then
    assert [(p["purchase"], p["member"], p["userErrors"]) for p in recorded] == [
        (
            None,
            None,
            [
                {
                    "code": "PURCHASE_TOTAL_TOO_LARGE",
                    "field": ["input", "total"],
                    "message": "a receipt may total at most 10000, not 10001",
                }
            ],
        ),
        (
            None,
            None,
            [
                {
                    "code": "DAILY_PURCHASE_LIMIT_EXCEEDED",
                    "field": ["input", "total"],
                    "message": "this member's purchases on 2026-03-02 may total at most 14000; 9000 of it is left",
                }
            ],
        ),
    ]
    assert previewed == [
        {"earning": None, "userErrors": [{"code": "PURCHASE_TOTAL_TOO_LARGE", "field": ["input", "total"]}]},
        {"earning": None, "userErrors": [{"code": "DAILY_PURCHASE_LIMIT_EXCEEDED", "field": ["input", "total"]}]},
    ]
    assert await all_counts() == before


async def test_preview_answers_what_the_receipt_would_earn_and_writes_nothing(
    anna: Member, cashier: Actor, clock: FrozenClock
) -> None:
    # given
    before = await all_counts()

    # when
    result = await run_staff(PREVIEW, cashier, {"input": _input(anna, clock)})

    # then
    assert result.errors is None, result.errors
    assert result.data["purchasePreview"] == {
        "earning": {
            "points": 30,
            "base": 30,
            "campaignExtra": 0,
            "campaignMultiplier": "1",
            "lines": [
                {"lineNo": 1, "points": 10, "excluded": False, "voided": False},
                {"lineNo": 2, "points": 20, "excluded": False, "voided": False},
                {"lineNo": 3, "points": 0, "excluded": False, "voided": True},
            ],
        },
        "userErrors": [],
    }
    assert await all_counts() == before


@pytest.mark.parametrize("document", [RECORD, PREVIEW])
async def test_an_integration_bound_to_a_store_cannot_record_in_another(
    anna: Member, clock: FrozenClock, document: str
) -> None:
    # given a POS key of store S2
    pos = Actor(kind="api_key", id=9, role=StaffRole.CASHIER, store_codes=("S2",), name="POS S2")
    before = await all_counts()

    # when it sends a receipt of store S1
    result = await run_staff(document, pos, {"input": _input(anna, clock)})

    # then
    assert result.data is None
    assert [e.extensions for e in result.errors] == [{"code": "FORBIDDEN"}]
    assert await all_counts() == before
