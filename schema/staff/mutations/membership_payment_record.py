"""membershipPaymentRecord: the shop's payment system reports a membership payment (succeeded, failed, refunded).

klubb takes no payments: it keeps the membership's state from these reports (`loyalty.memberships`). Idempotent on
(paymentId, outcome). Needs the manager role: a manager, or an integration's API key with that role (the payment
system's key); a cashier is refused (top-level NOT_ALLOWED).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import models
from loyalty.errors import DomainError
from loyalty.memberships import PaymentRecorded, PaymentRequest, record_membership_payment
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.enum_map import EnumMap
from schema.types.membership import MEMBERSHIP_STATUSES, MembershipStatus


@strawberry.enum(name="MembershipPaymentOutcome", description="What happened to a membership payment.")
class MembershipPaymentOutcome(Enum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


PAYMENT_OUTCOMES = EnumMap(
    models.PaymentOutcome,
    MembershipPaymentOutcome,
    {
        models.PaymentOutcome.SUCCEEDED: MembershipPaymentOutcome.SUCCEEDED,
        models.PaymentOutcome.FAILED: MembershipPaymentOutcome.FAILED,
        models.PaymentOutcome.REFUNDED: MembershipPaymentOutcome.REFUNDED,
    },
)


@strawberry.enum
class MembershipPaymentRecordErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    PLAN_UNKNOWN = "PLAN_UNKNOWN"
    PLAN_RETIRED = "PLAN_RETIRED"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    PAYMENT_NOT_FOUND = "PAYMENT_NOT_FOUND"
    REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class MembershipPaymentRecordUserError(UserError):
    code: MembershipPaymentRecordErrorCode


@strawberry.input
class MembershipPaymentRecordInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    plan_code: str = strawberry.field(description="The plan's code in the program file.")
    payment_id: str = strawberry.field(description="The payment system's id; with the outcome, the idempotency key.")
    outcome: MembershipPaymentOutcome
    amount: int = strawberry.field(description="Minor units (for a refund: the amount refunded; 0 allowed if FAILED).")
    currency: str
    occurred_at: datetime
    refund_of: str | None = strawberry.field(default=None, description="REFUNDED: the succeeded payment's id.")


@strawberry.type
class MembershipPaymentRecorded:
    outcome: MembershipPaymentOutcome
    status: MembershipStatus | None = strawberry.field(description="The membership after it; null if none.")
    plan_code: str | None
    period_end: datetime | None
    grace_until: datetime | None
    events: list[str] = strawberry.field(description="The membership events it caused (`membership.renewed`, …).")

    @classmethod
    def from_result(cls, result: PaymentRecorded) -> MembershipPaymentRecorded:
        return cls(
            outcome=PAYMENT_OUTCOMES.to_api(result.outcome),
            status=MEMBERSHIP_STATUSES.to_api(result.status) if result.status is not None else None,
            plan_code=result.plan_code,
            period_end=result.period_end,
            grace_until=result.grace_until,
            events=list(result.events),
        )


@strawberry.type
class MembershipPaymentRecordPayload:
    payment: MembershipPaymentRecorded | None
    member: MemberSummary | None
    user_errors: list[MembershipPaymentRecordUserError]


async def membership_payment_record(
    info: StaffInfo, input: MembershipPaymentRecordInput
) -> MembershipPaymentRecordPayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        request = PaymentRequest(
            member_id=member_id_of(input.member),
            plan_code=input.plan_code,
            payment_id=input.payment_id,
            outcome=PAYMENT_OUTCOMES.to_domain(input.outcome),
            amount=input.amount,
            currency=input.currency,
            occurred_at=input.occurred_at,
            refund_of=input.refund_of,
        )
        result = await record_membership_payment(actor, request)
    except DomainError as error:
        return MembershipPaymentRecordPayload(
            payment=None,
            member=None,
            user_errors=[to_user_error(MembershipPaymentRecordUserError, MembershipPaymentRecordErrorCode, error)],
        )
    member = await info.context.loaders.member.load(result.member_id)
    return MembershipPaymentRecordPayload(
        payment=MembershipPaymentRecorded.from_result(result),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class MembershipPaymentRecordMutation:
    membership_payment_record: MembershipPaymentRecordPayload = strawberry.mutation(
        resolver=membership_payment_record,
        description="Record a membership payment the shop's payment system took, failed or refunded (manager role).",
    )
