"""Recording and previewing receipts with lines: effects, idempotency, bad input."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from loyalty import purchases
from loyalty.clock import FrozenClock
from loyalty.errors import CurrencyMismatch, DomainError, DuplicateIdempotencyKey, InvalidInput, MemberNotFound
from loyalty.models import AuditLog, Member, OutboxEvent, Program, Purchase, PurchaseLine
from tests.loyalty.ledger_helpers import TILL, balances, new_member
from tests.loyalty.purchase_helpers import CASHIER, all_counts, buy, line, receipt


async def test_recording_a_receipt_stores_it_with_its_lines_and_credits_pending_points(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-buy")
    at = clock.now() - timedelta(hours=1)

    # when
    recorded = await buy(member.id, "R1", [line("A", 2_500, category="food", quantity=2), line("B", 1_000)], at=at)

    # then
    purchase = await Purchase.get(id=recorded.purchase_id)
    assert (purchase.store_code, purchase.receipt_id, purchase.total, purchase.points_earned) == ("S1", "R1", 3_500, 35)
    stored = await PurchaseLine.filter(purchase_id=purchase.id).order_by("line_no")
    assert [(x.line_no, x.sku, x.category, x.quantity, x.amount, x.points) for x in stored] == [
        (1, "A", "food", 2, 2_500, 25),
        (2, "B", "", 1, 1_000, 10),
    ]
    assert (recorded.points, recorded.tier, recorded.available_at) == (
        35,
        "Member",
        at + timedelta(days=14),
    )
    assert await balances(member.id) == (0, 35, 35)
    assert (await Member.get(id=member.id)).last_purchase_at == at
    audit = await AuditLog.get()
    assert (audit.action, audit.actor_id, audit.store_code, audit.member_id, audit.target) == (
        "purchase.record",
        CASHIER.id,
        "S1",
        member.id,
        f"purchase:{purchase.id}",
    )
    assert audit.after == {"receipt_id": "R1", "total": 3_500, "points": 35}
    earned = await OutboxEvent.get(type="points.earned")
    assert earned.payload["receipt_id"] == "R1"


async def test_an_older_receipt_does_not_move_last_purchase_back(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-buy")
    await buy(member.id, "R1", [line("A", 100)])
    await buy(member.id, "R0", [line("A", 100)], at=clock.now() - timedelta(days=3))
    assert (await Member.get(id=member.id)).last_purchase_at == clock.now()


async def test_a_retried_receipt_returns_the_first_answer_and_writes_nothing_more(
    program: Program, clock: FrozenClock
) -> None:
    # given a recorded receipt
    member = await new_member("uid-buy")
    first = await buy(member.id, "R1", [line("A", 1_000)])
    before = await all_counts()

    # when the till sends it again
    again = await buy(member.id, "R1", [line("A", 1_000)])

    # then
    assert again == first
    assert await all_counts() == before
    assert await balances(member.id) == (0, 10, 10)


async def test_the_same_receipt_with_other_content_is_refused(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-buy")
    await buy(member.id, "R1", [line("A", 1_000)])
    before = await all_counts()

    with pytest.raises(DuplicateIdempotencyKey):
        await buy(member.id, "R1", [line("A", 900), line("B", 100)])

    assert await all_counts() == before


async def test_the_same_receipt_id_in_another_store_is_another_purchase(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-buy")
    await buy(member.id, "R1", [line("A", 1_000)], store_code="S1")
    await buy(member.id, "R1", [line("A", 1_000)], store_code="S2", actor=TILL)
    assert await Purchase.all().count() == 2


@pytest.mark.postgres_only
async def test_concurrent_duplicate_receipts_record_one_purchase(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-buy")
    request = receipt(member.id, "R1", [line("A", 1_000, quantity=2)])

    # when the till sends it 8 times at once
    answers = await asyncio.gather(*(purchases.record_purchase(CASHIER, request) for _ in range(8)))

    # then one purchase, one set of lines, one credit; every caller gets the same answer
    assert all(answer == answers[0] for answer in answers)
    assert (await Purchase.all().count(), await PurchaseLine.all().count(), await AuditLog.all().count()) == (1, 1, 1)
    assert await balances(member.id) == (0, 10, 10)


def _bad(member_id: int, clock: FrozenClock, change: str) -> purchases.PurchaseRequest:
    good = receipt(member_id, "R1", [line("A", 1_000), line("B", 500)])
    changes: dict[str, dict[str, Any]] = {
        "unknown member": {"member_id": member_id + 999},
        "currency": {"currency": "SEK"},
        "negative amount": {"lines": (line("A", 1_600), line("B", -100)), "total": 1_500},
        "negative quantity": {"lines": (line("A", 1_000, quantity=-1), line("B", 500))},
        "zero quantity": {"lines": (line("A", 1_000, quantity=0), line("B", 500))},
        "negative total": {"total": -1},
        "lines off the total": {"total": 1_501},
        "voided line in the total": {"lines": (line("A", 1_000), line("B", 500, voided=True))},
        "no lines": {"lines": (), "total": 0},
        "no sku": {"lines": (line("", 1_000), line("B", 500))},
        "long category": {"lines": (line("A", 1_000, category="c" * 65), line("B", 500))},
        "empty receipt id": {"receipt_id": ""},
        "long receipt id": {"receipt_id": "R" * 65},
        "future": {"occurred_at": clock.now() + timedelta(minutes=5, seconds=1)},
        "naive time": {"occurred_at": clock.now().replace(tzinfo=None)},
    }
    return dataclasses.replace(good, **changes[change])


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ("unknown member", MemberNotFound, "MEMBER_NOT_FOUND"),
        ("currency", CurrencyMismatch, "CURRENCY_MISMATCH"),
        ("negative amount", InvalidInput, "INVALID"),
        ("negative quantity", InvalidInput, "INVALID"),
        ("zero quantity", InvalidInput, "INVALID"),
        ("negative total", InvalidInput, "INVALID"),
        ("lines off the total", purchases.LinesTotalMismatch, "LINES_TOTAL_MISMATCH"),
        ("voided line in the total", purchases.LinesTotalMismatch, "LINES_TOTAL_MISMATCH"),
        ("no lines", InvalidInput, "INVALID"),
        ("no sku", InvalidInput, "INVALID"),
        ("long category", InvalidInput, "INVALID"),
        ("empty receipt id", InvalidInput, "INVALID"),
        ("long receipt id", InvalidInput, "INVALID"),
        ("future", InvalidInput, "INVALID"),
        ("naive time", InvalidInput, "INVALID"),
    ],
)
async def test_a_bad_receipt_is_refused_with_a_precise_code_and_writes_nothing(
    program: Program, clock: FrozenClock, change: str, error: type[DomainError], code: str
) -> None:
    # given
    member = await new_member("uid-buy")
    before = await all_counts()
    request = _bad(member.id, clock, change)

    # when / then: recording and previewing refuse it alike
    with pytest.raises(error) as refused:
        await purchases.record_purchase(CASHIER, request)
    assert refused.value.code == code
    with pytest.raises(error):
        await purchases.preview_purchase(request)
    assert await all_counts() == before
    assert await balances(member.id) == (0, 0, 0)


async def test_preview_tells_the_points_and_writes_nothing(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-buy")
    request = receipt(member.id, "R1", [line("A", 1_999), line("B", 1_000)])
    before = await all_counts()

    # when
    preview = await purchases.preview_purchase(request)

    # then
    assert (preview.points, preview.eligible_amount) == (29, 2_999)
    assert await all_counts() == before
    assert (await purchases.record_purchase(CASHIER, request)).breakdown == preview
