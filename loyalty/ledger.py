"""The points ledger: earn, mature, redeem, expire, refund, adjust, reverse.

Every change runs in one transaction with the member row locked (`SELECT … FOR UPDATE` on PostgreSQL;
SQLite serialises writers), writes one append-only `LedgerEntry` and moves the cached balances by the
entry's deltas with a conditional `UPDATE` that refuses to overdraw. Debits consume available lots
earliest-expiry first and record `LotAllocation`s, so expiry never takes spent points and a reversal
gives back exactly what was taken.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.functions import Min, Sum
from tortoise.transactions import in_transaction

from loyalty import clock, events, sql
from loyalty.earning import EarnBreakdown, LineInput, active_rules, compute_points
from loyalty.errors import (
    AlreadyReversed,
    CurrencyMismatch,
    InsufficientPoints,
    InvalidInput,
    LedgerInconsistency,
    MemberNotFound,
    NotFound,
    PurchaseNotFound,
    RefundExceedsPurchase,
)
from loyalty.idempotency import run_idempotent
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    Member,
    PointsLot,
    Program,
    Purchase,
    PurchaseLine,
    QualifyingCredit,
    Refund,
    Tier,
    TierMetric,
)
from loyalty.program import load_program
from loyalty.tiers import evaluate_tier

MAX_POINTS = 10**12
# A purchase may be reported a little late but not from the future (clock skew between tills).
FUTURE_TOLERANCE = timedelta(minutes=5)


@asynccontextmanager
async def locked_member(member_id: int) -> AsyncIterator[tuple[BaseDBAsyncClient, Member]]:
    """Open a transaction with `member_id`'s row locked; every ledger change for a member goes through it."""
    async with in_transaction() as conn:
        yield conn, await lock_member(conn, member_id)


async def lock_member(conn: BaseDBAsyncClient, member_id: int) -> Member:
    """Lock and return the member row inside the transaction `conn`."""
    member = await Member.filter(id=member_id).using_db(conn).select_for_update().first()
    if member is None:
        raise MemberNotFound("no such member", field="member")
    return member


async def _post(
    conn: BaseDBAsyncClient,
    member: Member,
    kind: EntryKind,
    *,
    available: int = 0,
    pending: int = 0,
    lifetime: int = 0,
    allow_overdraw: bool = False,
    **entry_fields: Any,
) -> LedgerEntry:
    """Append an entry and move the cached balances by its deltas, refusing to overdraw the balance."""
    query = Member.filter(id=member.id)
    if available < 0 and not allow_overdraw:
        query = query.filter(points_available__gte=-available)
    updated = await query.using_db(conn).update(
        points_available=F("points_available") + available,
        points_pending=F("points_pending") + pending,
        lifetime_earned=F("lifetime_earned") + lifetime,
        updated_at=clock.now(),
    )
    if updated != 1:
        raise InsufficientPoints("not enough points available", field="amount")
    member.points_available += available
    member.points_pending += pending
    member.lifetime_earned += lifetime
    return await LedgerEntry.create(
        member_id=member.id,
        kind=kind,
        delta_available=available,
        delta_pending=pending,
        delta_lifetime=lifetime,
        created_at=clock.now(),
        using_db=conn,
        **entry_fields,
    )


async def _create_lot(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    amount: int,
    available_at: datetime,
    purchase: Purchase | None = None,
) -> PointsLot:
    expires_at = available_at + timedelta(days=program.expiry_days) if program.expiry_days else None
    return await PointsLot.create(
        member_id=member.id,
        amount=amount,
        remaining=amount,
        status=LotStatus.PENDING if available_at > clock.now() else LotStatus.AVAILABLE,
        created_at=clock.now(),
        available_at=available_at,
        expires_at=expires_at,
        purchase=purchase,
        using_db=conn,
    )


def _spend_order(lot: PointsLot) -> tuple[bool, datetime | None, int]:
    # Earliest expiry first; lots that never expire last; then oldest first.
    return (lot.expires_at is None, lot.expires_at, lot.id)


