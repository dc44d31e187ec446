"""Manual point adjustments by staff: a credit or debit with a reason, capped by role, audited, idempotent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.actors import Actor, Forbidden
from loyalty.audit import record_audit
from loyalty.checks import MAX_POINTS, check_idempotency_key, check_store_code, check_text, is_whole
from loyalty.errors import InvalidInput
from loyalty.idempotency import idempotent
from loyalty.ledger import credit_available, debit_available, lock_member, settle
from loyalty.models import EntryKind, StaffRole
from loyalty.program import load_program


class AdjustmentReason(StrEnum):
    GOODWILL = "goodwill"
    CORRECTION = "correction"
    MISSED_PURCHASE = "missed_purchase"
    FRAUD = "fraud"
    OTHER = "other"


class NoteRequired(InvalidInput):
    code = "NOTE_REQUIRED"


MAX_NOTE = 200
AUDIT_POINTS_ADJUST = "points.adjust"


@dataclass(frozen=True)
class Adjustment:
    """A staff adjustment as stored for idempotent replay."""

    entry_id: int
    audit_id: int
    member_id: int
    amount: int
    reason: AdjustmentReason
    note: str
    available_before: int
    available_after: int
    created_at: datetime


async def adjust_member_points(
    actor: Actor,
    member_id: int,
    amount: int,
    *,
    reason: AdjustmentReason,
    note: str = "",
    idempotency_key: str,
    store_code: str | None = None,
) -> Adjustment:
    """Credit (amount > 0) or debit (amount < 0) available points by hand, with an audit entry in the same transaction.

    Cashiers may adjust up to the program's `adjustment_cap` points either way; above it a manager or admin is
    needed (`Forbidden`). `OTHER` needs a note (`NoteRequired`). A debit beyond the balance is `InsufficientPoints`;
    an unknown member `MemberNotFound`. Idempotent per member and key; nothing is written on any error.
    """
    if not is_whole(amount, -MAX_POINTS, MAX_POINTS) or amount == 0:
        raise InvalidInput("amount must be a non-zero whole number of points", field="amount")
    note = note.strip()
    if reason == AdjustmentReason.OTHER and not note:
        raise NoteRequired("reason OTHER needs a note", field="note")
    check_text(note, "note", MAX_NOTE, required=False, label="a note")
    check_idempotency_key(idempotency_key)
    if store_code is not None:
        check_store_code(store_code)
    if store_code is None and len(actor.store_codes) == 1:
        store_code = actor.store_codes[0]
    actor.require(StaffRole.CASHIER, store_code)
    description = f"{reason.value}: {note}" if note else reason.value

    async def action(conn: BaseDBAsyncClient) -> Adjustment:
        program = await load_program(conn)
        if abs(amount) > program.adjustment_cap and not actor.has_role(StaffRole.MANAGER):
            raise Forbidden(f"adjustments above {program.adjustment_cap} points need a manager", field="amount")
        member = await lock_member(conn, member_id)
        # Settle first so that "before" is the balance the adjustment really started from.
        await settle(conn, member)
        before = {"points_available": member.points_available, "points_pending": member.points_pending}
        if amount > 0:
            entry = await credit_available(
                conn, member, program, amount, kind=EntryKind.ADJUSTMENT, description=description
            )
        else:
            entry = await debit_available(conn, member, -amount, kind=EntryKind.ADJUSTMENT, description=description)
        after = {"points_available": member.points_available, "points_pending": member.points_pending}
        audit = await record_audit(
            actor,
            AUDIT_POINTS_ADJUST,
            conn=conn,
            store_code=store_code,
            member_id=member.id,
            target=f"ledger_entry:{entry.id}",
            before=before,
            after={**after, "amount": amount},
            reason=description,
        )
        return Adjustment(
            entry_id=entry.id,
            audit_id=audit.id,
            member_id=member.id,
            amount=amount,
            reason=reason,
            note=note,
            available_before=before["points_available"],
            available_after=after["points_available"],
            created_at=clock.now(),
        )

    request = {
        "member": member_id,
        "amount": amount,
        "reason": reason.value,
        "note": note,
        "store": store_code,
        "actor": f"{actor.kind}:{actor.id}",
    }
    return await idempotent("points_adjust", f"{member_id}:{idempotency_key}", request, Adjustment, action)
