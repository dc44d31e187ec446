"""Small helpers shared by the ledger and tier tests (not a test module)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loyalty import ledger
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
)
from loyalty.program import apply_program_config
from tests.conftest import TEST_PROGRAM


async def new_member(uid: str) -> Member:
    """Enrol a member (entry tier) and return it."""
    member, created = await enroll_member(uid, email=f"{uid}@example.com")
    assert created
    return member


async def give_available(member_id: int, points: int, key: str = "seed") -> None:
    """Immediately available points (an adjustment lot, expiring `expiry_days` after now)."""
    await ledger.credit_points(member_id, points, kind=EntryKind.ADJUSTMENT, idempotency_key=key)


async def purchase(
    member_id: int, receipt_id: str, total: int, occurred_at: datetime, store_code: str = "S1"
) -> ledger.EarnResult:
    return await ledger.earn_for_purchase(
        member_id, store_code=store_code, receipt_id=receipt_id, occurred_at=occurred_at, currency="EUR", total=total
    )


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
    """Re-apply the test programme with some `[program]` values changed."""
    config = {"program": {**TEST_PROGRAM["program"], **program_overrides}, "tiers": TEST_PROGRAM["tiers"]}
    await apply_program_config(config)
