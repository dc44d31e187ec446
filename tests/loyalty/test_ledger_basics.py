from datetime import timedelta

import pytest

from loyalty import jobs
from loyalty.clock import FrozenClock
from loyalty.errors import InsufficientPoints
from loyalty.members import enroll_member
from loyalty.models import EntryKind, LedgerEntry, Member, Program
from tests.loyalty import ledger_helpers


async def _member_with_available(clock: FrozenClock, points: int) -> Member:
    member, _ = await enroll_member("uid-basics", email="a@example.com")
    await ledger_helpers.earn_for_purchase(
        member.id,
        store_code="S1",
        receipt_id="R1",
        occurred_at=clock.now(),
        currency="EUR",
        total=points * 100,
    )
    clock.advance(timedelta(days=15))
    await jobs.expire_points()
    return await Member.get(id=member.id)


async def test_earn_is_pending_until_the_return_window_ends(program: Program, clock: FrozenClock) -> None:
    member, _ = await enroll_member("uid-1")

    result = await ledger_helpers.earn_for_purchase(
        member.id, store_code="S1", receipt_id="R1", occurred_at=clock.now(), currency="EUR", total=12_345
    )

    member = await Member.get(id=member.id)
    assert (result.points, member.points_pending, member.points_available) == (123, 123, 0)
    clock.advance(timedelta(days=14))
    await jobs.expire_points()
    member = await Member.get(id=member.id)
    assert (member.points_pending, member.points_available, member.lifetime_earned) == (0, 123, 123)


async def test_redeem_beyond_balance_is_refused_and_writes_nothing(program: Program, clock: FrozenClock) -> None:
    member = await _member_with_available(clock, 100)
    entries_before = await LedgerEntry.filter(member_id=member.id).count()

    with pytest.raises(InsufficientPoints):
        await ledger_helpers.redeem_points(member.id, 101, idempotency_key="k1")

    assert await LedgerEntry.filter(member_id=member.id).count() == entries_before
    assert (await Member.get(id=member.id)).points_available == 100


async def test_redeem_then_cancel_gives_back_exactly(program: Program, clock: FrozenClock) -> None:
    member = await _member_with_available(clock, 100)

    redemption = await ledger_helpers.redeem_points(member.id, 60, idempotency_key="k1")
    await ledger_helpers.cancel_redemption(member.id, redemption.entry_id)

    member = await Member.get(id=member.id)
    assert member.points_available == 100
    kinds = await LedgerEntry.filter(member_id=member.id).order_by("id").values_list("kind", flat=True)
    assert kinds == [EntryKind.EARN, EntryKind.MATURE, EntryKind.REDEEM, EntryKind.REVERSAL]


async def test_full_refund_reverses_exactly_the_purchase(program: Program, clock: FrozenClock) -> None:
    member = await _member_with_available(clock, 100)

    first = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=3_333)
    second = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=6_667)

    assert (first.points_reversed, second.points_reversed) == (33, 67)
    assert (await Member.get(id=member.id)).points_available == 0
