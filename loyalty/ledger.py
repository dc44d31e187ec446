"""The points ledger's posting core: lots, entries, settling, and the credit/debit/reverse primitives.

Every change runs in one transaction with the member row locked (`SELECT … FOR UPDATE` on PostgreSQL;
SQLite serializes writers), writes one append-only `LedgerEntry` and moves the cached balances by the
entry's deltas with a conditional `UPDATE` that refuses to overdraw (`_post`, the one place balances move).
Debits consume available lots earliest-expiry first and record `LotAllocation`s, so expiry never takes spent
points and a reversal gives back exactly what was taken.

Features call these primitives inside their own transaction (`locked_member` / `lock_member`): purchases and
refunds (`loyalty.purchases`), rewards and vouchers, offers, engagement, birthdays and adjustments. What the member
app reads of the ledger (activity, expiring soon) is in `loyalty.activity`; the job that settles every due member
is `loyalty.jobs.expire_points`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Subquery
from tortoise.functions import Min, Sum
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from loyalty import clock, events
from loyalty.checks import MAX_POINTS, check_amount
from loyalty.errors import (
    AlreadyReversed,
    InsufficientPoints,
    LedgerInconsistency,
    MemberNotFound,
    NotFound,
)
from loyalty.models import (
    EntryKind,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    Member,
    PointsLot,
    Program,
    Purchase,
)
from loyalty.program import PROGRAM_ID


@asynccontextmanager
async def locked_member(member_id: int) -> AsyncIterator[tuple[BaseDBAsyncClient, Member]]:
    """Open a transaction with `member_id`'s row locked; every ledger change for a member goes through it."""
    async with in_transaction() as conn:
        yield conn, await lock_member(conn, member_id)


async def lock_member(conn: BaseDBAsyncClient, member_id: int) -> Member:
    """Lock and return the member row inside the transaction `conn`."""
    member, _ = await _lock(conn, Member.filter(id=member_id), program_version=False)
    if member is None:
        raise MemberNotFound("no such member", field="member_id")
    return member


async def lock_member_with_program_version(conn: BaseDBAsyncClient, member_id: int) -> tuple[Member, int | None]:
    """`lock_member`, and `program.version` read by the same statement (for `program.current_configuration(conn,
    version)`): the lock and the configuration's freshness in one round trip. The version is None without a program.
    """
    member, version = await _lock(conn, Member.filter(id=member_id), program_version=True)
    if member is None:
        raise MemberNotFound("no such member", field="member_id")
    return member, version


async def lock_member_of_receipt(
    conn: BaseDBAsyncClient, store_code: str, receipt_id: str
) -> tuple[Member | None, int | None]:
    """Lock the member who made a receipt (None without such a purchase) and read `program.version`, in one
    statement."""
    receipt = Purchase.filter(store_code=store_code, receipt_id=receipt_id).values("member_id")
    return await _lock(conn, Member.filter(id=Subquery(receipt)), program_version=True)


async def _lock(
    conn: BaseDBAsyncClient, query: QuerySet[Member], *, program_version: bool
) -> tuple[Member | None, int | None]:
    query = query.using_db(conn).select_for_update()
    if program_version:
        query = query.annotate(program_version=Subquery(Program.filter(id=PROGRAM_ID).values("version")))
    member = await query.first()
    version = getattr(member, "program_version", None)
    return member, int(version) if version is not None else None


