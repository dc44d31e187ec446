"""Small helpers shared by the ledger and tier tests (not a test module)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import ledger, purchases
from loyalty.actors import Actor
from loyalty.checks import MAX_POINTS, check_amount, check_idempotency_key
from loyalty.earning import LineInput
from loyalty.errors import InvalidInput
from loyalty.idempotency import idempotent
from loyalty.members import enroll_member
from loyalty.models import (
    EntryKind,
    IdempotencyRecord,
    LedgerEntry,
    LotAllocation,
    Member,
    OutboxEvent,
    PointsLot,
    Purchase,
    QualifyingCredit,
    Refund,
    StaffRole,
)
from loyalty.program import apply_program_config, load_program
from tests.conftest import TEST_PROGRAM


async def new_member(uid: str) -> Member:
    """Enroll a member (entry tier) and return it."""
    member, created = await enroll_member(uid, email=f"{uid}@example.com")
    assert created
    return member


# The till the ledger tests buy and refund at: every store, as an integration would.
TILL = Actor(kind="api_key", id=1, role=StaffRole.CASHIER, name="Test till")


async def give_available(member_id: int, points: int, key: str = "seed") -> None:
    """Immediately available points (an adjustment lot, expiring `expiry_days` after now)."""
    await credit_points(member_id, points, kind=EntryKind.ADJUSTMENT, idempotency_key=key)


async def earn_for_purchase(
    member_id: int, *, store_code: str, receipt_id: str, occurred_at: datetime, currency: str, total: int
) -> purchases.PurchaseRecorded:
    """A one-line receipt of `total`, recorded at the test till through `record_purchase`."""
    request = purchases.PurchaseRequest(
        member_id=member_id,
        store_code=store_code,
        receipt_id=receipt_id,
        occurred_at=occurred_at,
        currency=currency,
        total=total,
        lines=(LineInput(sku="ITEM", category="", quantity=1, amount=total),),
    )
    return await purchases.record_purchase(TILL, request)


async def purchase(
    member_id: int, receipt_id: str, total: int, occurred_at: datetime, store_code: str = "S1"
) -> purchases.PurchaseRecorded:
    return await earn_for_purchase(
        member_id, store_code=store_code, receipt_id=receipt_id, occurred_at=occurred_at, currency="EUR", total=total
    )


async def refund_purchase(**refund: Any) -> purchases.RefundResult:
    """`purchases.refund_purchase` at the test till."""
    return await purchases.refund_purchase(TILL, **refund)


@dataclass(frozen=True)
class Credit:
    entry_id: int


async def credit_points(
    member_id: int, amount: int, *, kind: EntryKind, idempotency_key: str, description: str = ""
) -> int:
    """Credit immediately available points through the ledger core, idempotently; returns the entry id.

    What birthdays, engagement and bonus offers do inside their own transactions, without their rules.
    """
    check_idempotency_key(idempotency_key)

    async def action(conn: BaseDBAsyncClient) -> Credit:
        member = await ledger.lock_member(conn, member_id)
        entry = await ledger.credit_available(
            conn, member, await load_program(conn), amount, kind=kind, description=description
        )
        return Credit(entry.id)

    request = {"member": member_id, "amount": amount, "kind": kind.value}
    return (await idempotent(kind.value, f"{member_id}:{idempotency_key}", request, Credit, action)).entry_id


@dataclass(frozen=True)
class Redemption:
    entry_id: int
    amount: int
    balance: int


async def redeem_points(
    member_id: int,
    amount: int,
    *,
    idempotency_key: str,
    description: str = "",
    kind: EntryKind = EntryKind.REDEEM,
) -> Redemption:
    """Debit `amount` available points through the ledger core, earliest-expiring lots first; idempotent per member
    and key. What `redeem_reward` and adjustments do inside their own transactions, without their rules.

    Raises `InsufficientPoints` (nothing written) when the balance does not cover it.
    """
    check_amount(amount, "amount", high=MAX_POINTS)
    check_idempotency_key(idempotency_key)

    async def action(conn: BaseDBAsyncClient) -> Redemption:
        member = await ledger.lock_member(conn, member_id)
        entry = await ledger.debit_available(conn, member, amount, kind=kind, description=description)
        return Redemption(entry.id, amount, member.points_available)

    request = {"member": member_id, "amount": amount, "kind": kind.value}
    return await idempotent(kind.value, f"{member_id}:{idempotency_key}", request, Redemption, action)


async def cancel_redemption(member_id: int, entry_id: int) -> int:
    """Give back exactly what a redemption took (`ledger.reverse_debit`, as `voucherCancel` does); the new entry id."""
    async with ledger.locked_member(member_id) as (conn, member):
        return (await ledger.reverse_debit(conn, member, entry_id)).id


async def adjust_points(member_id: int, amount: int, *, idempotency_key: str, reason: str) -> int:
    """A correction through the core: positive credits an available lot, negative debits like a redemption."""
    if amount > 0:
        return await credit_points(
            member_id, amount, kind=EntryKind.ADJUSTMENT, idempotency_key=idempotency_key, description=reason
        )
    if amount < 0:
        result = await redeem_points(
            member_id, -amount, idempotency_key=idempotency_key, description=reason, kind=EntryKind.ADJUSTMENT
        )
        return result.entry_id
    raise InvalidInput("an adjustment cannot be zero", field="amount")


async def balances(member_id: int) -> tuple[int, int, int]:
    """(available, pending, lifetime_earned) as cached on the member row."""
    member = await Member.get(id=member_id)
    return member.points_available, member.points_pending, member.lifetime_earned


async def entry_kinds(member_id: int) -> list[EntryKind]:
    return list(await LedgerEntry.filter(member_id=member_id).order_by("id").values_list("kind", flat=True))


async def lots(member_id: int) -> list[tuple[int, int, str]]:
    """(amount, remaining, status) of the member's lots, oldest first."""
    rows = await PointsLot.filter(member_id=member_id).order_by("id").values_list("amount", "remaining", "status")
    return [(amount, remaining, str(status)) for amount, remaining, status in rows]


async def row_counts() -> dict[str, int]:
    """Counts of the append-only tables: used to prove that a refused operation wrote nothing."""
    models: list[Any] = [
        LedgerEntry,
        PointsLot,
        LotAllocation,
        Purchase,
        Refund,
        QualifyingCredit,
        IdempotencyRecord,
        OutboxEvent,
    ]
    return {model.__name__: await model.all().count() for model in models}


async def configure(**program_overrides: Any) -> None:
    """Re-apply the test program with some `[program]` values changed."""
    config = {"program": {**TEST_PROGRAM["program"], **program_overrides}, "tiers": TEST_PROGRAM["tiers"]}
    await apply_program_config(config)
