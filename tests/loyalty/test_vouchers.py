"""Vouchers: issuing, codes, cancelling, expiry and the member's list."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from loyalty import jobs, rewards, vouchers
from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, InvalidInput
from loyalty.members import enroll_member
from loyalty.models import (
    EntryKind,
    Member,
    OutboxEvent,
    PointsLot,
    Program,
    Reward,
    RewardKind,
    StaffRole,
    Voucher,
    VoucherStatus,
)
from tests.loyalty import ledger_helpers


async def test_issue_voucher_without_reward_is_active_for_30_days_and_emits_an_event(
    program: Program, clock: FrozenClock
) -> None:
    member, _ = await enroll_member("u-issue")

    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, member.id)

    stored = await Voucher.get(id=voucher.id)
    assert (stored.member_id, stored.status, stored.points_cost, stored.reward_id, stored.ledger_entry_id) == (
        member.id,
        VoucherStatus.ACTIVE,
        0,
        None,
        None,
    )
    assert (stored.issued_at, stored.expires_at) == (clock.now(), clock.now() + timedelta(days=30))
    event = await OutboxEvent.get(type="voucher.issued")
    assert event.member_id == member.id
    assert event.payload["voucher_id"] == voucher.id
    assert voucher.code not in str(event.payload)


async def test_issue_voucher_for_a_reward_uses_its_validity(program: Program, clock: FrozenClock) -> None:
    member, _ = await enroll_member("u-issue-r")
    reward = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=25, voucher_valid_days=7)

    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, member.id, reward=reward, points_cost=25)

    stored = await Voucher.get(id=voucher.id)
    assert (stored.reward_id, stored.points_cost, stored.expires_at) == (
        reward.id,
        25,
        clock.now() + timedelta(days=7),
    )


def test_codes_are_16_crockford_characters_and_differ() -> None:
    codes = {vouchers.new_code() for _ in range(1000)}

    assert len(codes) == 1000
    assert all(len(code) == 16 and set(code) <= set(vouchers.CODE_ALPHABET) for code in codes)
    assert len(vouchers.CODE_ALPHABET) ** vouchers.CODE_LENGTH >= 10**9 * 10**15


def test_barcode_value_and_typed_forms_normalize_to_the_code() -> None:
    code = "0123456789ABCDEF"

    assert vouchers.barcode_value(code) == "V:0123456789ABCDEF"
    assert vouchers.normalize_code(vouchers.barcode_value(code)) == code
    assert vouchers.normalize_code(" o123-4567-89ab-cdef ") == code
    assert vouchers.normalize_code("0I23 4567 89AB CDEF") == "0123456789ABCDEF"
    assert vouchers.display_code(code) == "0123-4567-89AB-CDEF"


# --- cancelling -------------------------------------------------------------------------------------------


async def member_with(clock: FrozenClock, uid: str, *lots: int) -> Member:
    """A member with one available lot per amount, oldest first (a day apart, so they expire in that order)."""
    member, _ = await enroll_member(uid)
    for n, amount in enumerate(lots):
        await ledger_helpers.credit_points(member.id, amount, kind=EntryKind.ADJUSTMENT, idempotency_key=f"seed-{n}")
        clock.advance(timedelta(days=1))
    return await Member.get(id=member.id)


async def lot_remaining(member_id: int) -> list[int]:
    return list(await PointsLot.filter(member_id=member_id).order_by("id").values_list("remaining", flat=True))


async def test_cancelling_gives_back_exactly_the_lots_it_took_and_the_stock(
    program: Program, clock: FrozenClock
) -> None:
    member = await member_with(clock, "u-cancel", 30, 50)
    cake = await Reward.create(name="Cake", kind=RewardKind.FREE_PRODUCT, points_cost=60, stock=2)
    voucher_id = await rewards.redeem_reward(member.id, cake.id, idempotency_key="k")
    assert await lot_remaining(member.id) == [0, 20]

    cancelled = await vouchers.cancel_voucher(member.id, voucher_id)

    assert cancelled.status == VoucherStatus.CANCELLED
    assert await lot_remaining(member.id) == [30, 50]
    assert (await Member.get(id=member.id)).points_available == 80
    assert (await Reward.get(id=cake.id)).stock == 2
    stored = await Voucher.get(id=voucher_id)
    assert (stored.status, stored.cancelled_at) == (VoucherStatus.CANCELLED, clock.now())
    assert await OutboxEvent.filter(type="voucher.cancelled", member_id=member.id).count() == 1


async def test_a_cancelled_voucher_frees_its_per_member_limit_slot(program: Program, clock: FrozenClock) -> None:
    member = await member_with(clock, "u-slot", 100)
    once = await Reward.create(name="Once", kind=RewardKind.AMOUNT_OFF, points_cost=10, value=500, per_member_limit=1)
    first = await rewards.redeem_reward(member.id, once.id, idempotency_key="k1")

    await vouchers.cancel_voucher(member.id, first)
    second = await rewards.redeem_reward(member.id, once.id, idempotency_key="k2")

    assert second != first


async def test_cancel_refusals_have_precise_codes_and_write_nothing(program: Program, clock: FrozenClock) -> None:
    member = await member_with(clock, "u-refuse", 100)
    other = await member_with(clock, "u-other", 100)
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10, voucher_valid_days=1)
    redeemed = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="r")
    cancelled = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="c")
    expiring = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="e")
    foreign = await rewards.redeem_reward(other.id, coffee.id, idempotency_key="f")
    till = Actor(kind="staff", id=1, role=StaffRole.CASHIER)
    await vouchers.redeem_voucher(till, code=(await Voucher.get(id=redeemed)).code, store_code="S1")
    await vouchers.cancel_voucher(member.id, cancelled)
    async with in_transaction() as conn:
        free = await vouchers.issue_voucher(conn, member.id)
    clock.advance(timedelta(days=1))  # `expiring` expires this very second
    before = (await lot_remaining(member.id), (await Member.get(id=member.id)).points_available)

    failures = {}
    for name, voucher_id in [
        ("redeemed", redeemed),
        ("cancelled", cancelled),
        ("expired", expiring),
        ("foreign", foreign),
        ("missing", foreign + 100),
        ("free", free.id),
    ]:
        with pytest.raises(DomainError) as raised:
            await vouchers.cancel_voucher(member.id, voucher_id)
        failures[name] = (raised.value.code, raised.value.field)

    assert failures == {
        "redeemed": ("ALREADY_REDEEMED", "voucher_id"),
        "cancelled": ("ALREADY_CANCELLED", "voucher_id"),
        "expired": ("VOUCHER_EXPIRED", "voucher_id"),
        "foreign": ("VOUCHER_NOT_FOUND", "voucher_id"),
        "missing": ("VOUCHER_NOT_FOUND", "voucher_id"),
        "free": ("NOT_CANCELLABLE", "voucher_id"),
    }
    assert (await lot_remaining(member.id), (await Member.get(id=member.id)).points_available) == before
    assert (await Voucher.get(id=foreign)).status == VoucherStatus.ACTIVE


# --- expiry -------------------------------------------------------------------------------------------------


async def test_a_voucher_is_usable_until_the_second_before_it_expires(program: Program, clock: FrozenClock) -> None:
    member = await member_with(clock, "u-exp")
    async with in_transaction() as conn:
        first = await vouchers.issue_voucher(conn, member.id)
        second = await vouchers.issue_voucher(conn, member.id)
    till = Actor(kind="staff", id=1, role=StaffRole.CASHIER)

    clock.set(first.expires_at - timedelta(seconds=1))
    await vouchers.redeem_voucher(till, code=first.code, store_code="S1")
    clock.set(second.expires_at)
    with pytest.raises(vouchers.VoucherExpired):
        await vouchers.redeem_voucher(till, code=second.code, store_code="S1")

    assert (await Voucher.get(id=first.id)).status == VoucherStatus.REDEEMED
    assert (await Voucher.get(id=second.id)).status == VoucherStatus.EXPIRED  # marked lazily by the attempt
    assert await OutboxEvent.filter(type="voucher.expired").count() == 1


async def test_the_expiry_job_marks_due_vouchers_once_and_keeps_the_points_spent(
    program: Program, clock: FrozenClock
) -> None:
    member = await member_with(clock, "u-job", 100)
    coffee = await Reward.create(name="Coffee", kind=RewardKind.FREE_PRODUCT, points_cost=10, voucher_valid_days=2)
    due = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="a")
    clock.advance(timedelta(days=1))
    later = await rewards.redeem_reward(member.id, coffee.id, idempotency_key="b")
    clock.advance(timedelta(days=1))

    assert await jobs.expire_vouchers() == 1
    assert await jobs.expire_vouchers() == 0

    assert (await Voucher.get(id=due)).status == VoucherStatus.EXPIRED
    assert (await Voucher.get(id=later)).status == VoucherStatus.ACTIVE
    assert (await Member.get(id=member.id)).points_available == 80
    assert await OutboxEvent.filter(type="voucher.expired").count() == 1


# --- the member's list --------------------------------------------------------------------------------------


async def test_the_list_shows_usable_vouchers_by_expiry_then_the_rest_newest_first_in_pages(
    program: Program, clock: FrozenClock
) -> None:
    member = await member_with(clock, "u-list")
    short = await Reward.create(name="Short", kind=RewardKind.FREE_PRODUCT, points_cost=0, voucher_valid_days=3)
    long = await Reward.create(name="Long", kind=RewardKind.FREE_PRODUCT, points_cost=0, voucher_valid_days=10)
    till = Actor(kind="staff", id=1, role=StaffRole.CASHIER)
    async with in_transaction() as conn:
        v_long = await vouchers.issue_voucher(conn, member.id, reward=long)
        v_short = await vouchers.issue_voucher(conn, member.id, reward=short)
        v_used = await vouchers.issue_voucher(conn, member.id, reward=long)
        v_expired = await vouchers.issue_voucher(conn, member.id, reward=short)
        v_mid = await vouchers.issue_voucher(conn, member.id)  # 30 days
    await vouchers.redeem_voucher(till, code=v_used.code, store_code="S1")
    clock.advance(timedelta(days=2))
    async with in_transaction() as conn:
        v_new = await vouchers.issue_voucher(conn, member.id, reward=short)  # expires after v_short
    clock.advance(timedelta(days=1))  # v_short and v_expired expire now (v_expired never marked)
    await Voucher.filter(id=v_short.id).update(status=VoucherStatus.EXPIRED)

    pages, after = [], None
    while True:
        page = await vouchers.voucher_page(member.id, at=clock.now(), limit=2, after=after)
        pages.append([v.id for _, v in page])
        if len(page) < 2:
            break
        after = page[-1][0]

    assert [i for p in pages for i in p] == [v_new.id, v_long.id, v_mid.id, v_expired.id, v_used.id, v_short.id]
    by_status = {
        status: [v.id for v in await vouchers.member_vouchers(member.id, at=clock.now(), limit=10, status=status)]
        for status in VoucherStatus
    }
    assert by_status == {
        VoucherStatus.ACTIVE: [v_new.id, v_long.id, v_mid.id],
        VoucherStatus.REDEEMED: [v_used.id],
        VoucherStatus.CANCELLED: [],
        VoucherStatus.EXPIRED: [v_expired.id, v_short.id],
    }
    with pytest.raises(InvalidInput):  # a position that is not one of this member's vouchers
        await vouchers.member_vouchers(member.id, at=clock.now(), limit=10, after=vouchers.VoucherKey(0, 10**6))


# --- one tap at the till: a listed voucher by id ----------------------------------------------------------

TILL = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",))


async def test_a_listed_voucher_is_redeemed_by_id_once_per_key(program: Program, clock: FrozenClock) -> None:
    member, _ = await enroll_member("u-tap")
    async with in_transaction() as conn:
        voucher = await vouchers.issue_voucher(conn, member.id)

    first = await vouchers.redeem_member_voucher(
        TILL, member_id=member.id, voucher_id=voucher.id, store_code="S1", idempotency_key="k1"
    )
    clock.advance(timedelta(seconds=2))
    again = await vouchers.redeem_member_voucher(
        TILL, member_id=member.id, voucher_id=voucher.id, store_code="S1", idempotency_key="k1"
    )

    assert first == again == vouchers.VoucherRedemption(voucher.id, member.id, "S1", clock.now() - timedelta(seconds=2))
    stored = await Voucher.get(id=voucher.id)
    assert (stored.status, stored.redeemed_store, stored.redeemed_at) == (
        VoucherStatus.REDEEMED,
        "S1",
        first.redeemed_at,
    )
    assert await OutboxEvent.filter(type="voucher.redeemed").count() == 1


async def test_one_tap_refusals_have_precise_codes_and_write_nothing(program: Program, clock: FrozenClock) -> None:
    # given Anna's used voucher, her voucher about to expire, and Bo's active voucher
    anna, _ = await enroll_member("u-anna")
    bo, _ = await enroll_member("u-bo")
    async with in_transaction() as conn:
        used = await vouchers.issue_voucher(conn, anna.id)
        expiring = await vouchers.issue_voucher(conn, anna.id)
        bos = await vouchers.issue_voucher(conn, bo.id)
    await vouchers.redeem_member_voucher(
        TILL, member_id=anna.id, voucher_id=used.id, store_code="S1", idempotency_key="k-used"
    )
    clock.advance(timedelta(days=30))  # `expiring` expires now

    async def tap(voucher_id: int, key: str, store: str = "S1") -> DomainError:
        with pytest.raises(DomainError) as refused:
            await vouchers.redeem_member_voucher(
                TILL, member_id=anna.id, voucher_id=voucher_id, store_code=store, idempotency_key=key
            )
        return refused.value

    # when the till taps each, with fresh keys, and reuses the first key for another voucher
    refusals = [
        await tap(used.id, "k2"),
        await tap(expiring.id, "k3"),
        await tap(bos.id, "k4"),
        await tap(2**31 - 1, "k5"),
        await tap(expiring.id, "k-used"),
        await tap(bos.id, " "),
    ]

    # then each says why, naming the voucher; Bo's voucher is untouched and no second redemption happened
    assert [(e.code, e.field) for e in refusals] == [
        ("ALREADY_REDEEMED", "voucher_id"),
        ("VOUCHER_EXPIRED", "voucher_id"),
        ("VOUCHER_NOT_FOUND", "voucher_id"),
        ("VOUCHER_NOT_FOUND", "voucher_id"),
        ("IDEMPOTENCY_KEY_REUSED", "idempotency_key"),
        ("INVALID", "idempotency_key"),
    ]
    assert (await Voucher.get(id=bos.id)).status == VoucherStatus.ACTIVE
    assert await OutboxEvent.filter(type="voucher.redeemed").count() == 1
