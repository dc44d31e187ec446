"""Single use under real concurrency (PostgreSQL: asyncio.gather over the pool runs transactions in parallel)."""

from __future__ import annotations

import asyncio

import pytest
from tortoise.transactions import in_transaction

from loyalty import vouchers
from loyalty.actors import Actor
from loyalty.members import enroll_member
from loyalty.models import AuditLog, OutboxEvent, Program, StaffRole, Voucher, VoucherStatus


@pytest.mark.postgres_only
async def test_50_simultaneous_redemptions_of_one_voucher_let_exactly_one_through(program: Program) -> None:
    # given one active voucher and 50 tills (cashiers) scanning it at the same moment
    member, _ = await enroll_member("u-race")
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, member.id)
    tills = [Actor(kind="staff", id=n, role=StaffRole.CASHIER, store_codes=("S1",)) for n in range(50)]

    # when
    results = await asyncio.gather(
        *(vouchers.redeem_voucher(till, code=voucher.code, store_code="S1") for till in tills), return_exceptions=True
    )

    # then one succeeded, 49 were told it is already redeemed; one event, one audit entry
    assert sum(isinstance(r, Voucher) for r in results) == 1
    assert sum(isinstance(r, vouchers.AlreadyRedeemed) for r in results) == 49
    assert (await Voucher.get(id=voucher.id)).status == VoucherStatus.REDEEMED
    assert await OutboxEvent.filter(type="voucher.redeemed").count() == 1
    assert await AuditLog.filter(action="voucher.redeem").count() == 1


@pytest.mark.postgres_only
async def test_a_double_tap_on_a_listed_voucher_redeems_once_and_both_taps_answer_alike(program: Program) -> None:
    # given one active voucher on the till's list, and its one-tap button sent 10 times at once with its key
    member, _ = await enroll_member("u-tap")
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, member.id)
    till = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",))

    # when
    results = await asyncio.gather(
        *(
            vouchers.redeem_member_voucher(
                till, member_id=member.id, voucher_id=voucher.id, store_code="S1", idempotency_key="tap-1"
            )
            for _ in range(10)
        )
    )

    # then every tap got the one redemption; one event, one audit entry
    assert set(results) == {vouchers.VoucherRedemption(voucher.id, member.id, "S1", results[0].redeemed_at)}
    assert (await Voucher.get(id=voucher.id)).status == VoucherStatus.REDEEMED
    assert await OutboxEvent.filter(type="voucher.redeemed").count() == 1
    assert await AuditLog.filter(action="voucher.redeem").count() == 1