async def _take_from_lots(conn: BaseDBAsyncClient, entry: LedgerEntry, lots: list[PointsLot], amount: int) -> int:
    """Take up to `amount` from `lots` in order, recording allocations; returns what was taken."""
    taken = 0
    for lot in lots:
        if taken == amount:
            break
        take = min(lot.remaining, amount - taken)
        if take <= 0:
            continue
        updated = (
            await PointsLot.filter(id=lot.id, remaining__gte=take)
            .using_db(conn)
            .update(remaining=F("remaining") - take)
        )
        if updated != 1:
            raise LedgerInconsistency(f"lot {lot.id} lost points under a member lock")
        lot.remaining -= take
        await LotAllocation.create(entry_id=entry.id, lot_id=lot.id, amount=take, using_db=conn)
        taken += take
    return taken


async def _available_lots(conn: BaseDBAsyncClient, member_id: int) -> list[PointsLot]:
    lots = await PointsLot.filter(member_id=member_id, status=LotStatus.AVAILABLE, remaining__gt=0).using_db(conn)
    return sorted(lots, key=_spend_order)


async def _debit_lots(conn: BaseDBAsyncClient, member: Member, entry: LedgerEntry, amount: int) -> None:
    taken = await _take_from_lots(conn, entry, await _available_lots(conn, member.id), amount)
    if taken != amount:
        raise LedgerInconsistency(f"member {member.id}: balance says {amount} available, lots hold {taken}")


# --- settling: pending lots mature, available lots expire -------------------------------------------


async def settle(conn: BaseDBAsyncClient, member: Member) -> None:
    """Mature due pending lots and expire due available lots of a locked member (idempotent)."""
    at = clock.now()
    due = await PointsLot.filter(member_id=member.id, status=LotStatus.PENDING, available_at__lte=at).using_db(conn)
    for lot in sorted(due, key=lambda lot: (lot.available_at, lot.id)):
        await PointsLot.filter(id=lot.id).using_db(conn).update(status=LotStatus.AVAILABLE)
        if lot.remaining:
            await _post(conn, member, EntryKind.MATURE, available=lot.remaining, pending=-lot.remaining, lot_id=lot.id)
            await events.emit(
                conn,
                events.POINTS_MATURED,
                member_id=member.id,
                payload={"amount": lot.remaining, "lot_id": lot.id},
            )
    expired = await PointsLot.filter(member_id=member.id, status=LotStatus.AVAILABLE, expires_at__lte=at).using_db(conn)
    # A negative balance (a clawback overdraw, where the programme allows it) is a debt that later points repay:
    # the lots then hold `debt` more than the balance. Those points were already netted against the debt, so
    # expiring them must not deduct them from the balance a second time; the debt counts as repaid by the
    # earliest-expiring lots (the spend order). Without a negative balance the debt is 0 and nothing changes.
    debt = 0
    if expired:
        held = (
            await PointsLot.filter(member_id=member.id, status=LotStatus.AVAILABLE)
            .using_db(conn)
            .annotate(total=Sum("remaining"))
            .values_list("total", flat=True)
        )
        debt = max(0, int((held[0] if held else 0) or 0) - member.points_available)
    for lot in sorted(expired, key=_spend_order):
        await PointsLot.filter(id=lot.id).using_db(conn).update(status=LotStatus.EXPIRED)
        if lot.remaining:
            repaid = min(debt, lot.remaining)
            debt -= repaid
            entry = await _post(
                conn,
                member,
                EntryKind.EXPIRE,
                available=-(lot.remaining - repaid),
                allow_overdraw=True,
                lot_id=lot.id,
                description=f"{repaid} had repaid a negative balance" if repaid else "",
            )
            await _take_from_lots(conn, entry, [lot], lot.remaining)
            await events.emit(
                conn,
                events.POINTS_EXPIRED,
                member_id=member.id,
                payload={"amount": entry.delta_available * -1, "lot_id": lot.id, "entry_id": entry.id},
            )
    await _schedule_next_settle(conn, member)


async def _schedule_next_settle(conn: BaseDBAsyncClient, member: Member) -> None:
    pending = (
        await PointsLot.filter(member_id=member.id, status=LotStatus.PENDING)
        .using_db(conn)
        .annotate(at=Min("available_at"))
        .values_list("at", flat=True)
    )
    expiring = (
        await PointsLot.filter(member_id=member.id, status=LotStatus.AVAILABLE, remaining__gt=0)
        .using_db(conn)
        .annotate(at=Min("expires_at"))
        .values_list("at", flat=True)
    )
    candidates = [t for t in (*pending, *expiring) if t is not None]
    member.next_settle_at = min(candidates) if candidates else None
    await Member.filter(id=member.id).using_db(conn).update(next_settle_at=member.next_settle_at)


