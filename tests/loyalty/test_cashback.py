"""Cashback (`loyalty.cashback`): credit on redeeming a cashback reward, spend at the till, payout, returns on
refunds; every rule with its edge, bad input refused with nothing written, concurrency on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from loyalty import cashback, rewards, vouchers
from loyalty.actors import Actor, Forbidden
from loyalty.cashback import CashbackPaidOut, CashbackSpent, InsufficientCashback
from loyalty.clock import FrozenClock
from loyalty.errors import DuplicateIdempotencyKey, InvalidInput, MemberNotFound
from loyalty.models import (
    AuditLog,
    CashbackEntry,
    CashbackKind,
    EntryKind,
    IdempotencyRecord,
    Member,
    OutboxEvent,
    Program,
    Reward,
    RewardKind,
    StaffRole,
    Voucher,
    VoucherStatus,
)
from loyalty.purchases import LineRefund
from tests.loyalty import ledger_helpers
from tests.loyalty.purchase_helpers import CASHIER, buy, line

MANAGER = Actor(kind="staff", id=2, role=StaffRole.MANAGER, name="Max Manager")
PAYMENTS = Actor(kind="api_key", id=3, role=StaffRole.MANAGER, name="Payments integration")
ELSEWHERE = Actor(kind="staff", id=4, role=StaffRole.CASHIER, store_codes=("S2",), name="Cashier in S2")
POS = Actor(kind="api_key", id=5, role=StaffRole.CASHIER, store_codes=("S1",), name="POS in S1")


async def member_with_cashback(uid: str, amount: int, *, points: int = 1_000) -> Member:
    """A member who redeemed a cashback reward worth `amount` (minor units)."""
    member = await ledger_helpers.new_member(uid)
    await ledger_helpers.give_available(member.id, points)
    if amount:
        reward = await Reward.create(name=f"{amount} back", kind=RewardKind.CASHBACK, points_cost=100, value=amount)
        await rewards.redeem_reward(member.id, reward.id, idempotency_key=f"cashback-{amount}")
    return await Member.get(id=member.id)


async def balance(member_id: int) -> int:
    return (await Member.get(id=member_id)).cashback_balance


async def cashback_writes() -> dict[str, int]:
    """Rows a cashback operation writes: used to prove that a refused one wrote nothing."""
    return {
        "entries": await CashbackEntry.all().count(),
        "events": await OutboxEvent.filter(type__startswith="cashback.").count(),
        "audit": await AuditLog.all().count(),
        "idempotency": await IdempotencyRecord.all().count(),
    }


async def spend(
    member_id: int, amount: int, *, key: str = "k1", receipt_id: str = "R1", **kwargs: Any
) -> CashbackSpent:
    options: dict[str, Any] = {"store_code": "S1", "receipt_id": receipt_id, "amount": amount, "idempotency_key": key}
    actor = kwargs.pop("actor", CASHIER)
    return await cashback.spend_cashback(actor, member_id, **(options | kwargs))


# --- credit ---------------------------------------------------------------------------------------------


async def test_redeeming_a_cashback_reward_credits_its_value_and_the_voucher_is_redeemed_at_once(
    program: Program, clock: FrozenClock
) -> None:
    # given a member with 1,000 points and a cashback reward of €5.00 for 100 points
    member = await ledger_helpers.new_member("u1")
    await ledger_helpers.give_available(member.id, 1_000)
    reward = await Reward.create(name="€5 back", kind=RewardKind.CASHBACK, points_cost=100, value=500)

    # when they redeem it
    voucher_id = await rewards.redeem_reward(member.id, reward.id, idempotency_key="k1")

    # then the points are spent, the balance holds exactly €5.00 and the voucher is already redeemed
    after = await Member.get(id=member.id)
    assert (after.points_available, after.cashback_balance) == (900, 500)
    voucher = await Voucher.get(id=voucher_id)
    assert (voucher.status, voucher.redeemed_at) == (VoucherStatus.REDEEMED, clock.now())
    entries = await CashbackEntry.filter(member_id=member.id).values_list(
        "kind", "amount", "currency", "voucher_id", "description"
    )
    assert entries == [(CashbackKind.CREDIT, 500, "EUR", voucher_id, "€5 back")]
    event = await OutboxEvent.get(type="cashback.credited")
    assert event.payload == {
        "type": "cashback.credited",
        "member_id": member.id,
        "entry_id": (await CashbackEntry.get(member_id=member.id)).id,
        "voucher_id": voucher_id,
        "reward_id": reward.id,
        "amount": 500,
        "currency": "EUR",
        "balance": 500,
    }


async def test_a_cashback_voucher_cannot_be_cancelled(program: Program) -> None:
    # given a redeemed cashback reward
    member = await ledger_helpers.new_member("u1")
    await ledger_helpers.give_available(member.id, 1_000)
    reward = await Reward.create(name="€5 back", kind=RewardKind.CASHBACK, points_cost=100, value=500)
    voucher_id = await rewards.redeem_reward(member.id, reward.id, idempotency_key="k1")
    before = await ledger_helpers.row_counts()

    # when the member tries to cancel its voucher
    with pytest.raises(vouchers.AlreadyRedeemed):
        await vouchers.cancel_voucher(member.id, voucher_id)

    # then nothing moved: the points stay spent, the cashback stays credited
    after = await Member.get(id=member.id)
    assert (after.points_available, after.cashback_balance) == (900, 500)
    assert await ledger_helpers.row_counts() == before


async def test_a_replayed_redemption_credits_once(program: Program) -> None:
    # given a member and a cashback reward
    member = await ledger_helpers.new_member("u1")
    await ledger_helpers.give_available(member.id, 1_000)
    reward = await Reward.create(name="€5 back", kind=RewardKind.CASHBACK, points_cost=100, value=500)

    # when the app retries the redemption with its key
    first = await rewards.redeem_reward(member.id, reward.id, idempotency_key="k1")
    again = await rewards.redeem_reward(member.id, reward.id, idempotency_key="k1")

    # then one voucher, one credit
    assert first == again
    assert await balance(member.id) == 500
    assert await CashbackEntry.all().count() == 1


async def test_a_cashback_redemption_the_points_do_not_cover_credits_nothing(program: Program) -> None:
    # given a member with 50 points and a cashback reward for 100
    member = await ledger_helpers.new_member("u1")
    await ledger_helpers.give_available(member.id, 50)
    reward = await Reward.create(name="€5 back", kind=RewardKind.CASHBACK, points_cost=100, value=500)
    before = await cashback_writes()

    # when they try to redeem it
    with pytest.raises(rewards.InsufficientPoints):
        await rewards.redeem_reward(member.id, reward.id, idempotency_key="k1")

    # then no cashback was credited
    assert await balance(member.id) == 0
    assert await cashback_writes() == before


# --- spend ------------------------------------------------------------------------------------------------


async def test_a_partial_spend_takes_the_amount_and_leaves_the_rest(program: Program, clock: FrozenClock) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)

    # when the S1 till pays €3.20 of receipt R1 with it
    spent = await spend(member.id, 320)

    # then €1.80 is left; the entry, the event and the audit entry say so
    entry = await CashbackEntry.get(member_id=member.id, kind=CashbackKind.SPEND)
    assert spent == CashbackSpent(entry.id, member.id, "S1", "R1", 320, 180, "EUR", clock.now())
    assert await balance(member.id) == 180
    assert (entry.amount, entry.store_code, entry.receipt_id, entry.description) == (
        -320,
        "S1",
        "R1",
        "Paid with cashback",
    )
    event = await OutboxEvent.get(type="cashback.spent")
    assert event.payload == {
        "type": "cashback.spent",
        "member_id": member.id,
        "entry_id": entry.id,
        "store_code": "S1",
        "receipt_id": "R1",
        "amount": 320,
        "currency": "EUR",
        "balance": 180,
    }
    audit = await AuditLog.get(action="cashback.spend")
    assert (audit.actor_id, audit.store_code, audit.member_id, audit.target, audit.before, audit.after) == (
        CASHIER.id,
        "S1",
        member.id,
        f"cashback_entry:{entry.id}",
        {"cashback_balance": 500},
        {"cashback_balance": 180, "amount": 320, "receipt_id": "R1"},
    )


async def test_spending_exactly_the_balance_leaves_zero(program: Program) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)

    # when all of it is spent
    spent = await spend(member.id, 500)

    # then nothing is left
    assert (spent.spent, spent.balance) == (500, 0)
    assert await balance(member.id) == 0


async def test_spending_one_more_than_the_balance_is_refused_with_the_available_amount(program: Program) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when the till asks for €5.01
    with pytest.raises(InsufficientCashback) as refused:
        await spend(member.id, 501)

    # then it is refused with what is available, worded for the cashier, and nothing was written
    assert (refused.value.code, refused.value.field, refused.value.available) == (
        "INSUFFICIENT_CASHBACK",
        "amount",
        500,
    )
    assert refused.value.describe(lambda minor: f"€{minor / 100:.2f}") == "only €5.00 of cashback is available"
    assert await balance(member.id) == 500
    assert await cashback_writes() == before


async def test_a_member_without_cashback_cannot_spend_any(program: Program) -> None:
    # given a member who never had cashback
    member = await member_with_cashback("u1", 0)

    # when the till asks for one cent
    with pytest.raises(InsufficientCashback) as refused:
        await spend(member.id, 1)

    # then none is available
    assert refused.value.available == 0
    assert await CashbackEntry.all().count() == 0


@pytest.mark.parametrize(
    ("amount", "field"),
    [(0, "amount"), (-1, "amount"), (10**14 + 1, "amount"), (2**63, "amount"), (True, "amount"), (1.5, "amount")],
)
async def test_a_bad_amount_is_refused_and_nothing_is_written(program: Program, amount: Any, field: str) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when the till sends a zero, negative, overflowing or non-integer amount
    with pytest.raises(InvalidInput) as refused:
        await spend(member.id, amount)

    # then it is refused for the amount; nothing was written
    assert (refused.value.code, refused.value.field) == ("INVALID", field)
    assert await balance(member.id) == 500
    assert await cashback_writes() == before


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"idempotency_key": "k\x00"}, "idempotency_key"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
        ({"receipt_id": "R\x001"}, "receipt_id"),
        ({"receipt_id": " "}, "receipt_id"),
        ({"receipt_id": "R" * 65}, "receipt_id"),
        ({"store_code": "S\x001"}, "store_code"),
        ({"store_code": "\ud800"}, "store_code"),
        ({"store_code": "S" * 33}, "store_code"),
    ],
)
async def test_bad_keys_receipts_and_stores_are_refused_and_nothing_is_written(
    program: Program, changes: dict[str, Any], field: str
) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when the till sends a key, receipt id or store code with NUL, a lone surrogate, blank or too long
    with pytest.raises(InvalidInput) as refused:
        await spend(member.id, 100, **changes)

    # then it is refused for that input, with no database error; nothing was written
    assert (refused.value.code, refused.value.field) == ("INVALID", field)
    assert await cashback_writes() == before


async def test_a_replayed_spend_answers_the_first_and_spends_once(program: Program) -> None:
    # given a spend of €2.00
    member = await member_with_cashback("u1", 500)
    first = await spend(member.id, 200)

    # when the till retries it with the same key
    again = await spend(member.id, 200)

    # then the first answer comes back and the balance moved once
    assert again == first
    assert await balance(member.id) == 300
    assert await CashbackEntry.filter(kind=CashbackKind.SPEND).count() == 1


@pytest.mark.parametrize("changes", [{"amount": 201}, {"receipt_id": "R2"}, {"store_code": "S2", "actor": MANAGER}])
async def test_the_same_key_with_other_content_is_refused(program: Program, changes: dict[str, Any]) -> None:
    # given a spend of €2.00 with key k1
    member = await member_with_cashback("u1", 500)
    await spend(member.id, 200)
    before = await cashback_writes()

    # when the key comes again with another amount, receipt or store
    with pytest.raises(DuplicateIdempotencyKey) as refused:
        await spend(member.id, **({"amount": 200} | changes))

    # then it is refused; nothing more was spent
    assert (refused.value.code, refused.value.field) == ("IDEMPOTENCY_KEY_REUSED", "idempotency_key")
    assert await balance(member.id) == 300
    assert await cashback_writes() == before


async def test_another_stores_cashier_is_forbidden(program: Program) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when a cashier of S2 spends it on a receipt of S1
    with pytest.raises(Forbidden) as refused:
        await spend(member.id, 100, actor=ELSEWHERE)

    # then it is forbidden; nothing was written
    assert (refused.value.code, refused.value.field) == ("FORBIDDEN", "store_code")
    assert await balance(member.id) == 500
    assert await cashback_writes() == before


async def test_an_unknown_member_is_refused(program: Program) -> None:
    # when the till spends cashback of a member that does not exist
    with pytest.raises(MemberNotFound):
        await spend(999_999, 100)

    # then nothing was written
    assert await cashback_writes() == {"entries": 0, "events": 0, "audit": 0, "idempotency": 0}


# --- payout --------------------------------------------------------------------------------------------------


async def test_a_payout_takes_the_amount_once_per_reference(program: Program, clock: FrozenClock) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)

    # when the payments integration pays €4.00 out, and retries with the same reference
    first = await cashback.payout_cashback(PAYMENTS, member.id, amount=400, reference="PAY-1")
    again = await cashback.payout_cashback(PAYMENTS, member.id, amount=400, reference="PAY-1")

    # then it was paid out once
    entry = await CashbackEntry.get(kind=CashbackKind.PAYOUT)
    assert first == again == CashbackPaidOut(entry.id, member.id, "PAY-1", 400, 100, "EUR", clock.now())
    assert (entry.amount, entry.reference) == (-400, "PAY-1")
    assert await balance(member.id) == 100
    assert await OutboxEvent.filter(type="cashback.paid_out").count() == 1
    audit = await AuditLog.get(action="cashback.payout")
    assert (audit.actor_type, audit.actor_id, audit.before, audit.after) == (
        "api_key",
        PAYMENTS.id,
        {"cashback_balance": 500},
        {"cashback_balance": 100, "amount": 400, "reference": "PAY-1"},
    )


async def test_a_reference_reused_for_another_payout_is_refused(program: Program) -> None:
    # given a payout PAY-1 of €4.00
    member = await member_with_cashback("u1", 500)
    other = await member_with_cashback("u2", 500)
    await cashback.payout_cashback(PAYMENTS, member.id, amount=400, reference="PAY-1")
    before = await cashback_writes()

    # when PAY-1 comes again for another amount, or for another member
    for call in (
        cashback.payout_cashback(PAYMENTS, member.id, amount=300, reference="PAY-1"),
        cashback.payout_cashback(PAYMENTS, other.id, amount=400, reference="PAY-1"),
    ):
        with pytest.raises(DuplicateIdempotencyKey) as refused:
            await call
        assert (refused.value.code, refused.value.field) == ("IDEMPOTENCY_KEY_REUSED", "reference")

    # then nothing more was paid out
    assert (await balance(member.id), await balance(other.id)) == (100, 500)
    assert await cashback_writes() == before


async def test_a_payout_above_the_balance_is_refused(program: Program) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when €5.01 is paid out
    with pytest.raises(InsufficientCashback) as refused:
        await cashback.payout_cashback(MANAGER, member.id, amount=501, reference="PAY-1")

    # then it is refused with the available amount; nothing was written
    assert refused.value.available == 500
    assert await cashback_writes() == before


@pytest.mark.parametrize("actor", [CASHIER, POS])
async def test_a_payout_needs_the_manager_role(program: Program, actor: Actor) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when a cashier or a till's API key pays it out
    with pytest.raises(Forbidden):
        await cashback.payout_cashback(actor, member.id, amount=100, reference="PAY-1")

    # then it is forbidden; nothing was written
    assert await cashback_writes() == before


@pytest.mark.parametrize(
    ("amount", "reference", "field"),
    [(0, "PAY-1", "amount"), (-5, "PAY-1", "amount"), (100, "", "reference"), (100, "P\x00", "reference")],
)
async def test_a_bad_payout_is_refused(program: Program, amount: int, reference: str, field: str) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)
    before = await cashback_writes()

    # when the amount or the reference is bad
    with pytest.raises(InvalidInput) as refused:
        await cashback.payout_cashback(MANAGER, member.id, amount=amount, reference=reference)

    # then it is refused for it; nothing was written
    assert refused.value.field == field
    assert await cashback_writes() == before


# --- returns on refunds ----------------------------------------------------------------------------------------


async def test_refunds_return_the_cashback_in_proportion_and_a_full_refund_exactly_the_spend(
    program: Program, clock: FrozenClock
) -> None:
    # given a €100.00 receipt of which €3.33 was paid with cashback
    member = await member_with_cashback("u1", 500)
    await buy(member.id, "R1", [line("A", 6_000), line("B", 4_000)])
    await spend(member.id, 333)
    spend_id = (await CashbackEntry.get(kind=CashbackKind.SPEND)).id

    # when a third, then another third, then the rest is refunded
    first = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=3_333)
    second = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=3_333)
    last = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F3", amount=3_334)

    # then the returns are floored cumulatively (110, 111, 112) and add up to exactly the spend
    assert (first.cashback_returned, second.cashback_returned, last.cashback_returned) == (110, 111, 112)
    assert await balance(member.id) == 500
    returns = (
        await CashbackEntry.filter(kind=CashbackKind.RETURN)
        .order_by("id")
        .values_list("amount", "spend_id", "store_code", "receipt_id")
    )
    assert returns == [(110, spend_id, "S1", "R1"), (111, spend_id, "S1", "R1"), (112, spend_id, "S1", "R1")]
    audits = await AuditLog.filter(action="purchase.refund").order_by("id").values_list("after", flat=True)
    assert [a["cashback_returned"] for a in audits] == [110, 111, 112]
    assert await OutboxEvent.filter(type="cashback.returned").count() == 3


async def test_a_refund_by_lines_returns_cashback_in_proportion_to_the_money(program: Program) -> None:
    # given a receipt of €60.00 + €40.00 of which €10.00 was paid with cashback
    member = await member_with_cashback("u1", 1_000)
    await buy(member.id, "R1", [line("A", 6_000), line("B", 4_000)])
    await spend(member.id, 1_000)

    # when line 2 (€40.00) is returned
    result = await ledger_helpers.refund_purchase(
        store_code="S1", receipt_id="R1", refund_id="F1", lines=[LineRefund(2, 1)]
    )

    # then 40 % of the cashback comes back
    assert (result.amount, result.cashback_returned) == (4_000, 400)
    assert await balance(member.id) == 400


async def test_two_spends_on_one_receipt_each_come_back_in_full(program: Program) -> None:
    # given a €50.00 receipt paid with €1.00 and then €2.00 of cashback (two spends, two keys)
    member = await member_with_cashback("u1", 500)
    await buy(member.id, "R1", [line("A", 5_000)])
    await spend(member.id, 100, key="k1")
    await spend(member.id, 200, key="k2")

    # when half, then the rest is refunded
    half = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=2_500)
    rest = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F2", amount=2_500)

    # then each spend came back in proportion, and in full at the end
    assert (half.cashback_returned, rest.cashback_returned) == (150, 150)
    assert await balance(member.id) == 500


async def test_a_refund_of_a_receipt_without_cashback_is_unchanged(program: Program) -> None:
    # given a receipt paid without cashback, and cashback spent on another receipt
    member = await member_with_cashback("u1", 500)
    await buy(member.id, "R1", [line("A", 5_000)])
    await spend(member.id, 200, receipt_id="R2")

    # when R1 is refunded in full
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000)

    # then no cashback came back; the audit entry says nothing about cashback
    assert result.cashback_returned == 0
    assert await balance(member.id) == 300
    assert await CashbackEntry.filter(kind=CashbackKind.RETURN).count() == 0
    audit = await AuditLog.get(action="purchase.refund")
    assert audit.after == {"refund_id": "F1", "amount": 5_000, "points_reversed": 50}


async def test_a_replayed_refund_returns_the_cashback_once(program: Program) -> None:
    # given a receipt paid partly with cashback, refunded in full
    member = await member_with_cashback("u1", 500)
    await buy(member.id, "R1", [line("A", 5_000)])
    await spend(member.id, 200)
    first = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000)

    # when the refund is retried
    again = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000)

    # then the same answer, and the cashback came back once
    assert again == first
    assert first.cashback_returned == 200
    assert await balance(member.id) == 500


async def test_another_members_spend_on_the_same_receipt_id_does_not_come_back(program: Program) -> None:
    # given member 1's receipt R1, and member 2 who spent cashback on a receipt with the same id
    member = await member_with_cashback("u1", 0)
    other = await member_with_cashback("u2", 500)
    await buy(member.id, "R1", [line("A", 5_000)])
    await spend(other.id, 200)

    # when member 1's R1 is refunded
    result = await ledger_helpers.refund_purchase(store_code="S1", receipt_id="R1", refund_id="F1", amount=5_000)

    # then member 2's cashback stays spent
    assert result.cashback_returned == 0
    assert await balance(other.id) == 300


# --- member app read ---------------------------------------------------------------------------------------------


async def test_the_activity_page_is_newest_first_with_keyset_paging(program: Program) -> None:
    # given a credit, a spend and a payout
    member = await member_with_cashback("u1", 500)
    await spend(member.id, 100)
    await cashback.payout_cashback(MANAGER, member.id, amount=50, reference="PAY-1")

    # when the app reads two, then the rest
    first = await cashback.activity_page(member.id, 2)
    rest = await cashback.activity_page(member.id, 10, before=first[-1].id)

    # then newest first, and nothing twice
    assert [(e.kind, e.amount) for e in first] == [(CashbackKind.PAYOUT, -50), (CashbackKind.SPEND, -100)]
    assert [(e.kind, e.amount) for e in rest] == [(CashbackKind.CREDIT, 500)]


# --- concurrency (PostgreSQL) --------------------------------------------------------------------------------------


@pytest.mark.postgres_only
async def test_two_tills_spending_the_same_cashback_at_once_exactly_one_succeeds(program: Program) -> None:
    # given €5.00 of cashback, enough for one of two €4.00 spends
    member = await member_with_cashback("u1", 500)

    # when two tills spend €4.00 at the same moment (different receipts and keys)
    results = await asyncio.gather(
        spend(member.id, 400, key="till-1", receipt_id="R1"),
        cashback.spend_cashback(POS, member.id, store_code="S1", receipt_id="R2", amount=400, idempotency_key="till-2"),
        return_exceptions=True,
    )

    # then exactly one spent; the other was told what is left
    spent = [r for r in results if isinstance(r, CashbackSpent)]
    refused = [r for r in results if isinstance(r, InsufficientCashback)]
    assert (len(spent), len(refused)) == (1, 1), results
    assert refused[0].available == 100
    assert await balance(member.id) == 100
    assert await CashbackEntry.filter(kind=CashbackKind.SPEND).count() == 1


@pytest.mark.postgres_only
async def test_many_concurrent_spends_never_overdraw(program: Program) -> None:
    # given €10.00 of cashback
    member = await member_with_cashback("u1", 1_000)

    # when 30 tills spend €0.70 each at once
    results = await asyncio.gather(
        *(spend(member.id, 70, key=f"k{n}", receipt_id=f"R{n}") for n in range(30)), return_exceptions=True
    )

    # then 14 spends fit (€9.80), the other 16 were refused, and €0.20 is left
    assert sum(isinstance(r, CashbackSpent) for r in results) == 14
    assert sum(isinstance(r, InsufficientCashback) for r in results) == 16, results
    assert await balance(member.id) == 20


@pytest.mark.postgres_only
async def test_concurrent_duplicates_of_one_spend_spend_once(program: Program) -> None:
    # given €5.00 of cashback
    member = await member_with_cashback("u1", 500)

    # when a till sends the same spend five times at once
    results = await asyncio.gather(*(spend(member.id, 100) for _ in range(5)))

    # then all five got the one answer, and it was spent once
    assert len(set(results)) == 1
    assert await balance(member.id) == 400


async def test_points_and_cashback_do_not_mix(program: Program) -> None:
    # given a member with points and cashback
    member = await member_with_cashback("u1", 500)

    # when cashback is spent
    await spend(member.id, 200)

    # then the points ledger saw only the reward's redemption
    assert await ledger_helpers.entry_kinds(member.id) == [EntryKind.ADJUSTMENT, EntryKind.REDEEM]
    assert (await Member.get(id=member.id)).points_available == 900
