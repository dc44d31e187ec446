"""Helpers for the earning, purchase, refund and stamp-card tests (not a test module)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from loyalty import clock, purchases
from loyalty.actors import Actor
from loyalty.earning import LineInput
from loyalty.models import (
    AuditLog,
    EngagementEvent,
    Member,
    PurchaseLine,
    Reward,
    RewardKind,
    StaffRole,
    StampCard,
    StampProgress,
    Tier,
    Voucher,
)
from tests.loyalty.ledger_helpers import row_counts

CASHIER = Actor(kind="staff", id=1, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass Cashier")


def line(sku: str, amount: int, *, category: str = "", quantity: int = 1, voided: bool = False) -> LineInput:
    return LineInput(sku=sku, category=category, quantity=quantity, amount=amount, voided=voided)


def receipt(
    member_id: int,
    receipt_id: str,
    lines: list[LineInput],
    *,
    total: int | None = None,
    at: datetime | None = None,
    store_code: str = "S1",
    currency: str = "EUR",
    payment_fingerprint: str | None = None,
) -> purchases.PurchaseRequest:
    """A receipt whose total defaults to the sum of its non-voided lines, made now."""
    return purchases.PurchaseRequest(
        member_id=member_id,
        store_code=store_code,
        receipt_id=receipt_id,
        occurred_at=at or clock.now(),
        currency=currency,
        total=sum(x.amount for x in lines if not x.voided) if total is None else total,
        lines=tuple(lines),
        payment_fingerprint=payment_fingerprint,
    )


async def buy(
    member_id: int, receipt_id: str, lines: list[LineInput], *, actor: Actor = CASHIER, **kwargs: Any
) -> purchases.PurchaseRecorded:
    """`record_purchase` of a `receipt`, by the S1 cashier unless another `actor` is given."""
    return await purchases.record_purchase(actor, receipt(member_id, receipt_id, lines, **kwargs))


async def set_tier(member: Member, name: str) -> None:
    """Put the member in a tier (as if earned, held for a year)."""
    tier = await Tier.get(name=name)
    await Member.filter(id=member.id).update(
        tier_id=tier.id, tier_since=clock.now(), tier_held_until=clock.now() + timedelta(days=365)
    )


async def all_counts() -> dict[str, int]:
    """Row counts of every table an earning operation may write: proves a refusal wrote nothing."""
    extra: list[Any] = [PurchaseLine, StampProgress, Voucher, AuditLog, EngagementEvent]
    return {**await row_counts(), **{model.__name__: await model.all().count() for model in extra}}


async def stamp_card(name: str = "Coffee card", required: int = 5, *, counts: str = "items", **match: Any) -> StampCard:
    reward = await Reward.create(name=f"{name} reward", kind=RewardKind.FREE_PRODUCT, points_cost=0)
    return await StampCard.create(name=name, stamps_required=required, counts=counts, reward=reward, **match)