async def settle_member_if_due(member: Member) -> Member:
    """Bring a member's balances up to date before showing them (a no-op unless a lot is due)."""
    if member.next_settle_at is None or member.next_settle_at > clock.now():
        return member
    async with locked_member(member.id) as (conn, locked):
        await settle(conn, locked)
        return locked


_EXPIRING_SOON = (
    'SELECT "member_id", "expires_at", "remaining" FROM "points_lot"'
    ' WHERE "member_id" IN ({ids}) AND "status" = ? AND "remaining" > 0 AND "expires_at" <= ?'
    ' ORDER BY "expires_at", "id"'
)
_ACTIVITY = sql.Select(LedgerEntry, 'WHERE "member_id" = ? AND "kind" <> ? ORDER BY "id" DESC LIMIT ?')
_ACTIVITY_BEFORE = sql.Select(
    LedgerEntry, 'WHERE "member_id" = ? AND "kind" <> ? AND "id" < ? ORDER BY "id" DESC LIMIT ?'
)


async def points_expiring_soon(member_ids: Sequence[int], until: datetime) -> dict[int, list[tuple[datetime, int]]]:
    """Per member, the available points that expire by `until`: (expiry time, points) summed per expiry, soonest first.

    One query for any number of members (the app's "expiring soon" warning).
    """
    rows = await sql.fetch(_EXPIRING_SOON, [LotStatus.AVAILABLE.value, until], ids=list(member_ids))
    totals: dict[int, dict[datetime, int]] = {member_id: {} for member_id in member_ids}
    for row in rows:
        expires_at = PointsLot._meta.fields_map["expires_at"].to_python_value(row["expires_at"])
        by_expiry = totals[row["member_id"]]
        by_expiry[expires_at] = by_expiry.get(expires_at, 0) + row["remaining"]
    return {member_id: list(by_expiry.items()) for member_id, by_expiry in totals.items()}


async def activity_page(member_id: int, limit: int, before: int | None = None) -> list[LedgerEntry]:
    """The member's ledger entries newest first, `limit` of them with ids below `before`.

    Maturing (pending -> available) is bookkeeping, not activity, and is left out.
    """
    statement = _ACTIVITY if before is None else _ACTIVITY_BEFORE
    params = [member_id, EntryKind.MATURE.value, *([] if before is None else [before]), limit]
    return await sql.fetch_models(statement, params)


async def expire_due_points(batch_size: int = 500) -> int:
    """The expiry job: settle every member with a due lot. Safe to run twice and alongside earns.

    Returns the number of members settled.
    """
    settled = 0
    while True:
        due_ids = (
            await Member.filter(next_settle_at__lte=clock.now())
            .order_by("next_settle_at", "id")
            .limit(batch_size)
            .values_list("id", flat=True)
        )
        if not due_ids:
            return settled
        for member_id in due_ids:
            async with locked_member(member_id) as (conn, member):
                await settle(conn, member)
            settled += 1


# --- earning --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarnResult:
    purchase_id: int
    points: int
    available_at: str
    tier: str


def points_for_amount(program: Program, amount_minor: int, multiplier: Decimal) -> int:
    """Points for a spend: minor units x earn rate x multiplier, floored to whole points."""
    major = Decimal(amount_minor) / (Decimal(10) ** program.currency_exponent)
    return int((major * Decimal(program.earn_rate) * multiplier).to_integral_value(rounding=ROUND_FLOOR))


def _check_amount(value: int, field: str, *, allow_zero: bool = False) -> None:
    low = 0 if allow_zero else 1
    # `bool` is an `int` subclass: `True` must not pass as an amount of 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < low or value > MAX_POINTS * 100:
        raise InvalidInput(f"{field} must be a whole number of at least {low}", field=field)


def _store_key(store_code: str, reference: str) -> str:
    """An unambiguous idempotency key for a reference (receipt or refund id) that is unique per store.

    A plain f"{store}:{reference}" made store "A" + receipt "B:C" and store "A:B" + receipt "C" share a key, so the
    second purchase silently replayed the first one's answer and was never recorded. The store code's length
    prefix keeps the pair apart.
    """
    return f"{len(store_code)}:{store_code}:{reference}"


# Column sizes of Purchase.store_code / receipt_id and Refund.refund_id.
_REFERENCE_LIMITS = {"storeCode": 32, "receiptId": 64, "refundId": 64}


