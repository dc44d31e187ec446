"""Sanity limits on purchases: a maximum total per receipt and per member and day (program configuration)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from loyalty import purchases
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, InvalidInput
from loyalty.models import Program, Purchase
from loyalty.money import format_money
from loyalty.program import load_program
from tests.conftest import TEST_PROGRAM
from tests.loyalty.ledger_helpers import balances, configure, new_member
from tests.loyalty.purchase_helpers import CASHIER, all_counts, buy, line, receipt


def euros(minor: int) -> str:
    return format_money(minor, "EUR", exponent=2)


async def _limits(per_receipt: int = 10_000, per_day: int = 25_000) -> None:
    # 100.00 EUR a receipt, 250.00 EUR a day; days in Stockholm (UTC+1 in March)
    await configure(max_purchase_total=per_receipt, max_daily_purchase_total=per_day, timezone="Europe/Stockholm")


async def test_the_default_limits_refuse_a_typo_of_two_to_the_31_cents(program: Program, clock: FrozenClock) -> None:
    # given the defaults: 10,000.00 a receipt, 25,000.00 a member and day
    member = await new_member("uid-typo")
    assert (program.max_purchase_total, program.max_daily_purchase_total) == (1_000_000, 2_500_000)
    before = await all_counts()

    # when the cashier types 2^31 cents
    with pytest.raises(purchases.PurchaseTotalTooLarge) as refused:
        await buy(member.id, "R1", [line("A", 2**31)])

    # then nothing is minted or written
    assert (refused.value.code, refused.value.field, refused.value.describe(euros)) == (
        "PURCHASE_TOTAL_TOO_LARGE",
        "total",
        "a receipt may total at most €10,000.00, not €21,474,836.48",
    )
    assert await all_counts() == before
    assert await balances(member.id) == (0, 0, 0)


async def test_a_receipt_exactly_at_the_limit_passes_and_one_cent_more_is_refused(
    program: Program, clock: FrozenClock
) -> None:
    await _limits()
    member = await new_member("uid-edge")

    recorded = await buy(member.id, "R1", [line("A", 10_000)])
    before = await all_counts()
    with pytest.raises(purchases.PurchaseTotalTooLarge) as refused:
        await buy(member.id, "R2", [line("A", 6_000), line("B", 4_001)])

    assert recorded.points == 100
    assert refused.value.describe(euros) == "a receipt may total at most €100.00, not €100.01"
    # the APIs' message keeps minor units; the amounts are typed for whoever words them
    assert refused.value.message == "a receipt may total at most 10000, not 10001"
    assert (refused.value.limit, refused.value.total) == (10_000, 10_001)
    assert await all_counts() == before


async def test_a_members_receipts_of_one_day_may_reach_the_daily_limit_but_not_pass_it(
    program: Program, clock: FrozenClock
) -> None:
    await _limits()
    member = await new_member("uid-day")
    await buy(member.id, "R1", [line("A", 10_000)])
    await buy(member.id, "R2", [line("A", 10_000)])

    # exactly at the limit
    await buy(member.id, "R3", [line("A", 5_000)])
    before = await all_counts()
    with pytest.raises(purchases.DailyPurchaseLimitExceeded) as refused:
        await buy(member.id, "R4", [line("A", 1)])

    assert (refused.value.code, refused.value.field, refused.value.describe(euros)) == (
        "DAILY_PURCHASE_LIMIT_EXCEEDED",
        "total",
        "this member's purchases on 2026-03-02 may total at most €250.00; €0.00 of it is left",
    )
    assert await all_counts() == before
    # another member's day is their own
    other = await new_member("uid-other")
    assert (await buy(other.id, "R5", [line("A", 10_000)])).points == 100


async def test_the_day_is_the_programs_local_day_of_the_receipt(program: Program, clock: FrozenClock) -> None:
    # given Stockholm's 1 March ends at 23:00 UTC
    await _limits()
    member = await new_member("uid-midnight")
    last_minute = datetime(2026, 3, 1, 22, 59, tzinfo=UTC)
    midnight = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    for i in range(2):
        await buy(member.id, f"A{i}", [line("A", 10_000)], at=last_minute)
    await buy(member.id, "A2", [line("A", 5_000)], at=last_minute)

    # when a receipt is made at local midnight: a new day
    await buy(member.id, "B1", [line("A", 10_000)], at=midnight)

    # then 1 March is full, 2 March has 150.00 left
    with pytest.raises(purchases.DailyPurchaseLimitExceeded) as full:
        await buy(member.id, "A3", [line("A", 1)], at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert (
        full.value.describe(euros)
        == "this member's purchases on 2026-03-01 may total at most €250.00; €0.00 of it is left"
    )
    await buy(member.id, "B2", [line("A", 10_000)])
    with pytest.raises(purchases.DailyPurchaseLimitExceeded) as nearly:
        await buy(member.id, "B3", [line("A", 5_001)])
    assert nearly.value.describe(euros).endswith("€50.00 of it is left")
    assert await Purchase.filter(member_id=member.id).count() == 5


async def test_a_refund_gives_the_daily_allowance_back(program: Program, clock: FrozenClock) -> None:
    # given a day used up by a mistyped receipt
    await _limits()
    member = await new_member("uid-refund")
    await buy(member.id, "R1", [line("A", 10_000)])
    await buy(member.id, "R2", [line("A", 10_000)])
    await buy(member.id, "R3", [line("A", 5_000)])

    # when 30.00 of it is refunded
    await purchases.refund_purchase(CASHIER, store_code="S1", receipt_id="R1", refund_id="F1", amount=3_000)

    # then 30.00 may be bought again, not a cent more
    await buy(member.id, "R4", [line("A", 3_000)])
    with pytest.raises(purchases.DailyPurchaseLimitExceeded):
        await buy(member.id, "R5", [line("A", 1)])
    assert await balances(member.id) == (0, 250, 250)


async def test_preview_reports_the_same_refusals(program: Program, clock: FrozenClock) -> None:
    await _limits()
    member = await new_member("uid-preview")
    await buy(member.id, "R1", [line("A", 10_000)])
    await buy(member.id, "R2", [line("A", 10_000)])

    refusals: list[DomainError] = []
    for request in (receipt(member.id, "R3", [line("A", 10_001)]), receipt(member.id, "R3", [line("A", 5_001)])):
        with pytest.raises(DomainError) as refused:
            await purchases.preview_purchase(request)
        refusals.append(refused.value)

    assert [(e.code, e.field, e.describe(euros)) for e in refusals] == [
        ("PURCHASE_TOTAL_TOO_LARGE", "total", "a receipt may total at most €100.00, not €100.01"),
        (
            "DAILY_PURCHASE_LIMIT_EXCEEDED",
            "total",
            "this member's purchases on 2026-03-02 may total at most €250.00; €50.00 of it is left",
        ),
    ]
    assert (await purchases.preview_purchase(receipt(member.id, "R3", [line("A", 5_000)]))).points == 50


@pytest.mark.postgres_only
async def test_concurrent_receipts_of_one_member_cannot_pass_the_daily_limit_together(
    program: Program, clock: FrozenClock
) -> None:
    # given 250.00 a day and 8 receipts of 100.00 sent at once from different tills
    await _limits()
    member = await new_member("uid-race")

    # when
    answers = await asyncio.gather(
        *(buy(member.id, f"R{i}", [line("A", 10_000)]) for i in range(8)), return_exceptions=True
    )

    # then the member lock serialises them: two pass, six are refused
    refused = [a for a in answers if isinstance(a, purchases.DailyPurchaseLimitExceeded)]
    assert (len(refused), len(answers) - len(refused)) == (6, 2)
    assert await Purchase.filter(member_id=member.id).count() == 2
    assert await balances(member.id) == (0, 200, 200)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"max_purchase_total": 0}, "max_purchase_total"),
        ({"max_purchase_total": "1000"}, "max_purchase_total"),
        ({"max_daily_purchase_total": -1}, "max_daily_purchase_total"),
        ({"max_purchase_total": 5_000, "max_daily_purchase_total": 4_999}, "max_daily_purchase_total"),
        ({"max_purchase_total": 10**15}, "max_purchase_total"),
    ],
)
async def test_bad_limits_in_the_program_config_are_refused(
    program: Program, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await configure(**changes)
    assert refused.value.field == field
    stored = await load_program()
    assert (stored.max_purchase_total, stored.max_daily_purchase_total) == (1_000_000, 2_500_000)


async def test_the_limits_are_seeded_from_the_program_config(program: Program) -> None:
    await configure(max_purchase_total=50_000, max_daily_purchase_total=50_000)
    stored = await load_program()
    assert (stored.max_purchase_total, stored.max_daily_purchase_total) == (50_000, 50_000)
    assert "max_purchase_total" not in TEST_PROGRAM["program"]  # the test program keeps the defaults
