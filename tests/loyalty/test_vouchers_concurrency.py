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