def _check_references(**references: str) -> None:
    # Over-long references used to reach the model and fail with Tortoise's `ValidationError` (not a
    # `DomainError`, so the API showed a fault instead of a userError) after the idempotency record was written.
    for name, value in references.items():
        if len(value) > _REFERENCE_LIMITS[name]:
            raise InvalidInput(f"{name} must be at most {_REFERENCE_LIMITS[name]} characters", field=name)


def _check_key(idempotency_key: str) -> None:
    # The scoped key is f"{member_id}:{idempotency_key}", never empty itself, so `run_idempotent`'s own check
    # cannot catch an empty client key: every empty key of a member would otherwise share one record.
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise InvalidInput("an idempotency key is required", field="idempotencyKey")


@dataclass
class PurchaseEarning:
    """What `earn_purchase` wrote inside the caller's transaction (the member stays locked until it commits)."""

    member: Member
    program: Program
    purchase: Purchase
    breakdown: EarnBreakdown
    tier: Tier
    available_at: datetime


def purchase_key(store_code: str, receipt_id: str) -> str:
    """The idempotency key of a purchase (scope `"purchase"`): the receipt id is unique per store."""
    return _store_key(store_code, receipt_id)


def check_purchase(*, store_code: str, receipt_id: str, occurred_at: datetime, total: int) -> None:
    """Validate a purchase's header before anything is written (raises `InvalidInput`)."""
    _check_amount(total, "total", allow_zero=True)
    if not store_code or not receipt_id:
        raise InvalidInput("store code and receipt id are required", field="receiptId")
    _check_references(storeCode=store_code, receiptId=receipt_id)
    if occurred_at.tzinfo is None:
        raise InvalidInput("occurredAt needs a timezone", field="occurredAt")
    if occurred_at > clock.now() + FUTURE_TOLERANCE:
        raise InvalidInput("occurredAt is in the future", field="occurredAt")


async def earn_purchase(
    conn: BaseDBAsyncClient,
    member_id: int,
    *,
    store_code: str,
    receipt_id: str,
    occurred_at: datetime,
    currency: str,
    total: int,
    lines: Sequence[LineInput] | None = None,
    eligible_total: int | None = None,
) -> PurchaseEarning:
    """Record a purchase and credit its points by the earning rules, inside the caller's transaction.

    With `lines`, each line is stored with its points (refunds by line reverse them); without, `eligible_total`
    (default: `total`) counts as one implicit line. Points are pending until the end of the return window; the
    tier is re-evaluated at once; `Member.last_purchase_at` moves forward. The caller validated the input
    (`check_purchase`) and runs this under the purchase's idempotency key.
    """
    program = await load_program(conn)
    if currency != program.currency:
        raise CurrencyMismatch(f"the programme runs in {program.currency}, not {currency}", field="currency")
    member = await lock_member(conn, member_id)
    await settle(conn, member)
    tier = next((t for t in program.tiers if t.id == member.tier_id), None)
    earning_lines = (
        lines if lines is not None else [LineInput("", "", 1, total if eligible_total is None else eligible_total)]
    )
    breakdown = compute_points(program, tier, earning_lines, await active_rules(occurred_at, conn))
    points = breakdown.points
    qualifying = breakdown.base if program.tier_metric == TierMetric.POINTS else total
    purchase = await Purchase.create(
        member_id=member.id,
        store_code=store_code,
        receipt_id=receipt_id,
        occurred_at=occurred_at,
        currency=currency,
        total=total,
        points_earned=points,
        qualifying_value=qualifying,
        created_at=clock.now(),
        using_db=conn,
    )
    if lines is not None:
        await PurchaseLine.bulk_create(
            [
                PurchaseLine(
                    purchase_id=purchase.id,
                    line_no=earned.line_no,
                    sku=line.sku,
                    category=line.category,
                    quantity=line.quantity,
                    amount=line.amount,
                    voided=line.voided,
                    excluded=earned.excluded,
                    points=earned.points,
                )
                for line, earned in zip(lines, breakdown.lines, strict=True)
            ],
            using_db=conn,
        )
    available_at = occurred_at + timedelta(days=program.pending_days)
    if points:
        lot = await _create_lot(conn, member, program, points, available_at, purchase)
        pending = lot.status == LotStatus.PENDING
        await _post(
            conn,
            member,
            EntryKind.EARN,
            pending=points if pending else 0,
            available=0 if pending else points,
            lifetime=points,
            lot_id=lot.id,
            purchase=purchase,
        )
    if qualifying:
        await QualifyingCredit.create(
            member_id=member.id, amount=qualifying, occurred_at=occurred_at, purchase=purchase, using_db=conn
        )
    if member.last_purchase_at is None or occurred_at > member.last_purchase_at:
        member.last_purchase_at = occurred_at
        await Member.filter(id=member.id).using_db(conn).update(last_purchase_at=occurred_at)
    new_tier = await evaluate_tier(conn, member, program)
    await settle(conn, member)  # schedules maturity/expiry of the new lot
    await events.emit(
        conn,
        events.POINTS_EARNED,
        member_id=member.id,
        payload={"purchase_id": purchase.id, "store_code": store_code, "receipt_id": receipt_id, "points": points},
    )
    return PurchaseEarning(member, program, purchase, breakdown, new_tier, available_at)