async def _post(
    conn: BaseDBAsyncClient,
    member: Member,
    kind: EntryKind,
    *,
    available: int = 0,
    pending: int = 0,
    lifetime: int = 0,
    allow_overdraw: bool = False,
    occurred_at: datetime | None = None,
    member_fields: dict[str, Any] | None = None,
    **entry_fields: Any,
) -> LedgerEntry:
    """Append an entry and move the cached balances by its deltas, refusing to overdraw the balance.

    `occurred_at` is when it happened in business terms (a purchase's receipt time); by default, now.
    `member_fields` are other member columns the operation changes (its tier, `next_settle_at`,
    `last_purchase_at`), written by the same conditional UPDATE and set on `member` once it succeeded: one
    statement for everything a purchase changes on the member row.
    """
    query = Member.filter(id=member.id)
    if available < 0 and not allow_overdraw:
        query = query.filter(points_available__gte=-available)
    extra = member_fields or {}
    updated = await query.using_db(conn).update(
        points_available=F("points_available") + available,
        points_pending=F("points_pending") + pending,
        lifetime_earned=F("lifetime_earned") + lifetime,
        updated_at=clock.now(),
        **extra,
    )
    if updated != 1:
        raise InsufficientPoints("not enough points available", field="amount")
    member.points_available += available
    member.points_pending += pending
    member.lifetime_earned += lifetime
    for name, value in extra.items():
        setattr(member, name, value)
    return await LedgerEntry.create(
        member_id=member.id,
        kind=kind,
        delta_available=available,
        delta_pending=pending,
        delta_lifetime=lifetime,
        created_at=clock.now(),
        occurred_at=occurred_at or clock.now(),
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


def _plan_takes(lots: list[PointsLot], amount: int) -> list[tuple[PointsLot, int]]:
    """What taking up to `amount` from `lots` in order takes from each: (lot, points) pairs, nothing written."""
    takes: list[tuple[PointsLot, int]] = []
    taken = 0
    for lot in lots:
        if taken == amount:
            break
        take = min(lot.remaining, amount - taken)
        if take <= 0:
            continue
        takes.append((lot, take))
        taken += take
    return takes


async def _apply_takes(
    conn: BaseDBAsyncClient, entry: LedgerEntry, takes: list[tuple[PointsLot, int]], *, void_emptied: bool = False
) -> None:
    """Take planned points from their lots (a conditional UPDATE each) and record the allocations (one batch).

    With `void_emptied`, a lot taken down to zero becomes VOID in the same UPDATE (a refund's own pending lots).
    """
    allocations: list[LotAllocation] = []
    for lot, take in takes:
        values: dict[str, Any] = {"remaining": F("remaining") - take}
        emptied = void_emptied and take == lot.remaining
        if emptied:
            values["status"] = LotStatus.VOID
        updated = await PointsLot.filter(id=lot.id, remaining__gte=take).using_db(conn).update(**values)
        if updated != 1:
            raise LedgerInconsistency(f"lot {lot.id} lost points under a member lock")
        lot.remaining -= take
        if emptied:
            lot.status = LotStatus.VOID
        allocations.append(LotAllocation(entry_id=entry.id, lot_id=lot.id, amount=take))
    if allocations:
        await LotAllocation.bulk_create(allocations, using_db=conn)


async def _take_from_lots(conn: BaseDBAsyncClient, entry: LedgerEntry, lots: list[PointsLot], amount: int) -> int:
    """Take up to `amount` from `lots` in order, recording allocations; returns what was taken."""
    takes = _plan_takes(lots, amount)
    await _apply_takes(conn, entry, takes)
    return sum(take for _, take in takes)


async def _available_lots(conn: BaseDBAsyncClient, member_id: int) -> list[PointsLot]:
    lots = await PointsLot.filter(member_id=member_id, status=LotStatus.AVAILABLE, remaining__gt=0).using_db(conn)
    return sorted(lots, key=_spend_order)


# --- settling: pending lots mature, available lots expire -------------------------------------------


async def settle(conn: BaseDBAsyncClient, member: Member, at: datetime | None = None) -> None:
    """Mature pending lots and expire available lots of a locked member that are due at `at` (default: now).

    Idempotent. A read passes its request's instant, so what it shows is settled as of the moment it shows.
    """
    at = at or clock.now()
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
    # A negative balance (a clawback overdraw, where the program allows it) is a debt that later points repay:
    # the lots then hold `debt` more than the balance. Those points were already netted against the debt, so
    # expiring them must not deduct them from the balance a second time; the debt counts as repaid by the
    # earliest-expiring lots (the spend order). Without a negative balance the debt is 0 and nothing changes.
    debt = 0
    if expired:
        held = (
            await PointsLot.filter(member_id=member.id, status=LotStatus.AVAILABLE)
            .using_db(conn)
            .annotate(total=Sum("remaining"))
            .values("total")
        )
        debt = max(0, int((held[0]["total"] if held else 0) or 0) - member.points_available)
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


async def _next_settle_at(conn: BaseDBAsyncClient, member_id: int, exclude: list[int] | None = None) -> datetime | None:
    """The earliest maturity of a pending lot or expiry of an available lot with points (lots `exclude`d aside)."""
    pending = PointsLot.filter(member_id=member_id, status=LotStatus.PENDING)
    expiring = PointsLot.filter(member_id=member_id, status=LotStatus.AVAILABLE, remaining__gt=0)
    if exclude:
        pending, expiring = pending.exclude(id__in=exclude), expiring.exclude(id__in=exclude)
    rows = [
        *await pending.using_db(conn).annotate(at=Min("available_at")).values("at"),
        *await expiring.using_db(conn).annotate(at=Min("expires_at")).values("at"),
    ]
    return _earliest(*(row["at"] for row in rows))


async def _schedule_next_settle(conn: BaseDBAsyncClient, member: Member) -> None:
    member.next_settle_at = await _next_settle_at(conn, member.id)
    await Member.filter(id=member.id).using_db(conn).update(next_settle_at=member.next_settle_at)


async def _next_settle_after_taking(
    conn: BaseDBAsyncClient, member: Member, takes: list[tuple[PointsLot, int]]
) -> datetime | None:
    """The member's `next_settle_at` once `takes` are applied: lots emptied by them no longer mature or expire, so
    it moves only if one of them was the earliest (then it is read again without them, two statements)."""
    emptied = [lot for lot, take in takes if take == lot.remaining]
    dates = {lot.available_at if lot.status == LotStatus.PENDING else lot.expires_at for lot in emptied}
    if member.next_settle_at is None or member.next_settle_at not in dates:
        return member.next_settle_at
    return await _next_settle_at(conn, member.id, exclude=[lot.id for lot in emptied])


def is_settle_due(member: Member, at: datetime) -> bool:
    """True if a lot of `member` matures or expires by `at`: `settle` has something to do."""
    return member.next_settle_at is not None and member.next_settle_at <= at


async def settle_if_due(conn: BaseDBAsyncClient, member: Member, at: datetime | None = None) -> None:
    """`settle` a locked member if a lot is due at `at` (default: now); no statement otherwise.

    `next_settle_at` is the earliest maturity or expiry of the member's lots (every change of lots keeps it so), so
    a member who is not due has nothing to settle. (`settle` would also mark lots that expired empty, which changes
    no balance; the next settle that is due marks them.)
    """
    if is_settle_due(member, at or clock.now()):
        await settle(conn, member, at)


def _earliest(*moments: datetime | None) -> datetime | None:
    present = [moment for moment in moments if moment is not None]
    return min(present) if present else None


async def settle_member_if_due(member: Member, at: datetime) -> Member:
    """Bring a member's balances up to date as of `at` before showing them (a no-op unless a lot is due then)."""
    if not is_settle_due(member, at):
        return member
    async with locked_member(member.id) as (conn, locked):
        await settle(conn, locked, at)
        return locked


def _scheduling(
    member: Member, lot: PointsLot, member_fields: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bool]:
    """The member columns that schedule a new lot's maturity (pending) or expiry (available), and whether the lot is
    due already (then the caller settles at once instead)."""
    due = lot.available_at if lot.status == LotStatus.PENDING else lot.expires_at
    settle_now = due is not None and due <= clock.now()
    fields = dict(member_fields or {})
    if not settle_now:
        fields["next_settle_at"] = _earliest(member.next_settle_at, due)
    return fields, settle_now


async def credit_earned(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    points: int,
    *,
    available_at: datetime,
    purchase: Purchase,
    member_fields: dict[str, Any] | None = None,
) -> LedgerEntry:
    """Credit a purchase's points to a member locked and settled in the caller's transaction: a lot of its own,
    pending until `available_at` (the end of the return window; available at once if that has passed), then expiring
    by the program's policy.

    The new lot's maturity (or expiry) is scheduled in the same member UPDATE as the balances and `member_fields`
    (`next_settle_at` becomes the earlier of the two); a lot already due by then (a receipt sent long after it was
    made) is settled at once.
    """
    lot = await _create_lot(conn, member, program, points, available_at, purchase)
    pending = lot.status == LotStatus.PENDING
    fields, settle_now = _scheduling(member, lot, member_fields)
    entry = await _post(
        conn,
        member,
        EntryKind.EARN,
        pending=points if pending else 0,
        available=0 if pending else points,
        lifetime=points,
        lot_id=lot.id,
        purchase=purchase,
        # The member's activity shows the purchase when it was made, not when the till sent it.
        occurred_at=purchase.occurred_at,
        member_fields=fields,
    )
    if settle_now:
        await settle(conn, member)
    return entry


async def credit_available(
    conn: BaseDBAsyncClient, member: Member, program: Program, amount: int, *, kind: EntryKind, description: str = ""
) -> LedgerEntry:
    """Credit `amount` immediately available points to a member locked in the caller's transaction.

    For features that must credit atomically with their own writes (engagement events, bonus offers, birthday).
    Emits `points.adjusted`.
    """
    entry = await credit_pending(
        conn, member, program, amount, kind=kind, available_at=clock.now(), description=description
    )
    await events.emit(conn, events.POINTS_ADJUSTED, member_id=member.id, payload={"kind": kind.value, "amount": amount})
    return entry


async def debit_available(
    conn: BaseDBAsyncClient, member: Member, amount: int, *, kind: EntryKind = EntryKind.REDEEM, description: str = ""
) -> LedgerEntry:
    """Debit `amount` available points, earliest-expiring lots first, from a member locked in the caller's transaction.

    Raises `InsufficientPoints` when the balance does not cover it (the caller's transaction then rolls back).
    Emits `points.redeemed` (or `points.adjusted` for adjustments).
    """
    check_amount(amount, "amount", high=MAX_POINTS)
    await settle_if_due(conn, member)
    # The lots are read and the takes planned first, so that `next_settle_at` moves in the balance's own UPDATE.
    takes = _plan_takes(await _available_lots(conn, member.id), amount)
    next_settle_at = await _next_settle_after_taking(conn, member, takes)
    entry = await _post(
        conn,
        member,
        kind,
        available=-amount,
        description=description[:200],
        member_fields={"next_settle_at": next_settle_at},
    )
    taken = sum(take for _, take in takes)
    if taken != amount:
        raise LedgerInconsistency(f"member {member.id}: balance says {amount} available, lots hold {taken}")
    await _apply_takes(conn, entry, takes)
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
    original = await LedgerEntry.get_or_none(id=entry_id, member_id=member.id, kind=EntryKind.REDEEM, using_db=conn)
    if original is None:
        raise NotFound("no such redemption", field="entry_id")
    if await LedgerEntry.filter(reverses_id=entry_id).using_db(conn).exists():
        raise AlreadyReversed("this redemption was already cancelled", field="entry_id")
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


async def claw_back_purchase(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    purchase: Purchase,
    points: int,
    *,
    occurred_at: datetime | None = None,
) -> tuple[int, int]:
    """Take back `points` a purchase earned, from a member locked in the caller's transaction (a refund).

    From the purchase's own pending lots first, then its available lots, then other available lots; below zero only
    where the program allows it. `occurred_at`: when the refund happened, if the till said (default: now). Returns
    (points recovered, points that could not be recovered).
    """
    own = await PointsLot.filter(purchase_id=purchase.id, remaining__gt=0).using_db(conn)
    own_pending = [lot for lot in own if lot.status == LotStatus.PENDING]
    spendable = sorted((lot for lot in own if lot.status == LotStatus.AVAILABLE), key=_spend_order)
    from_pending = min(points, sum(lot.remaining for lot in own_pending))
    if points - from_pending > sum(lot.remaining for lot in spendable):  # other lots only when they are needed
        spendable += [lot for lot in await _available_lots(conn, member.id) if lot.purchase_id != purchase.id]
    from_available = min(points - from_pending, sum(lot.remaining for lot in spendable))
    overdraw = points - from_pending - from_available if program.allow_negative_balance else 0
    unrecovered = points - from_pending - from_available - overdraw
    pending_takes = _plan_takes(own_pending, from_pending)
    available_takes = _plan_takes(spendable, from_available)
    next_settle_at = await _next_settle_after_taking(conn, member, pending_takes + available_takes)
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
        occurred_at=occurred_at,
        member_fields={"next_settle_at": next_settle_at},
    )
    await _apply_takes(conn, entry, pending_takes, void_emptied=True)
    await _apply_takes(conn, entry, available_takes)
    return from_pending + from_available + overdraw, unrecovered


