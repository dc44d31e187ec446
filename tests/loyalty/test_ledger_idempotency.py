"""Idempotency: retries replay the first answer, concurrent duplicates have one effect, reused keys are refused."""

from __future__ import annotations

import asyncio
from datetime import timedelta, timezone

import pytest

from loyalty.clock import FrozenClock
from loyalty.errors import DuplicateIdempotencyKey, InsufficientPoints
from loyalty.models import EntryKind, IdempotencyRecord, LedgerEntry, Program, Purchase, Refund
from tests.loyalty import ledger_helpers
from tests.loyalty.ledger_helpers import balances, give_available, new_member, purchase, row_counts


async def test_same_redemption_key_sent_5_times_concurrently_has_one_effect_and_5_identical_answers(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-idem")
    await give_available(member.id, 100)

    # when
    answers = await asyncio.gather(
        *(ledger_helpers.redeem_points(member.id, 30, idempotency_key="checkout-1") for _ in range(5))
    )

    # then
    assert answers == [answers[0]] * len(answers)
    assert answers[0].amount == 30
    assert answers[0].balance == 70
    assert await balances(member.id) == (70, 0, 100)
    assert await LedgerEntry.filter(member_id=member.id, kind=EntryKind.REDEEM).count() == 1
    assert await IdempotencyRecord.filter(scope="redeem").count() == 1


async def test_redemption_retry_after_other_spending_replays_the_first_answer(
    program: Program, clock: FrozenClock
) -> None:
    # given a first redemption and then more spending
    member = await new_member("uid-idem")
    await give_available(member.id, 100)
    first = await ledger_helpers.redeem_points(member.id, 30, idempotency_key="k1")
    await ledger_helpers.redeem_points(member.id, 50, idempotency_key="k2")

    # when the first request is retried (it would not fit any more)
    retry = await ledger_helpers.redeem_points(member.id, 30, idempotency_key="k1")

    # then it replays the stored answer, including the balance at that time
    assert retry == first == ledger_helpers.Redemption(first.entry_id, 30, 70)
    assert await balances(member.id) == (20, 0, 100)


async def test_redemption_key_reused_with_a_different_amount_is_refused_and_writes_nothing(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-idem")
    await give_available(member.id, 100)
    await ledger_helpers.redeem_points(member.id, 30, idempotency_key="k1")
    before = await row_counts()

    # when / then
    with pytest.raises(DuplicateIdempotencyKey):
        await ledger_helpers.redeem_points(member.id, 31, idempotency_key="k1")
    assert await row_counts() == before
    assert await balances(member.id) == (70, 0, 100)


async def test_failed_redemption_leaves_no_record_so_a_retry_runs_again(program: Program, clock: FrozenClock) -> None:
    # given a redemption refused for lack of points
    member = await new_member("uid-idem")
    with pytest.raises(InsufficientPoints):
        await ledger_helpers.redeem_points(member.id, 40, idempotency_key="k1")
    assert await IdempotencyRecord.all().count() == 0

    # when points arrive and the same request is retried
    await give_available(member.id, 50)
    result = await ledger_helpers.redeem_points(member.id, 40, idempotency_key="k1")

    # then it runs
    assert result.balance == 10
    assert await balances(member.id) == (10, 0, 50)


async def test_redemption_keys_are_scoped_per_member(program: Program, clock: FrozenClock) -> None:
    # given two members with points
    alice = await new_member("uid-alice")
    bob = await new_member("uid-bob")
    await give_available(alice.id, 100)
    await give_available(bob.id, 100)

    # when both use the same client key
    await ledger_helpers.redeem_points(alice.id, 10, idempotency_key="same")
    await ledger_helpers.redeem_points(bob.id, 20, idempotency_key="same")

    # then each has their own effect
    assert (await balances(alice.id), await balances(bob.id)) == ((90, 0, 100), (80, 0, 100))


async def test_same_receipt_sent_5_times_concurrently_is_accepted_once(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-idem")

    # when
    answers = await asyncio.gather(
        *(purchase(member.id, "R-1", 12_345, clock.now() - timedelta(hours=1)) for _ in range(5))
    )

    # then
    assert answers == [answers[0]] * len(answers)
    assert answers[0].points == 123
    assert await Purchase.all().count() == 1
    assert await balances(member.id) == (0, 123, 123)
    assert await LedgerEntry.filter(member_id=member.id, kind=EntryKind.EARN).count() == 1


async def test_same_receipt_with_a_different_total_is_refused_and_writes_nothing(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-idem")
    occurred = clock.now() - timedelta(hours=1)
    await purchase(member.id, "R-1", 10_000, occurred)
    before = await row_counts()

    # when / then a different total, or another member, under the same store and receipt id
    with pytest.raises(DuplicateIdempotencyKey):
        await purchase(member.id, "R-1", 10_001, occurred)
    other = await new_member("uid-other")
    before = await row_counts()
    with pytest.raises(DuplicateIdempotencyKey):
        await purchase(other.id, "R-1", 10_000, occurred)
    assert await row_counts() == before
    assert await balances(member.id) == (0, 100, 100)
    assert await balances(other.id) == (0, 0, 0)


async def test_same_receipt_id_in_another_store_is_a_different_purchase(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-idem")
    occurred = clock.now() - timedelta(hours=1)

    # when
    await purchase(member.id, "R-1", 10_000, occurred, store_code="S1")
    await purchase(member.id, "R-1", 10_000, occurred, store_code="S2")

    # then
    assert await Purchase.all().count() == 2
    assert await balances(member.id) == (0, 200, 200)


async def test_same_refund_sent_5_times_concurrently_claws_back_once(program: Program, clock: FrozenClock) -> None:
    # given
    member = await new_member("uid-idem")
    await purchase(member.id, "R-1", 10_000, clock.now() - timedelta(hours=1))

    # when
    answers = await asyncio.gather(
        *(
            ledger_helpers.refund_purchase(store_code="S1", receipt_id="R-1", refund_id="F-1", amount=4_000)
            for _ in range(5)
        )
    )

    # then
    assert answers == [answers[0]] * len(answers)
    assert (answers[0].points_reversed, answers[0].points_recovered, answers[0].unrecovered) == (40, 40, 0)
    assert await Refund.all().count() == 1
    assert await balances(member.id) == (0, 60, 60)


async def test_receipt_ids_containing_the_separator_do_not_collide_across_stores(
    program: Program, clock: FrozenClock
) -> None:
    # given store "A" receipt "B:C" and store "A:B" receipt "C" (a naive "store:receipt" key is "A:B:C" for both)
    member = await new_member("uid-idem")
    occurred = clock.now()

    # when both are recorded with the same amounts
    first = await purchase(member.id, "B:C", 10_000, occurred, store_code="A")
    second = await purchase(member.id, "C", 10_000, occurred, store_code="A:B")

    # then both are purchases of their own
    assert first.purchase_id != second.purchase_id
    assert await Purchase.all().count() == 2
    assert await balances(member.id) == (0, 200, 200)


async def test_receipt_retry_stating_the_same_instant_in_another_offset_is_the_same_request(
    program: Program, clock: FrozenClock
) -> None:
    # given
    member = await new_member("uid-idem")
    occurred = clock.now() - timedelta(hours=1)
    first = await purchase(member.id, "R-1", 10_000, occurred)

    # when the till retries with a local UTC+01:00 timestamp for the same moment
    retry = await purchase(member.id, "R-1", 10_000, occurred.astimezone(timezone(timedelta(hours=1))))

    # then it is a replay, not a reused key
    assert retry == first
    assert await balances(member.id) == (0, 100, 100)
