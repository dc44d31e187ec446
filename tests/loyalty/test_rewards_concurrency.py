"""Stock under real concurrency (PostgreSQL: asyncio.gather over the connection pool runs transactions in parallel)."""

from __future__ import annotations

import asyncio

import pytest

from loyalty import rewards
from loyalty.members import enroll_member
from loyalty.models import EntryKind, Member, Program, Reward, RewardKind, Voucher
from tests.loyalty import ledger_helpers


@pytest.mark.postgres_only
async def test_20_members_racing_for_5_units_get_exactly_5_vouchers(program: Program) -> None:
    # given 20 members with enough points and a reward with 5 units left
    members = []
    for n in range(20):
        member, _ = await enroll_member(f"racer-{n}")
        await ledger_helpers.credit_points(member.id, 100, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
        members.append(member)
    scarce = await Reward.create(name="Concert", kind=RewardKind.EXPERIENCE, points_cost=60, stock=5)

    # when all of them redeem at once
    results = await asyncio.gather(
        *(rewards.redeem_reward(m.id, scarce.id, idempotency_key="go") for m in members), return_exceptions=True
    )

    # then exactly 5 got a voucher and paid; the other 15 were told it is out of stock and kept their points
    winners = [m for m, r in zip(members, results, strict=True) if isinstance(r, int)]
    assert len(winners) == 5
    assert all(isinstance(r, (int, rewards.OutOfStock)) for r in results), results
    assert (await Reward.get(id=scarce.id)).stock == 0
    assert await Voucher.filter(reward_id=scarce.id).count() == 5
    balances = {m.id: m.points_available for m in await Member.all()}
    assert sorted(balances.values()) == [40] * 5 + [100] * 15
    assert {m.id for m in winners} == {m for m, points in balances.items() if points == 40}
