"""The ledger's rules at their edges: return window, expiry, spend order, refunds, reversals, invalid input."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from loyalty import jobs
from loyalty.clock import FrozenClock
from loyalty.errors import (
    AlreadyReversed,
    CurrencyMismatch,
    InsufficientPoints,
    InvalidInput,
    NotFound,
    PurchaseNotFound,
    RefundExceedsPurchase,
)
from loyalty.models import EntryKind, LedgerEntry, LotStatus, Member, PointsLot, Program, Purchase
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import (
    balances,
    configure,
    entry_kinds,
    give_available,
    lots,
    new_member,
    purchase,
    row_counts,
)

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


async def test_points_stay_pending_until_exactly_available_at(program: Program, clock: FrozenClock) -> None:
    # given a purchase now: 14 pending days
    member = await new_member("uid-rules")
    earned = await purchase(member.id, "R1", 5_000, clock.now())
    assert earned.available_at == clock.now() + 14 * DAY

    # when the job runs one second before the end of the return window
    clock.advance(14 * DAY - SECOND)
    await jobs.expire_points()
    # then the points are still pending and cannot be spent
    assert await balances(member.id) == (0, 50, 50)
    with pytest.raises(InsufficientPoints):
        await ledger_helpers.redeem_points(member.id, 1, idempotency_key="k1")

    # when the clock reaches available_at exactly
    clock.advance(SECOND)
    await jobs.expire_points()
    # then they are available
    assert await balances(member.id) == (50, 0, 50)
    assert await entry_kinds(member.id) == [EntryKind.EARN, EntryKind.MATURE]


async def test_a_redemption_matures_due_points_before_it_debits(program: Program, clock: FrozenClock) -> None:
    # given pending points whose window ended, without the job having run
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 5_000, clock.now())
    clock.advance(14 * DAY)

    # when
    result = await ledger_helpers.redeem_points(member.id, 50, idempotency_key="k1")

    # then
    assert result.balance == 0
    assert await entry_kinds(member.id) == [EntryKind.EARN, EntryKind.MATURE, EntryKind.REDEEM]


async def test_a_late_reported_purchase_past_its_return_window_is_available_at_once(
    program: Program, clock: FrozenClock
) -> None:
    # given / when a purchase from 20 days ago
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 5_000, clock.now() - 20 * DAY)

    # then
    assert await balances(member.id) == (50, 0, 50)
    lot = await PointsLot.get(member_id=member.id)
    assert lot.status == LotStatus.AVAILABLE
    assert lot.expires_at == clock.now() - 6 * DAY + 365 * DAY


async def test_points_expire_exactly_at_expires_at(program: Program, clock: FrozenClock) -> None:
    # given an available lot expiring in 365 days
    member = await new_member("uid-rules")
    await give_available(member.id, 80)
    lot = await PointsLot.get(member_id=member.id)
    assert lot.expires_at == clock.now() + 365 * DAY

    # when one second before
    clock.advance(365 * DAY - SECOND)
    assert await jobs.expire_points() == 0
    assert await balances(member.id) == (80, 0, 80)

    # when exactly at expires_at
    clock.advance(SECOND)
    assert await jobs.expire_points() == 1

    # then
    assert await balances(member.id) == (0, 0, 80)
    assert await lots(member.id) == [(80, 0, "expired")]
    expiry = await LedgerEntry.get(member_id=member.id, kind=EntryKind.EXPIRE)
    assert (expiry.delta_available, expiry.lot_id) == (-80, lot.id)


async def test_the_expiry_clock_starts_when_the_lot_becomes_available(program: Program, clock: FrozenClock) -> None:
    # given a purchase at t0: available at t0+14d, so it expires at t0+379d (not t0+365d)
    member = await new_member("uid-rules")
    t0 = clock.now()
    await purchase(member.id, "R1", 5_000, t0)
    assert (await PointsLot.get(member_id=member.id)).expires_at == t0 + 379 * DAY

    # when a year after the purchase
    clock.set(t0 + 366 * DAY)
    await jobs.expire_points()
    # then still there
    assert await balances(member.id) == (50, 0, 50)

    # when a year after it became available
    clock.set(t0 + 379 * DAY)
    await jobs.expire_points()
    # then expired
    assert await balances(member.id) == (0, 0, 50)


async def test_program_without_expiry_never_expires_points(program: Program, clock: FrozenClock) -> None:
    # given
    await configure(expiry_days=None)
    member = await new_member("uid-rules")
    await give_available(member.id, 80)

    # when
    clock.advance(3_650 * DAY)
    await jobs.expire_points()

    # then
    assert (await PointsLot.get(member_id=member.id)).expires_at is None
    assert await balances(member.id) == (80, 0, 80)
    assert (await Member.get(id=member.id)).next_settle_at is None


async def test_redemption_consumes_earliest_expiry_first_and_never_expiring_points_last(
    program: Program, clock: FrozenClock
) -> None:
    # given three lots: no expiry (first created), expiring in 365 days, expiring in 300 days
    member = await new_member("uid-rules")
    await configure(expiry_days=None)
    await give_available(member.id, 50, key="forever")
    await configure(expiry_days=365)
    await give_available(member.id, 50, key="late")
    await purchase(member.id, "R1", 5_000, clock.now() - 79 * DAY)  # available 65 days ago -> expires in 300

    # when
    await ledger_helpers.redeem_points(member.id, 70, idempotency_key="k1")

    # then the purchase lot (earliest expiry) went first, then the 365-day lot, the unexpiring one untouched
    assert await lots(member.id) == [(50, 50, "available"), (50, 30, "available"), (50, 0, "available")]


async def test_partial_refunds_reverse_exactly_the_points_earned_in_total(program: Program, clock: FrozenClock) -> None:
    # given a purchase of 100.00 EUR: 100 points
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 10_000, clock.now())

    # when three partial refunds add up to the total
    results = [
        await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id=f"F{i}", amount=amount)
        for i, amount in enumerate((3_333, 3_333, 3_334))
    ]

    # then cumulative floor rounding: 33, 33, 34 (not 33 + 33 + 33 = 99)
    assert [r.points_reversed for r in results] == [33, 33, 34]
    assert await balances(member.id) == (0, 0, 0)
    stored = await Purchase.get(receipt_id="R1")
    assert (stored.refunded_total, stored.points_reversed) == (10_000, 100)
    assert await lots(member.id) == [(100, 0, "void")]


async def test_small_partial_refunds_round_down_until_a_whole_point_is_due(
    program: Program, clock: FrozenClock
) -> None:
    # given 9.99 EUR: 9 points
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 999, clock.now())

    # when refunding 1.00 EUR at a time, then the rest
    reversed_points = [
        (
            await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id=f"F{i}", amount=100)
        ).points_reversed
        for i in range(9)
    ]
    last = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F-last", amount=99)

    # then floor(9 * refunded / 999) - already reversed, each time
    assert reversed_points == [0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert last.points_reversed == 1
    assert sum(reversed_points) + last.points_reversed == 9
    assert await balances(member.id) == (0, 0, 0)


async def test_refund_larger_than_what_is_left_is_refused_and_writes_nothing(
    program: Program, clock: FrozenClock
) -> None:
    # given a purchase of 100.00 with 60.00 refunded
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 10_000, clock.now())
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=6_000)
    before = await row_counts()

    # when / then
    with pytest.raises(RefundExceedsPurchase):
        await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=4_001)
    assert await row_counts() == before
    assert await balances(member.id) == (0, 40, 40)
    stored = await Purchase.get(receipt_id="R1")
    assert (stored.refunded_total, stored.points_reversed) == (6_000, 60)


async def test_refund_takes_the_purchases_pending_points_before_other_available_points(
    program: Program, clock: FrozenClock
) -> None:
    # given available points and a pending purchase
    member = await new_member("uid-rules")
    await give_available(member.id, 500)
    await purchase(member.id, "R1", 10_000, clock.now())

    # when
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=2_500)

    # then
    assert (result.points_reversed, result.points_recovered, result.unrecovered) == (25, 25, 0)
    assert await balances(member.id) == (500, 75, 575)
    assert await lots(member.id) == [(500, 500, "available"), (100, 75, "pending")]


async def test_refund_after_the_points_were_spent_takes_other_points_then_records_unrecovered(
    program: Program, clock: FrozenClock
) -> None:
    # given a matured purchase of 100 points, fully spent, and 30 other points
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 10_000, clock.now() - 15 * DAY)
    await give_available(member.id, 30)
    await ledger_helpers.redeem_points(member.id, 100, idempotency_key="k1")
    assert await lots(member.id) == [(100, 0, "available"), (30, 30, "available")]

    # when the purchase is refunded in full
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=10_000)

    # then the other 30 are taken, 70 are recorded as unrecovered, the balance stays at 0
    assert (result.points_reversed, result.points_recovered, result.unrecovered) == (100, 30, 70)
    assert await balances(member.id) == (0, 0, 30)
    clawback = await LedgerEntry.get(member_id=member.id, kind=EntryKind.REFUND_CLAWBACK)
    assert (clawback.delta_available, clawback.delta_lifetime, clawback.unrecovered) == (-30, -100, 70)


async def test_refund_after_spending_goes_negative_when_the_program_allows_it(
    program: Program, clock: FrozenClock
) -> None:
    # given the same situation in a program that allows a negative balance
    await configure(allow_negative_balance=True)
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 10_000, clock.now() - 15 * DAY)
    await give_available(member.id, 30)
    await ledger_helpers.redeem_points(member.id, 100, idempotency_key="k1")

    # when
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=10_000)

    # then
    assert (result.points_reversed, result.points_recovered, result.unrecovered) == (100, 100, 0)
    assert await balances(member.id) == (-70, 0, 30)
    # and the member cannot spend while negative
    await give_available(member.id, 50, key="more")
    with pytest.raises(InsufficientPoints):
        await ledger_helpers.redeem_points(member.id, 1, idempotency_key="k2")


async def test_refund_of_an_unknown_receipt_is_refused(program: Program, clock: FrozenClock) -> None:
    with pytest.raises(PurchaseNotFound):
        await ledger_helpers.refund_purchase(store_code="S1", receipt_id="nope", refund_id="F1", amount=100)
    assert (await row_counts())["IdempotencyRecord"] == 0


async def test_cancel_redemption_twice_is_refused_the_second_time(program: Program, clock: FrozenClock) -> None:
    # given a cancelled redemption
    member = await new_member("uid-rules")
    await give_available(member.id, 100)
    redemption = await ledger_helpers.redeem_points(member.id, 60, idempotency_key="k1")
    await ledger_helpers.cancel_redemption(member.id, redemption.entry_id)
    before = await row_counts()

    # when / then
    with pytest.raises(AlreadyReversed):
        await ledger_helpers.cancel_redemption(member.id, redemption.entry_id)
    assert await row_counts() == before
    assert await balances(member.id) == (100, 0, 100)
    assert await lots(member.id) == [(100, 100, "available")]


async def test_cancel_gives_points_back_to_the_lots_they_came_from(program: Program, clock: FrozenClock) -> None:
    # given a redemption across two lots
    member = await new_member("uid-rules")
    await give_available(member.id, 40, key="a")
    clock.advance(DAY)
    await give_available(member.id, 100, key="b")
    redemption = await ledger_helpers.redeem_points(member.id, 70, idempotency_key="k1")
    assert await lots(member.id) == [(40, 0, "available"), (100, 70, "available")]

    # when
    await ledger_helpers.cancel_redemption(member.id, redemption.entry_id)

    # then
    assert await lots(member.id) == [(40, 40, "available"), (100, 100, "available")]
    assert await balances(member.id) == (140, 0, 140)


async def test_cancel_of_something_that_is_not_a_redemption_is_not_found(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-rules")
    await give_available(member.id, 100)
    credit = await LedgerEntry.get(member_id=member.id)
    with pytest.raises(NotFound):
        await ledger_helpers.cancel_redemption(member.id, credit.id)
    other = await new_member("uid-other")
    redemption = await ledger_helpers.redeem_points(member.id, 10, idempotency_key="k1")
    with pytest.raises(NotFound):
        await ledger_helpers.cancel_redemption(other.id, redemption.entry_id)
    assert await balances(member.id) == (90, 0, 100)


async def test_cancel_after_the_lot_expired_gives_points_back_that_expire_at_once(
    program: Program, clock: FrozenClock
) -> None:
    # given 60 of 100 points redeemed, then the lot expired (taking the other 40)
    member = await new_member("uid-rules")
    await give_available(member.id, 100)
    redemption = await ledger_helpers.redeem_points(member.id, 60, idempotency_key="k1")
    clock.advance(365 * DAY)
    await jobs.expire_points()
    assert await balances(member.id) == (0, 0, 100)

    # when the redemption is cancelled
    await ledger_helpers.cancel_redemption(member.id, redemption.entry_id)

    # then the 60 come back and expire in the same transaction
    assert await balances(member.id) == (0, 0, 100)
    assert await lots(member.id) == [(100, 0, "expired")]
    assert await entry_kinds(member.id) == [
        EntryKind.ADJUSTMENT,
        EntryKind.REDEEM,
        EntryKind.EXPIRE,
        EntryKind.REVERSAL,
        EntryKind.EXPIRE,
    ]
    deltas = await LedgerEntry.filter(member_id=member.id).order_by("id").values_list("delta_available", flat=True)
    assert deltas == [100, -60, -40, 60, -60]


@pytest.mark.parametrize("amount", [0, -5, True, 10**15])
async def test_redeem_rejects_invalid_amounts_and_writes_nothing(
    program: Program, clock: FrozenClock, amount: int
) -> None:
    member = await new_member("uid-rules")
    await give_available(member.id, 100)
    before = await row_counts()
    with pytest.raises(InvalidInput):
        await ledger_helpers.redeem_points(member.id, amount, idempotency_key="k1")
    assert await row_counts() == before


@pytest.mark.parametrize("key", ["", "   ", "x" * 200])
async def test_redeem_and_credit_reject_an_empty_or_overlong_idempotency_key(
    program: Program, clock: FrozenClock, key: str
) -> None:
    member = await new_member("uid-rules")
    await give_available(member.id, 100)
    before = await row_counts()
    with pytest.raises(InvalidInput):
        await ledger_helpers.redeem_points(member.id, 10, idempotency_key=key)
    with pytest.raises(InvalidInput):
        await ledger_helpers.credit_points(member.id, 10, kind=EntryKind.BIRTHDAY, idempotency_key=key)
    assert await row_counts() == before


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"currency": "SEK"}, CurrencyMismatch),
        ({"total": -1}, InvalidInput),
        ({"receipt_id": ""}, InvalidInput),
        ({"store_code": ""}, InvalidInput),
        ({"store_code": "S" * 33}, InvalidInput),
        ({"receipt_id": "R" * 65}, InvalidInput),
        ({"occurred_at": "future"}, InvalidInput),
        ({"occurred_at": "naive"}, InvalidInput),
    ],
)
async def test_purchase_rejects_invalid_input_and_writes_nothing(
    program: Program, clock: FrozenClock, changes: dict[str, object], error: type[Exception]
) -> None:
    # given
    member = await new_member("uid-rules")
    args: dict[str, Any] = {
        "store_code": "S1",
        "receipt_id": "R1",
        "occurred_at": clock.now(),
        "currency": "EUR",
        "total": 10_000,
    }
    times = {"future": clock.now() + timedelta(minutes=5, seconds=1), "naive": clock.now().replace(tzinfo=None)}
    args.update({k: times.get(v, v) if isinstance(v, str) else v for k, v in changes.items()})
    before = await row_counts()

    # when / then
    with pytest.raises(error):
        await ledger_helpers.earn_for_purchase(member.id, **args)
    assert await row_counts() == before
    assert await balances(member.id) == (0, 0, 0)


async def test_purchase_within_the_clock_skew_tolerance_is_accepted(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-rules")
    occurred: datetime = clock.now() + timedelta(minutes=5)
    result = await purchase(member.id, "R1", 10_000, occurred)
    assert result.available_at == occurred + 14 * DAY
    assert await balances(member.id) == (0, 100, 100)


@pytest.mark.parametrize(
    "changes",
    [
        {"amount": 0},
        {"amount": -100},
        {"refund_id": ""},
        {"receipt_id": ""},
        {"store_code": ""},
        {"refund_id": "F" * 65},
    ],
)
async def test_refund_rejects_invalid_input_and_writes_nothing(
    program: Program, clock: FrozenClock, changes: dict[str, object]
) -> None:
    member = await new_member("uid-rules")
    await purchase(member.id, "R1", 10_000, clock.now())
    before = await row_counts()
    args: dict[str, object] = {"store_code": "S1", "receipt_id": "R1", "refund_id": "F1", "amount": 1_000, **changes}
    with pytest.raises(InvalidInput):
        await ledger_helpers.refund_purchase(**args)
    assert await row_counts() == before


async def test_adjustment_of_zero_is_refused(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-rules")
    before = await row_counts()
    with pytest.raises(InvalidInput):
        await ledger_helpers.adjust_points(member.id, 0, idempotency_key="k1", reason="none")
    assert await row_counts() == before


async def test_negative_adjustment_debits_like_a_redemption(program: Program, clock: FrozenClock) -> None:
    member = await new_member("uid-rules")
    await ledger_helpers.adjust_points(member.id, 100, idempotency_key="k1", reason="goodwill")
    await ledger_helpers.adjust_points(member.id, -30, idempotency_key="k2", reason="correction")
    with pytest.raises(InsufficientPoints):
        await ledger_helpers.adjust_points(member.id, -71, idempotency_key="k3", reason="too much")
    assert await balances(member.id) == (70, 0, 100)
    assert await entry_kinds(member.id) == [EntryKind.ADJUSTMENT, EntryKind.ADJUSTMENT]