async def earn_for_purchase(
    member_id: int,
    *,
    store_code: str,
    receipt_id: str,
    occurred_at: datetime,
    currency: str,
    total: int,
    eligible_total: int | None = None,
) -> EarnResult:
    """Credit points for a purchase without lines; idempotent on (store_code, receipt_id).

    `eligible_total` is the part of `total` that earns (defaults to all of it). Campaigns apply (see
    `loyalty.earning`); receipts with lines go through `loyalty.purchases.record_purchase`.
    """
    check_purchase(store_code=store_code, receipt_id=receipt_id, occurred_at=occurred_at, total=total)
    eligible = total if eligible_total is None else eligible_total
    _check_amount(eligible, "eligibleTotal", allow_zero=True)
    if eligible > total:
        raise InvalidInput("eligible total cannot exceed the total", field="eligibleTotal")
    request = {
        "member": member_id,
        # In UTC: a retry stating the same instant with another UTC offset is the same request.
        "occurred_at": occurred_at.astimezone(UTC).isoformat(),
        "currency": currency,
        "total": total,
        "eligible": eligible,
    }

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        earned = await earn_purchase(
            conn,
            member_id,
            store_code=store_code,
            receipt_id=receipt_id,
            occurred_at=occurred_at,
            currency=currency,
            total=total,
            eligible_total=eligible,
        )
        result = EarnResult(
            earned.purchase.id, earned.breakdown.points, earned.available_at.isoformat(), earned.tier.name
        )
        return asdict(result)

    return EarnResult(**await run_idempotent("purchase", purchase_key(store_code, receipt_id), request, action))


async def credit_available(
    conn: BaseDBAsyncClient, member: Member, program: Program, amount: int, *, kind: EntryKind, description: str = ""
) -> LedgerEntry:
    """Credit `amount` immediately available points to a member locked in the caller's transaction.

    For features that must credit atomically with their own writes (engagement events, bonus offers, birthday).
    Emits `points.adjusted`.
    """
    _check_amount(amount, "amount")
    await settle(conn, member)
    lot = await _create_lot(conn, member, program, amount, clock.now())
    entry = await _post(
        conn, member, kind, available=amount, lifetime=amount, lot_id=lot.id, description=description[:200]
    )
    await settle(conn, member)
    await events.emit(conn, events.POINTS_ADJUSTED, member_id=member.id, payload={"kind": kind.value, "amount": amount})
    return entry


async def debit_available(
    conn: BaseDBAsyncClient, member: Member, amount: int, *, kind: EntryKind = EntryKind.REDEEM, description: str = ""
) -> LedgerEntry:
    """Debit `amount` available points, earliest-expiring lots first, from a member locked in the caller's transaction.

    Raises `InsufficientPoints` when the balance does not cover it (the caller's transaction then rolls back).
    Emits `points.redeemed` (or `points.adjusted` for adjustments).
    """
    _check_amount(amount, "amount")
    await settle(conn, member)
    entry = await _post(conn, member, kind, available=-amount, description=description[:200])
    await _debit_lots(conn, member, entry, amount)
    await _schedule_next_settle(conn, member)
    await events.emit(
        conn,
        events.POINTS_REDEEMED if kind == EntryKind.REDEEM else events.POINTS_ADJUSTED,
        member_id=member.id,
        payload={"entry_id": entry.id, "amount": amount, "balance": member.points_available},
    )
    return entry