async def credit_pending(
    conn: BaseDBAsyncClient,
    member: Member,
    program: Program,
    amount: int,
    *,
    kind: EntryKind,
    available_at: datetime,
    description: str = "",
) -> LedgerEntry:
    """Credit `amount` points to a member locked in the caller's transaction as a lot of their own, pending until
    `available_at` (available at once if that has passed), then expiring by the program's policy; no purchase.

    For bonuses that wait for someone else's return window (a referral's). Settles the member first if due; the
    lot's maturity is scheduled in the balances' own UPDATE. Emits nothing (the caller's feature does).
    """
    check_amount(amount, "amount", high=MAX_POINTS)
    await settle_if_due(conn, member)
    lot = await _create_lot(conn, member, program, amount, available_at)
    pending = lot.status == LotStatus.PENDING
    fields, settle_now = _scheduling(member, lot)
    entry = await _post(
        conn,
        member,
        kind,
        pending=amount if pending else 0,
        available=0 if pending else amount,
        lifetime=amount,
        lot_id=lot.id,
        description=description[:200],
        member_fields=fields,
    )
    if settle_now:
        await settle(conn, member)
    return entry


async def void_pending_credit(
    conn: BaseDBAsyncClient, member: Member, entry_id: int, *, description: str = ""
) -> LedgerEntry | None:
    """Take back what is still pending of a credit (`credit_pending`'s entry) from a member locked in the caller's
    transaction: an entry of the same kind with the negative deltas (`reverses_id` the credit), the lot taken to 0
    and VOID (an allocation records it). None if the lot is no longer pending (it matured: nothing is taken back).
    """
    original = await LedgerEntry.get_or_none(id=entry_id, member_id=member.id, using_db=conn)
    if original is None or original.lot_id is None:
        raise NotFound("no such credit", field="entry_id")
    lot = await PointsLot.get(id=original.lot_id, using_db=conn)
    if lot.status != LotStatus.PENDING:
        return None
    takes = _plan_takes([lot], lot.remaining)
    next_settle_at = await _next_settle_after_taking(conn, member, takes)
    entry = await _post(
        conn,
        member,
        original.kind,
        pending=-lot.remaining,
        lifetime=-lot.remaining,
        reverses_id=original.id,
        lot_id=lot.id,
        description=description[:200],
        member_fields={"next_settle_at": next_settle_at},
    )
    await _apply_takes(conn, entry, takes, void_emptied=True)
    if not takes:  # an empty pending lot: nothing to take, it is void all the same
        await PointsLot.filter(id=lot.id).using_db(conn).update(status=LotStatus.VOID)
    return entry
