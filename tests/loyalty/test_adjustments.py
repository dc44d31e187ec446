"""Staff point adjustments: reason codes, the cashier cap, the audit entry, idempotency, nothing written on errors."""

from __future__ import annotations

import asyncio

import pytest

from loyalty.actors import Actor, Forbidden
from loyalty.adjustments import AdjustmentReason, NoteRequired, adjust_member_points
from loyalty.clock import FrozenClock
from loyalty.errors import DomainError, DuplicateIdempotencyKey, InsufficientPoints, InvalidInput, MemberNotFound
from loyalty.models import AuditLog, EntryKind, IdempotencyRecord, LedgerEntry, Member, OutboxEvent, Program, StaffRole
from tests.loyalty.ledger_helpers import balances, give_available, new_member

CASHIER = Actor(kind="staff", id=11, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass")
MANAGER = Actor(kind="staff", id=12, role=StaffRole.MANAGER, name="Max")
CAP = 500  # the program's default adjustment_cap


@pytest.fixture
async def member(program: Program) -> Member:
    member = await new_member("anna")
    await give_available(member.id, 1_000)
    return member


async def _nothing_written(member: Member) -> None:
    assert await balances(member.id) == (1_000, 0, 1_000)
    assert await LedgerEntry.filter(kind=EntryKind.ADJUSTMENT, member_id=member.id).count() == 1  # the seed
    assert await AuditLog.all().count() == 0
    assert await IdempotencyRecord.filter(scope="points_adjust").count() == 0


async def test_a_credit_moves_points_and_writes_the_audit_entry(member: Member, clock: FrozenClock) -> None:
    result = await adjust_member_points(
        CASHIER, member.id, 120, reason=AdjustmentReason.GOODWILL, note=" late delivery ", idempotency_key="k1"
    )

    assert await balances(member.id) == (1_120, 0, 1_120)
    entry = await LedgerEntry.get(id=result.entry_id)
    assert (entry.kind, entry.delta_available, entry.description) == (
        EntryKind.ADJUSTMENT,
        120,
        "goodwill: late delivery",
    )
    audit = await AuditLog.get()
    assert audit.id == result.audit_id
    assert (audit.actor_type, audit.actor_id, audit.action, audit.store_code, audit.member_id) == (
        "staff",
        11,
        "points.adjust",
        "S1",  # the cashier's only store
        member.id,
    )
    assert audit.target == f"ledger_entry:{entry.id}"
    assert audit.before == {"points_available": 1_000, "points_pending": 0}
    assert audit.after == {"points_available": 1_120, "points_pending": 0, "amount": 120}
    assert (audit.reason, audit.created_at) == ("goodwill: late delivery", clock.now())
    assert (result.amount, result.reason, result.note, result.available_before, result.available_after) == (
        120,
        "goodwill",
        "late delivery",
        1_000,
        1_120,
    )
    assert await OutboxEvent.filter(type="points.adjusted").count() == 2  # the seed and this one


async def test_a_debit_takes_available_points(member: Member) -> None:
    result = await adjust_member_points(
        MANAGER, member.id, -300, reason=AdjustmentReason.FRAUD, note="", idempotency_key="k1", store_code="S9"
    )

    assert await balances(member.id) == (700, 0, 1_000)
    audit = await AuditLog.get()
    assert (audit.actor_id, audit.store_code, audit.reason) == (12, "S9", "fraud")
    assert (audit.before, audit.after) == (
        {"points_available": 1_000, "points_pending": 0},
        {"points_available": 700, "points_pending": 0, "amount": -300},
    )
    assert (result.available_before, result.available_after) == (1_000, 700)


@pytest.mark.parametrize("amount", [CAP, -CAP])
async def test_a_cashier_may_adjust_exactly_the_cap(member: Member, amount: int) -> None:
    result = await adjust_member_points(
        CASHIER, member.id, amount, reason=AdjustmentReason.CORRECTION, idempotency_key="k1"
    )

    assert result.available_after == 1_000 + amount


@pytest.mark.parametrize("amount", [CAP + 1, -(CAP + 1)])
async def test_above_the_cap_a_cashier_is_refused_and_nothing_is_written(member: Member, amount: int) -> None:
    with pytest.raises(Forbidden) as refused:
        await adjust_member_points(CASHIER, member.id, amount, reason=AdjustmentReason.CORRECTION, idempotency_key="k")

    assert (refused.value.code, refused.value.field) == ("FORBIDDEN", "amount")
    assert refused.value.message == "adjustments above 500 points need a manager"
    await _nothing_written(member)


@pytest.mark.parametrize("amount", [CAP + 1, -(CAP + 1)])
async def test_above_the_cap_a_manager_may_adjust(member: Member, amount: int) -> None:
    result = await adjust_member_points(
        MANAGER, member.id, amount, reason=AdjustmentReason.CORRECTION, idempotency_key="k"
    )

    assert result.available_after == 1_000 + amount


async def test_the_cap_is_the_programs_configuration(member: Member) -> None:
    await Program.filter(id=1).update(adjustment_cap=50)

    with pytest.raises(Forbidden):
        await adjust_member_points(CASHIER, member.id, 51, reason=AdjustmentReason.GOODWILL, idempotency_key="k")
    await adjust_member_points(CASHIER, member.id, 50, reason=AdjustmentReason.GOODWILL, idempotency_key="k")


async def test_a_debit_beyond_the_balance_is_refused(member: Member) -> None:
    with pytest.raises(InsufficientPoints) as refused:
        await adjust_member_points(MANAGER, member.id, -1_001, reason=AdjustmentReason.FRAUD, idempotency_key="k")

    assert (refused.value.code, refused.value.field) == ("INSUFFICIENT_POINTS", "amount")
    await _nothing_written(member)


async def test_an_unknown_member_is_refused(member: Member) -> None:
    with pytest.raises(MemberNotFound) as refused:
        await adjust_member_points(MANAGER, member.id + 1, 10, reason=AdjustmentReason.GOODWILL, idempotency_key="k")

    assert (refused.value.code, refused.value.field) == ("MEMBER_NOT_FOUND", "member_id")
    await _nothing_written(member)


async def test_other_needs_a_note(member: Member) -> None:
    with pytest.raises(NoteRequired) as refused:
        await adjust_member_points(
            CASHIER, member.id, 10, reason=AdjustmentReason.OTHER, note="  ", idempotency_key="k"
        )
    assert (refused.value.code, refused.value.field) == ("NOTE_REQUIRED", "note")
    await _nothing_written(member)

    await adjust_member_points(
        CASHIER, member.id, 10, reason=AdjustmentReason.OTHER, note="app bug", idempotency_key="k"
    )
    assert (await AuditLog.get()).reason == "other: app bug"


@pytest.mark.parametrize(
    ("amount", "note", "key", "field"),
    [
        (0, "", "k", "amount"),
        (10**13, "", "k", "amount"),
        (True, "", "k", "amount"),
        (10, "n" * 201, "k", "note"),
        (10, "", "  ", "idempotency_key"),
        (10, "", "k" * 200, "idempotency_key"),
    ],
)
async def test_bad_input_is_refused(member: Member, amount: int, note: str, key: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await adjust_member_points(
            MANAGER, member.id, amount, reason=AdjustmentReason.GOODWILL, note=note, idempotency_key=key
        )

    assert (refused.value.code, refused.value.field) == ("INVALID", field)
    await _nothing_written(member)


async def test_a_cashier_cannot_adjust_in_another_store(member: Member) -> None:
    with pytest.raises(Forbidden) as refused:
        await adjust_member_points(
            CASHIER, member.id, 10, reason=AdjustmentReason.GOODWILL, idempotency_key="k", store_code="S2"
        )

    assert refused.value.field == "store_code"
    await _nothing_written(member)


@pytest.mark.parametrize("store_code", ["", "  ", "S" * 33])
async def test_a_store_code_that_fits_no_store_is_refused(member: Member, store_code: str) -> None:
    # when a manager (every store) names a blank or over-long store code
    with pytest.raises(InvalidInput) as refused:
        await adjust_member_points(
            MANAGER, member.id, 10, reason=AdjustmentReason.GOODWILL, idempotency_key="k", store_code=store_code
        )

    # then it is refused before the audit entry could fail on its column
    assert (refused.value.code, refused.value.field) == ("INVALID", "store_code")
    await _nothing_written(member)


async def test_a_retry_replays_the_first_result_and_moves_points_once(member: Member) -> None:
    first = await adjust_member_points(CASHIER, member.id, 40, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    again = await adjust_member_points(CASHIER, member.id, 40, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    assert again == first
    assert await balances(member.id) == (1_040, 0, 1_040)
    assert await AuditLog.all().count() == 1


@pytest.mark.parametrize(
    ("actor", "amount", "reason"),
    [
        (CASHIER, 41, AdjustmentReason.GOODWILL),
        (CASHIER, 40, AdjustmentReason.CORRECTION),
        (MANAGER, 40, AdjustmentReason.GOODWILL),
    ],
)
async def test_the_same_key_for_another_request_is_refused(
    member: Member, actor: Actor, amount: int, reason: AdjustmentReason
) -> None:
    await adjust_member_points(CASHIER, member.id, 40, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    with pytest.raises(DuplicateIdempotencyKey) as refused:
        await adjust_member_points(actor, member.id, amount, reason=reason, idempotency_key="k1")

    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert await balances(member.id) == (1_040, 0, 1_040)


async def test_keys_are_per_member(member: Member) -> None:
    other = await new_member("bo")

    await adjust_member_points(CASHIER, member.id, 40, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")
    await adjust_member_points(CASHIER, other.id, 40, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    assert await balances(other.id) == (40, 0, 40)


async def test_a_refused_adjustment_can_be_retried_with_its_key(member: Member) -> None:
    with pytest.raises(DomainError):
        await adjust_member_points(CASHIER, member.id, 600, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    result = await adjust_member_points(MANAGER, member.id, 600, reason=AdjustmentReason.GOODWILL, idempotency_key="k1")

    assert result.available_after == 1_600


@pytest.mark.postgres_only
async def test_concurrent_retries_adjust_once(member: Member) -> None:
    results = await asyncio.gather(
        *(
            adjust_member_points(CASHIER, member.id, -100, reason=AdjustmentReason.CORRECTION, idempotency_key="k1")
            for _ in range(10)
        )
    )

    assert {r.entry_id for r in results} == {results[0].entry_id}
    assert await balances(member.id) == (900, 0, 1_000)
    assert await AuditLog.all().count() == 1


@pytest.mark.postgres_only
async def test_concurrent_debits_never_overdraw(member: Member) -> None:
    results = await asyncio.gather(
        *(
            adjust_member_points(MANAGER, member.id, -300, reason=AdjustmentReason.FRAUD, idempotency_key=f"k{i}")
            for i in range(8)
        ),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["Adjustment"] * 3 + ["InsufficientPoints"] * 5
    assert await balances(member.id) == (100, 0, 1_000)
    assert await AuditLog.all().count() == 3
