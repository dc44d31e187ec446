"""Domain events leave the domain through the outbox, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.models import OutboxEvent

MEMBER_ENROLLED = "member.enrolled"
MEMBER_UPDATED = "member.updated"
POINTS_EARNED = "points.earned"
POINTS_MATURED = "points.matured"
POINTS_REDEEMED = "points.redeemed"
POINTS_REDEMPTION_CANCELLED = "points.redemption_cancelled"
POINTS_EXPIRED = "points.expired"
POINTS_ADJUSTED = "points.adjusted"
POINTS_REFUNDED = "points.refunded"
TIER_CHANGED = "tier.changed"
OFFER_ACTIVATED = "offer.activated"
OFFER_REDEEMED = "offer.redeemed"
VOUCHER_ISSUED = "voucher.issued"
VOUCHER_REDEEMED = "voucher.redeemed"
VOUCHER_CANCELLED = "voucher.cancelled"
VOUCHER_EXPIRED = "voucher.expired"
WALLET_ADDED = "wallet.added"
WALLET_REMOVED = "wallet.removed"
REFERRAL_APPLIED = "referral.applied"
REFERRAL_FLAGGED = "referral.flagged"
REFERRAL_CONVERTED = "referral.converted"
REFERRAL_REWARDED = "referral.rewarded"
REFERRAL_CANCELLED = "referral.cancelled"
REFERRAL_REJECTED = "referral.rejected"
MEMBERSHIP_STARTED = "membership.started"
MEMBERSHIP_RENEWED = "membership.renewed"
MEMBERSHIP_GRACE = "membership.grace"
MEMBERSHIP_LAPSED = "membership.lapsed"
MEMBERSHIP_CANCELLED = "membership.cancelled"
MEMBERSHIP_PAYMENT_REFUNDED = "membership.payment_refunded"
CASHBACK_CREDITED = "cashback.credited"
CASHBACK_SPENT = "cashback.spent"
CASHBACK_PAID_OUT = "cashback.paid_out"
CASHBACK_RETURNED = "cashback.returned"

EVENT_TYPES = (
    MEMBER_ENROLLED,
    MEMBER_UPDATED,
    POINTS_EARNED,
    POINTS_MATURED,
    POINTS_REDEEMED,
    POINTS_REDEMPTION_CANCELLED,
    POINTS_EXPIRED,
    POINTS_ADJUSTED,
    POINTS_REFUNDED,
    TIER_CHANGED,
    OFFER_ACTIVATED,
    OFFER_REDEEMED,
    VOUCHER_ISSUED,
    VOUCHER_REDEEMED,
    VOUCHER_CANCELLED,
    VOUCHER_EXPIRED,
    WALLET_ADDED,
    WALLET_REMOVED,
    REFERRAL_APPLIED,
    REFERRAL_FLAGGED,
    REFERRAL_CONVERTED,
    REFERRAL_REWARDED,
    REFERRAL_CANCELLED,
    REFERRAL_REJECTED,
    MEMBERSHIP_STARTED,
    MEMBERSHIP_RENEWED,
    MEMBERSHIP_GRACE,
    MEMBERSHIP_LAPSED,
    MEMBERSHIP_CANCELLED,
    MEMBERSHIP_PAYMENT_REFUNDED,
    CASHBACK_CREDITED,
    CASHBACK_SPENT,
    CASHBACK_PAID_OUT,
    CASHBACK_RETURNED,
)


def _event(event_type: str, member_id: int | None, payload: dict[str, Any]) -> OutboxEvent:
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    return OutboxEvent(
        type=event_type,
        member_id=member_id,
        payload={"type": event_type, "member_id": member_id, **payload},
        created_at=clock.now(),
    )


class Outbox:
    """The events of one transaction, collected and written in one batched INSERT (`flush`) before it commits.

    For operations that emit several events (a purchase: `tier.changed`, `points.earned`, `voucher.issued`): the
    rows are the ones `emit` would write, in the order they were added, in the same transaction.
    """

    def __init__(self) -> None:
        self.pending: list[OutboxEvent] = []

    def add(self, event_type: str, *, member_id: int | None, payload: dict[str, Any]) -> None:
        self.pending.append(_event(event_type, member_id, payload))

    async def flush(self, conn: BaseDBAsyncClient) -> None:
        """Write the collected events inside the transaction `conn` (one statement; none without events)."""
        if self.pending:
            await OutboxEvent.bulk_create(self.pending, using_db=conn)
            self.pending = []


async def emit(
    conn: BaseDBAsyncClient, event_type: str, *, member_id: int | None, payload: dict[str, Any]
) -> OutboxEvent:
    """Record a domain event in the outbox inside the transaction `conn` (delivered at least once)."""
    event = _event(event_type, member_id, payload)
    await event.save(using_db=conn)
    return event
