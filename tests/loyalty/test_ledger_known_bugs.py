"""Bugs that other loyalty engines shipped, each pinned down by its own test."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from loyalty import jobs, ledger
from loyalty.clock import FrozenClock
from loyalty.errors import RefundExceedsPurchase
from loyalty.members import get_member
from loyalty.models import EntryKind, LedgerEntry, Member, Program, Purchase, Refund
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import (
    balances,
    configure,
    entry_kinds,
    give_available,
    lots,
    new_member,
    purchase,
)

DAY = timedelta(days=1)


async def test_expiry_job_run_twice_deducts_once(program: Program, clock: FrozenClock) -> None:
    # given an expired lot
    member = await new_member("uid-bugs")
    await give_available(member.id, 100)
    clock.advance(366 * DAY)

    # when the job runs twice
    first = await jobs.expire_points()
    second = await jobs.expire_points()

    # then
    assert (first, second) == (1, 0)
    assert await balances(member.id) == (0, 0, 100)
    assert await LedgerEntry.filter(member_id=member.id, kind=EntryKind.EXPIRE).count() == 1


@pytest.mark.postgres_only
async def test_expiry_job_run_concurrently_deducts_once_per_lot(program: Program, clock: FrozenClock) -> None:
    # given 20 members, each with one expired and one live lot
    members = [await new_member(f"uid-bugs-{i}") for i in range(20)]
    for m in members:
        await give_available(m.id, 100, key="old")
    clock.advance(200 * DAY)
    for m in members:
        await give_available(m.id, 7, key="new")
    clock.advance(166 * DAY)

    # when four expiry jobs run at once on separate connections (and an earn for one member races them)
    await asyncio.gather(
        *(jobs.expire_points(batch_size=5) for _ in range(4)),
        purchase(members[0].id, "R1", 1_000, clock.now()),
    )

    # then each expired lot was expired exactly once
    assert await LedgerEntry.filter(kind=EntryKind.EXPIRE).count() == 20
    for m in members:
        assert (await balances(m.id))[0] == 7
        assert await lots(m.id) == [(100, 0, "expired"), (7, 7, "available")] + (
            [(10, 10, "pending")] if m.id == members[0].id else []
        )


async def _member_owing_70_points(clock: FrozenClock) -> Member:
    """A member of a program allowing negative balances, at -70 after a refund of spent points."""
    await configure(allow_negative_balance=True)
    member = await new_member("uid-bugs")
    await purchase(member.id, "R1", 10_000, clock.now() - 15 * DAY)
    await ledger_helpers.redeem_points(member.id, 100, idempotency_key="k1")
    clawback = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=10_000)
    assert (clawback.points_recovered, clawback.unrecovered) == (100, 0)
    assert await balances(member.id) == (-100, 0, 0)
    await give_available(member.id, 30, key="partial-repayment")
    assert await balances(member.id) == (-70, 0, 30)
    return member


async def test_expiry_does_not_deduct_points_that_repaid_a_negative_balance(
    program: Program, clock: FrozenClock
) -> None:
    # given a member at -70 (owing 100, of which 30 newer points repaid some), then 90 more points: balance 20
    member = await _member_owing_70_points(clock)
    clock.advance(DAY)
    await give_available(member.id, 90, key="more")
    assert await balances(member.id) == (20, 0, 120)

    # when the 30-point lot expires, then the 90-point lot
    clock.advance(364 * DAY)
    await jobs.expire_points()
    after_first = await balances(member.id)
    clock.advance(DAY)
    await jobs.expire_points()

    # then the 30 (all debt repayment) cost nothing; of the 90, 70 had repaid debt and only 20 were balance
    assert after_first == (20, 0, 120)
    assert await balances(member.id) == (0, 0, 120)
    deltas = await LedgerEntry.filter(kind=EntryKind.EXPIRE).order_by("id").values_list("delta_available", flat=True)
    assert deltas == [0, -20]


async def test_balance_is_updated_after_expiry(program: Program, clock: FrozenClock) -> None:
    # given a member with 100 points expiring in a year and 20 expiring later
    member = await new_member("uid-bugs")
    await give_available(member.id, 100)
    clock.advance(10 * DAY)
    await give_available(member.id, 20, key="later")
    clock.advance(355 * DAY)

    # when the read path settles the member (no job ran)
    shown = await ledger.settle_member_if_due(await get_member(member.id), clock.now())

    # then the balance shown and the balance stored both lost exactly the expired lot
    assert shown.points_available == 20
    assert await balances(member.id) == (20, 0, 120)
    assert (await Member.get(id=member.id)).next_settle_at == clock.now() + 10 * DAY


async def test_refund_takes_the_points_back(program: Program, clock: FrozenClock) -> None:
    # given a pending purchase of 100 points and a matured one of 50
    member = await new_member("uid-bugs")
    await purchase(member.id, "R0", 5_000, clock.now() - 20 * DAY)
    await purchase(member.id, "R1", 10_000, clock.now())
    assert await balances(member.id) == (50, 100, 150)

    # when the first is refunded in full
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=10_000)

    # then its points are gone: from pending, lifetime, and they never mature
    assert (result.points_reversed, result.points_recovered, result.unrecovered) == (100, 100, 0)
    assert await balances(member.id) == (50, 0, 50)
    clock.advance(15 * DAY)
    await jobs.expire_points()
    assert await balances(member.id) == (50, 0, 50)
    assert await lots(member.id) == [(50, 50, "available"), (100, 0, "void")]


async def test_refund_with_the_same_refund_id_twice_deducts_once(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-bugs")
    await purchase(member.id, "R1", 10_000, clock.now())

    # when the POS sends the same refund twice
    first = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=4_000)
    second = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=4_000)

    # then
    assert first == second
    assert await Refund.all().count() == 1
    assert await balances(member.id) == (0, 60, 60)
    assert (await Purchase.get(receipt_id="R1")).refunded_total == 4_000


async def test_two_refunds_that_together_exceed_the_purchase_are_capped(program: Program, clock: FrozenClock) -> None:
    # given 60.00 of 100.00 refunded
    member = await new_member("uid-bugs")
    await give_available(member.id, 1_000)
    await purchase(member.id, "R1", 10_000, clock.now())
    await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=6_000)

    # when a second refund of 60.00 arrives
    with pytest.raises(RefundExceedsPurchase):
        await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=6_000)
    # and the legitimate rest
    last = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F3", amount=4_000)

    # then exactly what the purchase earned was reversed, and the other points are untouched
    assert last.points_reversed == 40
    assert (await Purchase.get(receipt_id="R1")).points_reversed == 100
    assert await balances(member.id) == (1_000, 0, 1_000)


async def test_concurrent_refunds_that_together_exceed_the_purchase_are_capped(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-bugs")
    await purchase(member.id, "R1", 10_000, clock.now())

    # when three different refunds of 40.00 race
    results = await asyncio.gather(
        *(
            ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id=f"F{i}", amount=4_000)
            for i in range(3)
        ),
        return_exceptions=True,
    )

    # then two pass, one is refused, and no more than 80 points are reversed
    assert sorted(type(r).__name__ for r in results) == ["RefundExceedsPurchase", "RefundResult", "RefundResult"]
    assert await balances(member.id) == (0, 20, 20)


async def test_expiry_never_takes_points_that_were_already_spent(program: Program, clock: FrozenClock) -> None:
    # given lot A (100, expires first) and lot B (100, expires 100 days later)
    member = await new_member("uid-bugs")
    await give_available(member.id, 100, key="a")
    clock.advance(100 * DAY)
    await give_available(member.id, 100, key="b")

    # when 150 are spent, then A's expiry passes
    await ledger_helpers.redeem_points(member.id, 150, idempotency_key="k1")
    clock.advance(265 * DAY)
    await jobs.expire_points()

    # then A had nothing left to expire (the job leaves an empty lot as it is), B keeps its 50
    assert await balances(member.id) == (50, 0, 200)
    assert await lots(member.id) == [(100, 0, "available"), (100, 50, "available")]
    assert await entry_kinds(member.id) == [EntryKind.ADJUSTMENT, EntryKind.ADJUSTMENT, EntryKind.REDEEM]

    # and when B's expiry passes only its remainder goes
    clock.advance(100 * DAY)
    await jobs.expire_points()
    assert await balances(member.id) == (0, 0, 200)
    expiry = await LedgerEntry.get(member_id=member.id, kind=EntryKind.EXPIRE)
    assert expiry.delta_available == -50


async def test_duplicate_receipt_is_accepted_once(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-bugs")
    occurred = clock.now() - timedelta(hours=2)

    # when the till sends the same receipt twice, the second time a day later
    first = await purchase(member.id, "R1", 10_000, occurred)
    clock.advance(DAY)
    second = await purchase(member.id, "R1", 10_000, occurred)

    # then
    assert first == second
    assert await Purchase.all().count() == 1
    assert await balances(member.id) == (0, 100, 100)


async def test_concurrent_cancels_of_one_redemption_give_back_once(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-bugs")
    await give_available(member.id, 100)
    redemption = await ledger_helpers.redeem_points(member.id, 60, idempotency_key="k1")

    # when three cancels race
    results = await asyncio.gather(
        *(ledger_helpers.cancel_redemption(member.id, redemption.entry_id) for _ in range(3)), return_exceptions=True
    )

    # then one reversal, two AlreadyReversed
    assert sorted(type(r).__name__ for r in results) == ["AlreadyReversed", "AlreadyReversed", "int"]
    assert await balances(member.id) == (100, 0, 100)
    assert await LedgerEntry.filter(kind=EntryKind.REVERSAL).count() == 1