async def reverse_debit(conn: BaseDBAsyncClient, member: Member, entry_id: int) -> LedgerEntry:
    """Give back exactly what a redemption took, to the lots it took it from, in the caller's transaction.

    Points whose lot has expired meanwhile expire again at once. A redemption is reversed at most once
    (`AlreadyReversed`); an entry that is not this member's redemption is `NotFound`.
    """
    original = await LedgerEntry.get_or_none(id=entry_id, member_id=member.id, kind=EntryKind.REDEEM).using_db(conn)
    if original is None:
        raise NotFound("no such redemption", field="entryId")
    if await LedgerEntry.filter(reverses_id=entry_id).using_db(conn).exists():
        raise AlreadyReversed("this redemption was already cancelled", field="entryId")
    amount = -original.delta_available
    reversal = await _post(conn, member, EntryKind.REVERSAL, available=amount, reverses_id=original.id)
    for allocation in await LotAllocation.filter(entry_id=original.id).using_db(conn):
        await (
            PointsLot.filter(id=allocation.lot_id)
            .using_db(conn)
            .update(remaining=F("remaining") + allocation.amount, status=LotStatus.AVAILABLE)
        )
        await LotAllocation.create(
            entry_id=reversal.id, lot_id=allocation.lot_id, amount=-allocation.amount, using_db=conn
        )
    await settle(conn, member)
    await events.emit(
        conn,
        events.POINTS_REDEMPTION_CANCELLED,
        member_id=member.id,
        payload={"entry_id": original.id, "amount": amount},
    )
    return reversal


async def credit_points(
    member_id: int, amount: int, *, kind: EntryKind, idempotency_key: str, description: str = ""
) -> int:
    """Credit immediately available points (birthday, referral bonus, positive adjustment); returns the entry id."""
    if kind not in (EntryKind.BIRTHDAY, EntryKind.REFERRAL_BONUS, EntryKind.ADJUSTMENT):
        raise ValueError(f"{kind} is not a direct credit")
    _check_amount(amount, "amount")
    _check_key(idempotency_key)

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        member = await lock_member(conn, member_id)
        entry = await credit_available(
            conn, member, await load_program(conn), amount, kind=kind, description=description
        )
        return {"entry_id": entry.id}

    request = {"member": member_id, "amount": amount, "kind": kind.value}
    result = await run_idempotent(kind.value, f"{member_id}:{idempotency_key}", request, action)
    return int(result["entry_id"])


# --- spending -------------------------------------------------------------------------------------


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
    """Debit `amount` available points, earliest-expiring lots first; idempotent per member and key.

    Raises `InsufficientPoints` (nothing written) when the balance does not cover it.
    """
    if kind not in (EntryKind.REDEEM, EntryKind.ADJUSTMENT):
        raise ValueError(f"{kind} is not a debit")
    _check_amount(amount, "amount")
    _check_key(idempotency_key)

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        member = await lock_member(conn, member_id)
        entry = await debit_available(conn, member, amount, kind=kind, description=description)
        return asdict(Redemption(entry.id, amount, member.points_available))

    request = {"member": member_id, "amount": amount, "kind": kind.value}
    return Redemption(**await run_idempotent(kind.value, f"{member_id}:{idempotency_key}", request, action))


async def cancel_redemption(member_id: int, entry_id: int) -> int:
    """Give back exactly the points a redemption took, to the lots it took them from; returns the new entry id.

    Points whose lot has expired meanwhile expire again at once. A redemption is reversed at most once.
    """
    async with locked_member(member_id) as (conn, member):
        return (await reverse_debit(conn, member, entry_id)).id


# --- returns --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundResult:
    refund_id: int
    points_reversed: int
    points_recovered: int
    unrecovered: int
    amount: int  # money refunded, minor units (computed from the lines for a refund by lines)
    purchase_id: int
    member_id: int


@dataclass(frozen=True)
class LineRefund:
    """Refund `quantity` items of the purchase line `line_no` (1-based, as on the receipt)."""

    line_no: int
    quantity: int


def refund_key(store_code: str, refund_id: str) -> str:
    """The idempotency key of a refund (scope `"refund"`): the refund id is unique per store."""
    return _store_key(store_code, refund_id)


