"""The ledger invariants (points and cashback) and the consent cache, checked after every database test."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from loyalty.models import (
    CashbackEntry,
    CashbackKind,
    Consent,
    ConsentChannel,
    ConsentPurpose,
    LedgerEntry,
    LotAllocation,
    LotStatus,
    Member,
    PointsLot,
    Program,
)


async def assert_ledger_invariants() -> None:
    """Cached balances equal ledger sums; lots agree with balances; allocations point at lots that had the points."""
    program = await Program.first()
    allow_negative = bool(program and program.allow_negative_balance)
    sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for member_id, da, dp, dl in await LedgerEntry.all().values_list(
        "member_id", "delta_available", "delta_pending", "delta_lifetime"
    ):
        sums[member_id][0] += da
        sums[member_id][1] += dp
        sums[member_id][2] += dl
    lots: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    lot_by_id = {lot.id: lot for lot in await PointsLot.all()}
    for lot in lot_by_id.values():
        assert 0 <= lot.remaining <= lot.amount, f"lot {lot.id} remaining {lot.remaining} of {lot.amount}"
        if lot.status == LotStatus.AVAILABLE:
            lots[lot.member_id][0] += lot.remaining
        elif lot.status == LotStatus.PENDING:
            lots[lot.member_id][1] += lot.remaining
    for member in await Member.all():
        available, pending, lifetime = sums[member.id]
        assert (member.points_available, member.points_pending, member.lifetime_earned) == (
            available,
            pending,
            lifetime,
        ), f"member {member.id}: cached balances differ from the ledger sum"
        assert member.points_pending >= 0, f"member {member.id}: negative pending"
        held_available, held_pending = lots[member.id]
        assert held_pending == pending, f"member {member.id}: pending lots {held_pending} != {pending}"
        if allow_negative:
            # A negative balance is a debt repaid by later points: lots may hold more than the balance, never less.
            assert held_available >= available, f"member {member.id}: lots {held_available} < balance {available}"
        else:
            assert member.points_available >= 0, f"member {member.id}: negative balance"
            assert held_available == available, f"member {member.id}: lots {held_available} != balance {available}"
    taken: dict[int, int] = defaultdict(int)
    for lot_id, amount in await LotAllocation.all().values_list("lot_id", "amount"):
        assert lot_id in lot_by_id, f"allocation to missing lot {lot_id}"
        taken[lot_id] += amount
    for lot_id, amount in taken.items():
        lot = lot_by_id[lot_id]
        assert amount <= lot.amount, f"lot {lot_id}: {amount} taken from a lot of {lot.amount}"
        assert lot.remaining == lot.amount - amount, f"lot {lot_id}: remaining disagrees with allocations"
    await assert_cashback_invariants(program)


async def assert_cashback_invariants(program: Program | None) -> None:
    """Each member's `cashback_balance` equals the sum of their cashback entries and is never negative; a return
    points at a spend of the same member and receipt, and the returns of a spend never exceed it; every entry is in
    the program's currency."""
    balances: dict[int, int] = defaultdict(int)
    spends: dict[int, tuple[int, int, str | None, str | None]] = {}
    returned: dict[int, int] = defaultdict(int)
    returns: list[tuple[int, int, int | None, str | None, str | None]] = []
    rows = await CashbackEntry.all().values_list(
        "id", "member_id", "kind", "amount", "currency", "spend_id", "store_code", "receipt_id"
    )
    for entry_id, member_id, kind, amount, currency, spend_id, store_code, receipt_id in rows:
        balances[member_id] += amount
        assert program is not None, f"cashback entry {entry_id} without a program"
        assert currency == program.currency, f"cashback entry {entry_id} in {currency}"
        if kind == CashbackKind.SPEND:
            assert amount < 0, f"cashback spend {entry_id} of {amount}"
            spends[entry_id] = (member_id, -amount, store_code, receipt_id)
        elif kind == CashbackKind.RETURN:
            assert amount > 0, f"cashback return {entry_id} of {amount}"
            returns.append((entry_id, member_id, spend_id, store_code, receipt_id))
            if spend_id is not None:
                returned[spend_id] += amount
    for entry_id, member_id, spend_id, store_code, receipt_id in returns:
        assert spend_id in spends, f"cashback return {entry_id} points at no spend"
        assert spends[spend_id][0] == member_id, f"cashback return {entry_id}: another member's spend"
        assert spends[spend_id][2:] == (store_code, receipt_id), f"cashback return {entry_id}: another receipt"
    for spend_id, amount in returned.items():
        assert amount <= spends[spend_id][1], f"cashback spend {spend_id}: {amount} returned of {spends[spend_id][1]}"
    for member_id, cached in await Member.all().values_list("id", "cashback_balance"):
        assert cached == balances[member_id], f"member {member_id}: cashback {cached} != entries {balances[member_id]}"
        assert cached >= 0, f"member {member_id}: negative cashback {cached}"


async def assert_next_settle_at_exact() -> None:
    """Each member's `next_settle_at` is exactly the earliest maturity of a pending lot or expiry of an available lot
    with points (None without either): the write path skips settling members who are not due on its word.

    Not part of `assert_ledger_invariants`: tests of the jobs and of the hot reads set lots and `next_settle_at` by
    hand. Called by the write path's tests (`tests/loyalty/test_purchase_statements.py`).
    """
    due: dict[int, list[datetime]] = defaultdict(list)
    for lot in await PointsLot.all():
        if lot.status == LotStatus.PENDING:
            due[lot.member_id].append(lot.available_at)
        elif lot.status == LotStatus.AVAILABLE and lot.remaining and lot.expires_at is not None:
            due[lot.member_id].append(lot.expires_at)
    for member in await Member.all():
        expected = min(due[member.id], default=None)
        assert member.next_settle_at == expected, (
            f"member {member.id}: next_settle_at {member.next_settle_at} != {expected}"
        )


async def assert_consent_cache() -> None:
    """Each member's cached `marketing_consent` equals their (push, marketing) consent (no row: not granted), and
    `marketing_consent_at` its time: the audience queries read the cache, the sender the record."""
    recorded = {
        member_id: (granted, changed_at)
        for member_id, granted, changed_at in await Consent.filter(
            channel=ConsentChannel.PUSH, purpose=ConsentPurpose.MARKETING
        ).values_list("member_id", "granted", "changed_at")
    }
    for member_id, cached, cached_at in await Member.all().values_list(
        "id", "marketing_consent", "marketing_consent_at"
    ):
        granted, changed_at = recorded.get(member_id, (False, None))
        assert cached == granted, f"member {member_id}: marketing_consent {cached} but its consent says {granted}"
        if member_id in recorded:
            assert cached_at == changed_at, f"member {member_id}: marketing_consent_at {cached_at} != {changed_at}"
