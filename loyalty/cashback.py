"""Cashback: money a member holds with the program, in minor units of the program's currency, apart from points.

The balance is `Member.cashback_balance`, a cache of the member's append-only `CashbackEntry` rows (never updated,
never deleted). `_post` is the one place it moves: a conditional `UPDATE member SET cashback_balance =
cashback_balance + :d WHERE id = :m AND cashback_balance >= -:d` with its row count checked (so concurrent debits
never overdraw, on any engine) plus the entry, inside the caller's transaction with the member row locked.
`tests/invariants.py` checks after every database test that the balance equals the sum of the entries and is never
negative, that returns never exceed their spend, and that every entry is in the program's currency.

How it moves:
- **credit** — redeeming a CASHBACK reward (`loyalty.rewards.redeem_reward`) credits the reward's `value` in the
  redemption's transaction (`credit_reward`); the voucher is issued already REDEEMED (nothing to hand in) and cannot
  be cancelled. Event `cashback.credited`.
- **spend** — the till pays part of a receipt with it (`spend_cashback`, the staff API's `cashbackSpend`): any amount
  up to the balance (`InsufficientCashback` says how much is available), a cashier in that store, idempotent per
  member and key, audited. Event `cashback.spent`.
- **payout** — an integration pays it out to a card or bank account (`payout_cashback`, `cashbackPayout`): the
  manager role (a manager or admin, or an API key with that role), bound to no store; idempotent on the paying
  system's `reference`, audited. Event `cashback.paid_out`.
- **return** — a refund of a receipt paid partly with cashback (spends with the receipt's store and receipt id)
  gives it back in proportion to the money refunded, cumulatively floored per spend, so a full refund returns exactly
  what was spent and never more (`return_for_refund`, called by `loyalty.purchases._refund` under its lock). RETURN
  entries point at their spend. Event `cashback.returned`.

What the member app reads: `activity_page` (one statement, keyset on the entry id, newest first).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F

from loyalty import clock, events, sql
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import MAX_REFERENCE, check_amount, check_code, check_idempotency_key, check_store_code
from loyalty.errors import DomainError, MoneyText
from loyalty.idempotency import idempotent
from loyalty.ledger import lock_member_with_program_version
from loyalty.models import CashbackEntry, CashbackKind, Member, Program, Reward, StaffRole, Voucher, VoucherStatus
from loyalty.program import current_configuration
from loyalty.rows import CashbackEntryRow

AUDIT_CASHBACK_SPEND = "cashback.spend"
AUDIT_CASHBACK_PAYOUT = "cashback.payout"

DESCRIPTIONS = {
    CashbackKind.CREDIT: "Cashback",
    CashbackKind.SPEND: "Paid with cashback",
    CashbackKind.PAYOUT: "Cashback paid out",
    CashbackKind.RETURN: "Cashback returned",
    CashbackKind.ADJUSTMENT: "Cashback adjustment",
}


class InsufficientCashback(DomainError):
    """The balance does not cover a debit; `available` is what it holds (minor units)."""

    code = "INSUFFICIENT_CASHBACK"

    def __init__(self, message: str, *, field: str | None = None, available: int) -> None:
        super().__init__(message, field=field)
        self.available = available

    def describe(self, money: MoneyText) -> str:
        return f"only {money(self.available)} of cashback is available"


async def _post(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    kind: CashbackKind,
    amount: int,
    *,
    description: str = "",
    voucher_id: int | None = None,
    store_code: str | None = None,
    receipt_id: str | None = None,
    reference: str | None = None,
    spend_id: int | None = None,
) -> CashbackEntry:
    """Move the locked `member`'s cashback balance by `amount` (negative: a debit) and append its entry.

    The one place the balance moves: a conditional UPDATE that refuses to take it below zero (row count checked),
    then the entry. Raises `InsufficientCashback` (with the balance as read under the caller's lock) when it would.
    """
    now = clock.now()
    updated = (
        await Member.filter(id=member.id, cashback_balance__gte=-amount)
        .using_db(conn)
        .update(cashback_balance=F("cashback_balance") + amount, updated_at=now)
    )
    if updated != 1:
        raise InsufficientCashback(
            f"{-amount} of cashback asked; {member.cashback_balance} is available",
            field="amount",
            available=member.cashback_balance,
        )
    member.cashback_balance += amount
    return await CashbackEntry.create(
        member_id=member.id,
        kind=kind,
        amount=amount,
        currency=program.currency,
        voucher_id=voucher_id,
        store_code=store_code,
        receipt_id=receipt_id,
        reference=reference,
        spend_id=spend_id,
        description=description or DESCRIPTIONS[kind],
        created_at=now,
        using_db=conn,
    )


# --- credit: a cashback reward redeemed ---------------------------------------------------------------


async def credit_reward(
    conn: BaseDBAsyncClient, member: Member, program: Program, voucher: Voucher, reward: Reward
) -> CashbackEntry:
    """Credit a redeemed CASHBACK reward's `value` to the member locked in the caller's transaction; the voucher
    becomes REDEEMED at once (there is nothing to hand in at a till). Emits `cashback.credited`."""
    now = clock.now()
    await Voucher.filter(id=voucher.id).using_db(conn).update(status=VoucherStatus.REDEEMED, redeemed_at=now)
    entry = await _post(
        conn, member, program, CashbackKind.CREDIT, reward.value, voucher_id=voucher.id, description=reward.name
    )
    await events.emit(
        conn,
        events.CASHBACK_CREDITED,
        member_id=member.id,
        payload={
            "entry_id": entry.id,
            "voucher_id": voucher.id,
            "reward_id": reward.id,
            "amount": reward.value,
            "currency": program.currency,
            "balance": member.cashback_balance,
        },
    )
    return entry


# --- spend at the till ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CashbackSpent:
    """A spend at the till, as stored for idempotent replay."""

    entry_id: int
    member_id: int
    store_code: str
    receipt_id: str
    spent: int
    balance: int  # after the spend
    currency: str
    created_at: datetime


async def spend_cashback(
    actor: Actor,
    member_id: int,
    *,
    store_code: str,
    receipt_id: str,
    amount: int,
    idempotency_key: str,
) -> CashbackSpent:
    """Pay `amount` (minor units) of receipt `receipt_id` in `store_code` with the member's cashback.

    Any amount from 1 up to the balance (`InsufficientCashback`, with the available amount, beyond it); the actor
    needs the cashier role in `store_code` (`Forbidden`). Idempotent per member and key: a retry answers the first
    spend, the same key with another store, receipt or amount is `DuplicateIdempotencyKey`. Raises `InvalidInput`
    for a bad amount, store code, receipt id or key and `MemberNotFound`; then nothing was written. Emits
    `cashback.spent` and writes an audit entry in the same transaction. A refund of the receipt gives it back
    (`return_for_refund`).
    """
    check_store_code(store_code)
    check_code(receipt_id, "receipt_id", MAX_REFERENCE)
    check_amount(amount, "amount")
    check_idempotency_key(idempotency_key)
    actor.require(StaffRole.CASHIER, store_code)

    async def action(conn: BaseDBAsyncClient) -> CashbackSpent:
        member, version = await lock_member_with_program_version(conn, member_id)
        program = (await current_configuration(conn, version)).program
        before = member.cashback_balance
        entry = await _post(
            conn, member, program, CashbackKind.SPEND, -amount, store_code=store_code, receipt_id=receipt_id
        )
        await events.emit(
            conn,
            events.CASHBACK_SPENT,
            member_id=member.id,
            payload={
                "entry_id": entry.id,
                "store_code": store_code,
                "receipt_id": receipt_id,
                "amount": amount,
                "currency": program.currency,
                "balance": member.cashback_balance,
            },
        )
        await record_audit(
            actor,
            AUDIT_CASHBACK_SPEND,
            conn=conn,
            store_code=store_code,
            member_id=member.id,
            target=f"cashback_entry:{entry.id}",
            before={"cashback_balance": before},
            after={"cashback_balance": member.cashback_balance, "amount": amount, "receipt_id": receipt_id},
        )
        return CashbackSpent(
            entry.id,
            member.id,
            store_code,
            receipt_id,
            amount,
            member.cashback_balance,
            program.currency,
            entry.created_at,
        )

    request = {"member": member_id, "store": store_code, "receipt": receipt_id, "amount": amount}
    return await idempotent("cashback_spend", f"{member_id}:{idempotency_key}", request, CashbackSpent, action)


# --- payout by an integration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CashbackPaidOut:
    """A payout, as stored for idempotent replay."""

    entry_id: int
    member_id: int
    reference: str
    paid_out: int
    balance: int  # after the payout
    currency: str
    created_at: datetime


async def payout_cashback(actor: Actor, member_id: int, *, amount: int, reference: str) -> CashbackPaidOut:
    """Pay `amount` (minor units) of the member's cashback out (the paying system moves the money; klubb records it).

    `reference` is the paying system's id of the payout: idempotent on it (a retry answers the first payout; the
    same reference for another member or amount is `DuplicateIdempotencyKey`, field `reference`). The actor needs
    the manager role (a manager or admin, or an API key with that role; bound to no store: `Forbidden`). Raises
    `InvalidInput` (amount, reference), `MemberNotFound` and `InsufficientCashback` (with the available amount);
    then nothing was written. Emits `cashback.paid_out` and writes an audit entry in the same transaction.
    """
    check_amount(amount, "amount")
    check_code(reference, "reference", MAX_REFERENCE)
    actor.require(StaffRole.MANAGER)

    async def action(conn: BaseDBAsyncClient) -> CashbackPaidOut:
        member, version = await lock_member_with_program_version(conn, member_id)
        program = (await current_configuration(conn, version)).program
        before = member.cashback_balance
        entry = await _post(conn, member, program, CashbackKind.PAYOUT, -amount, reference=reference)
        await events.emit(
            conn,
            events.CASHBACK_PAID_OUT,
            member_id=member.id,
            payload={
                "entry_id": entry.id,
                "reference": reference,
                "amount": amount,
                "currency": program.currency,
                "balance": member.cashback_balance,
            },
        )
        await record_audit(
            actor,
            AUDIT_CASHBACK_PAYOUT,
            conn=conn,
            member_id=member.id,
            target=f"cashback_entry:{entry.id}",
            before={"cashback_balance": before},
            after={"cashback_balance": member.cashback_balance, "amount": amount, "reference": reference},
        )
        return CashbackPaidOut(
            entry.id, member.id, reference, amount, member.cashback_balance, program.currency, entry.created_at
        )

    request = {"member": member_id, "amount": amount}
    return await idempotent("cashback_payout", reference, request, CashbackPaidOut, action, field="reference")


# --- returns: a refund of a receipt paid partly with cashback ----------------------------------------------


async def spends_of_receipt(
    conn: BaseDBAsyncClient, member_id: int, store_code: str, receipt_id: str
) -> list[tuple[int, int, int]]:
    """The member's spends on a receipt with what came back of each: (spend entry id, spent, returned), oldest
    first. One statement (the receipt's spends and returns)."""
    rows = (
        await CashbackEntry.filter(member_id=member_id, store_code=store_code, receipt_id=receipt_id)
        .using_db(conn)
        .values_list("id", "kind", "amount", "spend_id")
    )
    returned: dict[int, int] = defaultdict(int)
    spends: list[tuple[int, int]] = []
    for entry_id, kind, amount, spend_id in rows:
        if kind == CashbackKind.SPEND:
            spends.append((entry_id, -amount))
        elif kind == CashbackKind.RETURN and spend_id is not None:
            returned[spend_id] += amount
    return [(entry_id, spent, returned[entry_id]) for entry_id, spent in sorted(spends)]


async def return_for_refund(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    spends: list[tuple[int, int, int]],
    *,
    store_code: str,
    receipt_id: str,
    refunded: int,
    total: int,
    refund_id: str,
) -> int:
    """Give back the cashback a receipt was paid with in proportion to the money refunded so far (`refunded` of
    `total`, cumulative over the receipt's refunds), floored per spend: a full refund returns exactly what was spent,
    never more. `spends` is `spends_of_receipt`'s answer; the member is locked in the caller's transaction. One
    RETURN entry per spend with something to give back, then `cashback.returned`; returns the amount given back."""
    if not spends or total <= 0:
        return 0
    given = 0
    for spend_id, spent, returned in spends:
        due = min(spent, spent * min(refunded, total) // total) - returned
        if due <= 0:
            continue
        await _post(
            conn,
            member,
            program,
            CashbackKind.RETURN,
            due,
            store_code=store_code,
            receipt_id=receipt_id,
            spend_id=spend_id,
        )
        given += due
    if given:
        await events.emit(
            conn,
            events.CASHBACK_RETURNED,
            member_id=member.id,
            payload={
                "store_code": store_code,
                "receipt_id": receipt_id,
                "refund_id": refund_id,
                "amount": given,
                "currency": program.currency,
                "balance": member.cashback_balance,
            },
        )
    return given


# --- what the member app reads ----------------------------------------------------------------------------

_ENTRIES = f'SELECT {sql.columns(CashbackEntryRow, "c")} FROM "cashback_entry" AS "c"'  # noqa: S608 - row type names
_PAGE = sql.rows(
    "cashback.page",
    CashbackEntry,
    CashbackEntryRow,
    f'{_ENTRIES} WHERE "c"."member_id" = ? ORDER BY "c"."id" DESC LIMIT ?',
)
_PAGE_BEFORE = sql.rows(
    "cashback.page_before",
    CashbackEntry,
    CashbackEntryRow,
    f'{_ENTRIES} WHERE "c"."member_id" = ? AND "c"."id" < ? ORDER BY "c"."id" DESC LIMIT ?',
)


async def activity_page(member_id: int, limit: int, before: int | None = None) -> list[CashbackEntryRow]:
    """The member's cashback entries newest first, `limit` of them with ids below `before` (one statement)."""
    if before is None:
        return await sql.fetch_rows(_PAGE, [member_id, limit])
    return await sql.fetch_rows(_PAGE_BEFORE, [member_id, before, limit])