def check_refund(
    *, store_code: str, receipt_id: str, refund_id: str, amount: int | None, lines: Sequence[LineRefund] | None
) -> dict[str, Any]:
    """Validate a refund request (raises `InvalidInput`); returns its idempotency request document."""
    # As in `earn_for_purchase`: the scoped key "store:refund" is never empty, so check the parts.
    if not store_code or not receipt_id or not refund_id:
        raise InvalidInput("store code, receipt id and refund id are required", field="refundId")
    _check_references(storeCode=store_code, receiptId=receipt_id, refundId=refund_id)
    if (amount is None) == (lines is None):
        raise InvalidInput("refund either an amount or lines", field="amount")
    if amount is not None:
        _check_amount(amount, "amount")
        return {"receipt_id": receipt_id, "amount": amount}
    assert lines is not None
    if not lines:
        raise InvalidInput("name at least one line to refund", field="lines")
    if len({line.line_no for line in lines}) != len(lines):
        raise InvalidInput("each line may be named once", field="lines")
    for line in lines:
        _check_amount(line.line_no, "lines")
        _check_amount(line.quantity, "lines")
    return {"receipt_id": receipt_id, "lines": sorted([line.line_no, line.quantity] for line in lines)}


async def _refund_lines(conn: BaseDBAsyncClient, purchase: Purchase, lines: Sequence[LineRefund]) -> tuple[int, int]:
    """Mark refunded quantities on the purchase's lines; returns (money refunded, points those lines earned).

    Per line, money and points are taken in proportion to the quantity with cumulative flooring, so refunding
    a line's items one by one reverses exactly the line's points and amount in the end.
    """
    stored = {
        line.line_no: line
        for line in await PurchaseLine.filter(purchase_id=purchase.id, line_no__in=[r.line_no for r in lines])
        .using_db(conn)
        .select_for_update()
    }
    amount = points = 0
    for request in lines:
        line = stored.get(request.line_no)
        if line is None:
            raise InvalidInput(f"the purchase has no line {request.line_no}", field="lines")
        bought = 0 if line.voided else line.quantity  # a voided line was never sold
        after = line.refunded_quantity + request.quantity
        if after > bought:
            raise RefundExceedsPurchase(
                f"line {line.line_no}: only {bought - line.refunded_quantity} left to refund", field="lines"
            )
        amount += line.amount * after // bought - line.amount * line.refunded_quantity // bought
        points += line.points * after // bought - line.points * line.refunded_quantity // bought
        await PurchaseLine.filter(id=line.id).using_db(conn).update(refunded_quantity=after)
    return amount, points


def not_the_members_receipt(store_code: str, receipt_id: str) -> PurchaseNotFound:
    """The refusal when a refund names a member and the receipt is not theirs (or does not exist)."""
    return PurchaseNotFound(f"this member has no receipt {receipt_id} in store {store_code}", field="receiptId")


