"""bench/seed.py: template members made by the services, cloned in bulk, with every invariant intact."""

from __future__ import annotations

import tomllib
from typing import Any

from bench import seed
from loyalty import clock, donations
from loyalty.earning import LineInput
from loyalty.members import is_valid_member_number
from loyalty.models import (
    LedgerEntry,
    LotAllocation,
    Member,
    OfferActivation,
    OfferRedemption,
    PointsLot,
    Purchase,
    PurchaseLine,
    QualifyingCredit,
    Refund,
    RewardKind,
    StaffUser,
    StampProgress,
    Voucher,
    VoucherStatus,
)
from loyalty.purchases import PurchaseRequest, record_purchase
from loyalty.staff import staff_actor

TEMPLATES = 3
MEMBERS = 11  # three rounds of clones and a partial fourth
DAYS = 400  # long enough for points to expire (return window + a year): a shorter test than the bench's history


async def _rows_of(member_id: int) -> dict[str, int]:
    return {
        "points_lot": await PointsLot.filter(member_id=member_id).count(),
        "ledger_entry": await LedgerEntry.filter(member_id=member_id).count(),
        "lot_allocation": await LotAllocation.filter(entry__member_id=member_id).count(),
        "purchase": await Purchase.filter(member_id=member_id).count(),
        "purchase_line": await PurchaseLine.filter(purchase__member_id=member_id).count(),
        "refund": await Refund.filter(purchase__member_id=member_id).count(),
        "qualifying_credit": await QualifyingCredit.filter(member_id=member_id).count(),
        "voucher": await Voucher.filter(member_id=member_id).count(),
        "offer_activation": await OfferActivation.filter(member_id=member_id).count(),
        "offer_redemption": await OfferRedemption.filter(member_id=member_id).count(),
        "stamp_progress": await StampProgress.filter(member_id=member_id).count(),
    }


async def _history_of(member: Member) -> dict[str, Any]:
    """Everything that must be the same in a clone: balances, tier, due times, entries and lots."""
    return {
        "balances": (member.points_available, member.points_pending, member.lifetime_earned),
        "tier": (member.tier_id, member.tier_since, member.tier_held_until),
        "times": (member.created_at, member.next_settle_at, member.last_purchase_at, member.birthday),
        "entries": await LedgerEntry.filter(member_id=member.id)
        .order_by("id")
        .values_list("kind", "delta_available", "delta_pending", "delta_lifetime", "unrecovered", "created_at"),
        "lots": await PointsLot.filter(member_id=member.id)
        .order_by("id")
        .values_list("amount", "remaining", "status", "available_at", "expires_at"),
        "rows": await _rows_of(member.id),
    }


async def test_clones_equal_their_template_and_keep_the_invariants(db: str) -> None:
    # given the demo program and a seeding "now"
    config = tomllib.loads((seed.ROOT / seed.PROGRAM_FILE).read_text())
    now = clock.now()

    # when three templates live 400 days and are cloned up to 11 members
    totals = await seed.populate(MEMBERS, config, templates=TEMPLATES, days=DAYS)

    # then the seeder's own checks pass: invariants by SQL and through the ORM, nothing due within the margin
    await seed.verify(now, MEMBERS)
    members = {member.id: member for member in await Member.all()}
    assert sorted(members) == list(range(1, MEMBERS + 1))
    # every clone has its template's history, under its own identity
    for member_id, member in members.items():
        template = members[(member_id - 1) % TEMPLATES + 1]
        assert await _history_of(member) == await _history_of(template), f"member {member_id}"
    for column in ("member_number", "firebase_uid", "email", "card_secret"):
        assert len({getattr(m, column) for m in members.values()}) == MEMBERS, column
    assert all(is_valid_member_number(m.member_number) for m in members.values())
    codes = await Voucher.all().values_list("code", flat=True)
    receipts = await Purchase.all().values_list("store_code", "receipt_id")
    assert codes
    assert len(set(codes)) == len(codes)
    assert len(set(receipts)) == len(receipts)
    # the history went through the rules that matter to the ledger, and every tier is reached
    assert {"earn", "mature", "redeem", "expire"} <= set(totals.entry_kinds)
    assert set(totals.tiers) == {"Member", "Silver", "Gold"}
    assert totals.rows["member"] == MEMBERS
    assert totals.rows["ledger_entry"] == await LedgerEntry.all().count()
    assert totals.valid_until is not None
    assert totals.valid_until > now + seed.SAFE_MARGIN
    # the donation totals count the clones' donations too: recomputed after cloning, equal to the aggregate
    donated = await Voucher.filter(reward__kind=RewardKind.DONATION, status=VoucherStatus.REDEEMED).count()
    kept = await donations.donation_totals()
    assert donated > 0
    assert sum(t.donations for t in kept) == donated
    assert sum(t.amount for t in kept) == sum(
        await Voucher.filter(reward__kind=RewardKind.DONATION, status=VoucherStatus.REDEEMED).values_list(
            "reward__value", flat=True
        )
    )

    # and the services go on working on a clone: its new rows get ids after the cloned ones
    actor = staff_actor(await StaffUser.get(email=seed.STAFF_EMAIL))
    last = members[MEMBERS]
    line = LineInput("SKU-1", "groceries", 1, 4200)
    request = PurchaseRequest(last.id, "STO01", "after-seeding", now, "EUR", 4200, (line,))
    recorded = await record_purchase(actor, request)
    assert recorded.points > 0
    assert (await Member.get(id=last.id)).lifetime_earned == last.lifetime_earned + recorded.points
