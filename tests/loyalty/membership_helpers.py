"""Shared set-up of the paid membership tests: the plans, a payment in one call, what was written."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.memberships import PaymentRecorded, PaymentRequest, apply_membership_config, record_membership_payment
from loyalty.models import (
    AuditLog,
    IdempotencyRecord,
    Membership,
    MembershipPayment,
    OutboxEvent,
    PaymentOutcome,
    StaffRole,
)

MANAGER = Actor(kind="staff", id=21, role=StaffRole.MANAGER, name="Mia")
PAYMENTS = Actor(kind="api_key", id=5, role=StaffRole.MANAGER, name="payments")
CASHIER = Actor(kind="staff", id=22, role=StaffRole.CASHIER, store_codes=("S1",), name="Cass")

PLUS = {
    "code": "PLUS",
    "name": "Plus",
    "price": 4900,
    "currency": "EUR",
    "period": "monthly",
    "earn_multiplier": 2,
    "free_delivery": True,
    "early_access_rank": 1,
    "grace_days": 7,
}
YEARLY = {**PLUS, "code": "YEAR", "name": "Plus yearly", "price": 49000, "period": "yearly"}
PREMIUM = {**PLUS, "code": "PREMIUM", "name": "Premium", "price": 9900, "earn_multiplier": 3, "early_access_rank": 2}


async def plans(*specs: dict[str, Any]) -> None:
    await apply_membership_config(list(specs) or [PLUS, YEARLY, PREMIUM])


async def pay(
    clock: FrozenClock,
    member_id: int,
    payment_id: str,
    *,
    at: datetime | None = None,
    outcome: PaymentOutcome = PaymentOutcome.SUCCEEDED,
    plan: str = "PLUS",
    amount: int = 4900,
    currency: str = "EUR",
    refund_of: str | None = None,
    actor: Actor = PAYMENTS,
) -> PaymentRecorded:
    """Report a payment that happened `at` (default now), with the business clock moved there first."""
    if at is not None:
        clock.set(at)
    request = PaymentRequest(
        member_id=member_id,
        plan_code=plan,
        payment_id=payment_id,
        outcome=outcome,
        amount=amount,
        currency=currency,
        occurred_at=clock.now(),
        refund_of=refund_of,
    )
    return await record_membership_payment(actor, request)


async def written() -> dict[str, int]:
    """How many rows of what a payment writes exist."""
    return {
        "membership": await Membership.all().count(),
        "payment": await MembershipPayment.all().count(),
        "outbox": await OutboxEvent.filter(type__startswith="membership.").count(),
        "audit": await AuditLog.filter(action__startswith="membership.").count(),
        "idempotency": await IdempotencyRecord.filter(scope="membership_payment").count(),
    }


async def membership_events(member_id: int) -> list[str]:
    return [
        e.type for e in await OutboxEvent.filter(member_id=member_id, type__startswith="membership.").order_by("id")
    ]


NOTHING_WRITTEN = {"membership": 0, "payment": 0, "outbox": 0, "audit": 0, "idempotency": 0}