async def refund_in_transaction(
    conn: BaseDBAsyncClient,
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None = None,
    lines: Sequence[LineRefund] | None = None,
    member_id: int | None = None,
) -> RefundResult:
    """Claw back a refund's points inside the caller's transaction; the caller ran `check_refund`.

    With `member_id`, only that member's receipt is refunded (another member's is `PurchaseNotFound`).

    By amount: in proportion to the refunded amount, cumulatively over the purchase (a full refund reverses
    exactly the purchase's points). By lines: the points those lines earned, in proportion to the refunded
    quantity. Either way never more than the purchase earned and not yet reversed. Takes from the purchase's own
    lots first, then other available points; below zero only where the programme allows it; what cannot be
    recovered is recorded on the entry. Qualifying value goes back in proportion to the money refunded.
    """
    purchase = await Purchase.get_or_none(store_code=store_code, receipt_id=receipt_id).using_db(conn)
    if member_id is not None and (purchase is None or purchase.member_id != member_id):
        raise not_the_members_receipt(store_code, receipt_id)
    if purchase is None:
        raise PurchaseNotFound("no purchase with this receipt in this store", field="receiptId")
    program = await load_program(conn)
    member = await lock_member(conn, purchase.member_id)
    purchase = await Purchase.filter(id=purchase.id).using_db(conn).select_for_update().first()
    assert purchase is not None
    if lines is not None:
        amount, line_points = await _refund_lines(conn, purchase, lines)
    assert amount is not None
    if purchase.refunded_total + amount > purchase.total:
        raise RefundExceedsPurchase(
            f"only {purchase.total - purchase.refunded_total} of this purchase is left to refund", field="amount"
        )
    await settle(conn, member)
    refunded = purchase.refunded_total + amount
    if lines is not None:
        to_reverse = min(line_points, purchase.points_earned - purchase.points_reversed)
    else:
        # max(0, …): refunds by line may already have reversed more than this share.
        to_reverse = max(0, purchase.points_earned * refunded // purchase.total - purchase.points_reversed)
    reversed_total = purchase.points_reversed + to_reverse
    qualifying_back = 0
    if purchase.total:  # a receipt of free items (total 0) can still be refunded by lines
        qualifying_back = (purchase.qualifying_value * refunded // purchase.total) - (
            purchase.qualifying_value * purchase.refunded_total // purchase.total
        )
    recovered = unrecovered = 0
    if to_reverse:
        recovered, unrecovered = await _claw_back(conn, member, program, purchase, to_reverse)
    refund = await Refund.create(
        purchase_id=purchase.id,
        refund_id=refund_id,
        amount=amount,
        points_reversed=to_reverse,
        points_recovered=recovered,
        unrecovered=unrecovered,
        created_at=clock.now(),
        using_db=conn,
    )
    await Purchase.filter(id=purchase.id).using_db(conn).update(refunded_total=refunded, points_reversed=reversed_total)
    purchase.refunded_total, purchase.points_reversed = refunded, reversed_total
    if qualifying_back:
        await QualifyingCredit.create(
            member_id=member.id,
            amount=-qualifying_back,
            occurred_at=purchase.occurred_at,
            purchase_id=purchase.id,
            using_db=conn,
        )
    await _schedule_next_settle(conn, member)
    await events.emit(
        conn,
        events.POINTS_REFUNDED,
        member_id=member.id,
        payload={
            "purchase_id": purchase.id,
            "refund_id": refund_id,
            "reversed": to_reverse,
            "unrecovered": unrecovered,
        },
    )
    return RefundResult(refund.id, to_reverse, recovered, unrecovered, amount, purchase.id, member.id)


async def refund_purchase(
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None = None,
    lines: Sequence[LineRefund] | None = None,
) -> RefundResult:
    """Claw back points for a refund by amount or by lines; idempotent on (store_code, refund_id).

    See `refund_in_transaction` for the rules.
    """
    request = check_refund(
        store_code=store_code, receipt_id=receipt_id, refund_id=refund_id, amount=amount, lines=lines
    )

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        result = await refund_in_transaction(
            conn, store_code=store_code, receipt_id=receipt_id, refund_id=refund_id, amount=amount, lines=lines
        )
        return asdict(result)

    return RefundResult(**await run_idempotent("refund", refund_key(store_code, refund_id), request, action))


async def _claw_back(
    conn: BaseDBAsyncClient, member: Member, program: Program, purchase: Purchase, points: int
) -> tuple[int, int]:
    """Take `points` back: the purchase's own pending lots, its available lots, then other available lots."""
    own = await PointsLot.filter(purchase_id=purchase.id, remaining__gt=0).using_db(conn)
    own_pending = [lot for lot in own if lot.status == LotStatus.PENDING]
    own_available = sorted((lot for lot in own if lot.status == LotStatus.AVAILABLE), key=_spend_order)
    others = [lot for lot in await _available_lots(conn, member.id) if lot.purchase_id != purchase.id]
    from_pending = min(points, sum(lot.remaining for lot in own_pending))
    from_available = min(points - from_pending, sum(lot.remaining for lot in own_available + others))
    overdraw = points - from_pending - from_available if program.allow_negative_balance else 0
    unrecovered = points - from_pending - from_available - overdraw
    entry = await _post(
        conn,
        member,
        EntryKind.REFUND_CLAWBACK,
        pending=-from_pending,
        available=-(from_available + overdraw),
        lifetime=-points,
        allow_overdraw=True,
        unrecovered=unrecovered,
        purchase_id=purchase.id,
    )
    await _take_from_lots(conn, entry, own_pending, from_pending)
    await _take_from_lots(conn, entry, own_available + others, from_available)
    for lot in own_pending:
        if lot.remaining == 0:
            await PointsLot.filter(id=lot.id).using_db(conn).update(status=LotStatus.VOID)
    return from_pending + from_available + overdraw, unrecovered


async def adjust_points(member_id: int, amount: int, *, idempotency_key: str, reason: str) -> int:
    """A manual correction: positive credits an available lot, negative debits like a redemption.

    Returns the ledger entry id.
    """
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
