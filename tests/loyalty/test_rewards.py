"""The reward catalog and redeeming points for rewards: rules, edges and bad input (nothing written)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from tortoise.transactions import in_transaction

from loyalty import donations, rewards
from loyalty.clock import FrozenClock
from loyalty.errors import DuplicateIdempotencyKey, InsufficientPoints, InvalidInput
from loyalty.members import enroll_member
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    Member,
    OutboxEvent,
    Program,
    Reward,
    RewardKind,
    StampCard,
    Tier,
    Voucher,
    VoucherStatus,
)
from loyalty.program import load_program
from loyalty.vouchers import issue_voucher
from tests.loyalty import ledger_helpers


async def member_with(uid: str, points: int) -> Member:
    member, _ = await enroll_member(uid)
    if points:
        await ledger_helpers.credit_points(member.id, points, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    return await Member.get(id=member.id)


async def reward(**fields: Any) -> Reward:
    defaults: dict[str, Any] = {"name": "Coffee", "kind": RewardKind.FREE_PRODUCT, "points_cost": 25}
    return await Reward.create(**(defaults | fields))


async def written(member_id: int) -> tuple[int, int, int, int]:
    """(available points, ledger entries, vouchers, outbox events) of a member."""
    member = await Member.get(id=member_id)
    return (
        member.points_available,
        await LedgerEntry.filter(member_id=member_id).count(),
        await Voucher.filter(member_id=member_id).count(),
        await OutboxEvent.filter(member_id=member_id).count(),
    )


async def test_redeeming_debits_the_cost_and_issues_a_voucher_that_remembers_the_debit(
    program: Program, clock: FrozenClock
) -> None:
    member = await member_with("u1", 100)
    coffee = await reward(points_cost=25, stock=3, voucher_valid_days=14)

    voucher_id = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="k1")

    voucher = await Voucher.get(id=voucher_id)
    entry = await LedgerEntry.get(id=voucher.ledger_entry_id)
    assert (voucher.member_id, voucher.reward_id, voucher.points_cost, voucher.status) == (
        member.id,
        coffee.id,
        25,
        VoucherStatus.ACTIVE,
    )
    assert voucher.expires_at == clock.now() + timedelta(days=14)
    assert (entry.kind, entry.delta_available) == (EntryKind.REDEEM, -25)
    assert (await Member.get(id=member.id)).points_available == 75
    assert (await Reward.get(id=coffee.id)).stock == 2


async def test_a_retry_with_the_same_key_returns_the_same_voucher_and_debits_once(program: Program) -> None:
    member = await member_with("u1", 100)
    coffee = await reward()

    first = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="k1")
    second = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="k1")

    assert first == second
    assert await written(member.id) == (75, 2, 1, 4)
    assert (await Reward.get(id=coffee.id)).stock is None  # unlimited stays unlimited


async def test_the_same_key_for_another_reward_is_refused_and_writes_nothing(program: Program) -> None:
    member = await member_with("u1", 100)
    coffee, cake = await reward(), await reward(name="Cake")
    await rewards.redeem_reward(member.id, coffee.id, idempotency_key="k1")
    before = await written(member.id)

    with pytest.raises(DuplicateIdempotencyKey):
        await rewards.redeem_reward(member.id, cake.id, idempotency_key="k1")

    assert await written(member.id) == before


@pytest.mark.parametrize("key", ["", "   ", "x" * 200])
async def test_a_missing_or_oversized_idempotency_key_is_invalid(program: Program, key: str) -> None:
    member = await member_with("u1", 100)
    coffee = await reward()

    with pytest.raises(InvalidInput) as raised:
        await rewards.redeem_reward(member.id, coffee.id, idempotency_key=key)

    assert raised.value.field == "idempotency_key"
    assert await written(member.id) == (100, 1, 0, 2)


async def test_exactly_enough_points_redeem_and_one_short_is_insufficient(program: Program) -> None:
    rich, poor = await member_with("rich", 25), await member_with("poor", 24)
    coffee = await reward(points_cost=25, stock=5)

    await rewards.redeem_reward(rich.id, coffee.id, idempotency_key="k")
    with pytest.raises(InsufficientPoints) as raised:
        await rewards.redeem_reward(poor.id, coffee.id, idempotency_key="k")

    assert (raised.value.message, raised.value.field) == ("this reward costs 25 points; 24 are available", "reward_id")

    assert await written(poor.id) == (24, 1, 0, 2)
    assert (await Reward.get(id=coffee.id)).stock == 4  # the refused redemption's unit was put back


async def test_the_last_unit_goes_to_the_first_redeemer_and_the_second_is_out_of_stock(program: Program) -> None:
    first, second = await member_with("a", 100), await member_with("b", 100)
    last = await reward(stock=1)

    await rewards.redeem_reward(first.id, last.id, idempotency_key="k")
    with pytest.raises(rewards.OutOfStock):
        await rewards.redeem_reward(second.id, last.id, idempotency_key="k")

    assert (await Reward.get(id=last.id)).stock == 0
    assert await written(second.id) == (100, 1, 0, 2)


async def test_the_per_member_limit_allows_exactly_that_many(program: Program) -> None:
    member = await member_with("u1", 100)
    twice = await reward(per_member_limit=2)

    await rewards.redeem_reward(member.id, twice.id, idempotency_key="k1")
    await rewards.redeem_reward(member.id, twice.id, idempotency_key="k2")
    with pytest.raises(rewards.LimitReached):
        await rewards.redeem_reward(member.id, twice.id, idempotency_key="k3")

    assert await written(member.id) == (50, 3, 2, 6)


async def test_a_stamp_card_voucher_for_the_same_reward_uses_no_limit_slot(program: Program) -> None:
    member = await member_with("u1", 100)
    once = await reward(per_member_limit=1)
    card = await StampCard.create(name="Coffee card", stamps_required=5, reward=once)
    async with in_transaction() as conn:
        await issue_voucher(conn, member.id, reward=once, stamp_card=card)

    await rewards.redeem_reward(member.id, once.id, idempotency_key="k")

    assert await Voucher.filter(member_id=member.id, reward_id=once.id).count() == 2


async def test_a_tier_exclusive_reward_needs_that_tier_or_higher(program: Program) -> None:
    tiers = {t.name: t for t in await Tier.all()}
    silver_only = await reward(min_tier_id=tiers["Silver"].id)
    member_tier, silver, gold = [await member_with(uid, 100) for uid in ("m", "s", "g")]
    await Member.filter(id=silver.id).update(tier_id=tiers["Silver"].id)
    await Member.filter(id=gold.id).update(tier_id=tiers["Gold"].id)

    with pytest.raises(rewards.NotEligible):
        await rewards.redeem_reward(member_tier.id, silver_only.id, idempotency_key="k")
    await rewards.redeem_reward(silver.id, silver_only.id, idempotency_key="k")
    await rewards.redeem_reward(gold.id, silver_only.id, idempotency_key="k")

    assert await written(member_tier.id) == (100, 1, 0, 2)
    assert await Voucher.filter(reward_id=silver_only.id).count() == 2


async def test_the_validity_window_includes_its_start_and_excludes_its_end(
    program: Program, clock: FrozenClock
) -> None:
    member = await member_with("u1", 1000)
    start = clock.now() + timedelta(hours=1)
    windowed = await reward(valid_from=start, valid_until=start + timedelta(days=1))

    clock.set(start - timedelta(seconds=1))
    with pytest.raises(rewards.RewardNotAvailable):
        await rewards.redeem_reward(member.id, windowed.id, idempotency_key="early")
    clock.set(start)
    await rewards.redeem_reward(member.id, windowed.id, idempotency_key="start")
    clock.set(start + timedelta(days=1) - timedelta(seconds=1))
    await rewards.redeem_reward(member.id, windowed.id, idempotency_key="last-second")
    clock.set(start + timedelta(days=1))
    with pytest.raises(rewards.RewardNotAvailable):
        await rewards.redeem_reward(member.id, windowed.id, idempotency_key="end")

    assert await Voucher.filter(member_id=member.id).count() == 2


async def test_an_inactive_or_unknown_reward_is_refused_and_writes_nothing(program: Program) -> None:
    member = await member_with("u1", 100)
    retired = await reward(active=False)

    with pytest.raises(rewards.RewardNotAvailable):
        await rewards.redeem_reward(member.id, retired.id, idempotency_key="k")
    with pytest.raises(rewards.RewardNotFound):
        await rewards.redeem_reward(member.id, retired.id + 1, idempotency_key="k")

    assert await written(member.id) == (100, 1, 0, 2)


async def test_the_catalog_lists_visible_rewards_in_order_with_the_reason_each_is_unavailable(
    program: Program, clock: FrozenClock
) -> None:
    tiers = {t.name: t for t in await Tier.all()}
    member = await member_with("u1", 60)
    big = await reward(name="Big", points_cost=400)
    small = await reward(name="Small", points_cost=25)
    gold = await reward(name="Gold", points_cost=10, min_tier_id=tiers["Gold"].id)
    gone = await reward(name="Gone", points_cost=10, stock=0)
    once = await reward(name="Once", points_cost=30, per_member_limit=1, sort_order=1)
    await reward(name="Retired", active=False)
    await reward(name="Later", valid_from=clock.now() + timedelta(days=1))
    await reward(name="Over", valid_until=clock.now())
    await rewards.redeem_reward(member.id, once.id, idempotency_key="k")
    member = await Member.get(id=member.id)

    items = await rewards.catalog(member, await load_program(), clock.now(), limit=10)

    assert [(i.reward.id, i.unavailable) for i in items] == [
        (gold.id, rewards.Unavailable.NOT_ELIGIBLE),
        (gone.id, rewards.Unavailable.OUT_OF_STOCK),
        (small.id, None),
        (big.id, rewards.Unavailable.INSUFFICIENT_POINTS),
        (once.id, rewards.Unavailable.LIMIT_REACHED),
    ]


async def test_the_catalog_pages_by_keyset(program: Program, clock: FrozenClock) -> None:
    member = await member_with("u1", 0)
    made = [await reward(name=f"R{i}", points_cost=cost) for i, cost in enumerate([50, 25, 25, 100, 60])]
    program_ = await load_program()

    first = await rewards.catalog(member, program_, clock.now(), limit=2)
    rest = await rewards.catalog(member, program_, clock.now(), limit=10, after=rewards.catalog_key(first[-1].reward))

    assert [i.reward.id for i in first + rest] == [made[1].id, made[2].id, made[0].id, made[4].id, made[3].id]


async def test_a_donation_is_fulfilled_at_once_and_counted_per_cause(program: Program) -> None:
    member = await member_with("u1", 300)
    trees = await reward(name="Plant a tree", kind=RewardKind.DONATION, points_cost=100, value=500, cause="Forests")
    sea = await reward(name="Clean a beach", kind=RewardKind.DONATION, points_cost=50, value=200, cause="Oceans")

    first = await rewards.redeem_reward(member.id, trees.id, idempotency_key="k1")
    await rewards.redeem_reward(member.id, trees.id, idempotency_key="k2")
    await rewards.redeem_reward(member.id, sea.id, idempotency_key="k3")

    assert (await Voucher.get(id=first)).status == VoucherStatus.REDEEMED
    assert await donations.donation_totals() == [
        donations.DonationTotal("Forests", 1000, 2),
        donations.DonationTotal("Oceans", 200, 1),
    ]
    assert await OutboxEvent.filter(type="voucher.redeemed").count() == 3
