"""pointsAdjust: staff credit or debit points by hand, with a reason code, audited; managers above the cap."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import adjustments
from loyalty.adjustments import Adjustment, adjust_member_points
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.enum_map import EnumMap


@strawberry.enum(name="AdjustmentReason", description="Why points were adjusted; OTHER needs a note.")
class AdjustmentReason(Enum):
    GOODWILL = "goodwill"
    CORRECTION = "correction"
    MISSED_PURCHASE = "missed_purchase"
    FRAUD = "fraud"
    OTHER = "other"


# Both ways: taken as the input's reason code, shown on the adjustment.
ADJUSTMENT_REASONS = EnumMap(
    adjustments.AdjustmentReason,
    AdjustmentReason,
    {
        adjustments.AdjustmentReason.GOODWILL: AdjustmentReason.GOODWILL,
        adjustments.AdjustmentReason.CORRECTION: AdjustmentReason.CORRECTION,
        adjustments.AdjustmentReason.MISSED_PURCHASE: AdjustmentReason.MISSED_PURCHASE,
        adjustments.AdjustmentReason.FRAUD: AdjustmentReason.FRAUD,
        adjustments.AdjustmentReason.OTHER: AdjustmentReason.OTHER,
    },
)


@strawberry.enum
class PointsAdjustErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"
    FORBIDDEN = "FORBIDDEN"
    NOTE_REQUIRED = "NOTE_REQUIRED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class PointsAdjustUserError(UserError):
    code: PointsAdjustErrorCode


@strawberry.input
class PointsAdjustInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    amount: int = strawberry.field(description="Points to credit (positive) or debit (negative); never 0.")
    reason_code: AdjustmentReason
    idempotency_key: str = strawberry.field(description="A retry with the same key returns the first result.")
    note: str | None = None
    store_code: str | None = strawberry.field(
        default=None, description="Where the adjustment is made; defaults to the actor's store if it has one."
    )


@strawberry.type
class PointsAdjustment:
    amount: int
    reason_code: AdjustmentReason
    note: str
    available_before: int
    available_after: int
    created_at: datetime

    @classmethod
    def from_result(cls, result: Adjustment) -> PointsAdjustment:
        return cls(
            amount=result.amount,
            reason_code=ADJUSTMENT_REASONS.to_api(result.reason),
            note=result.note,
            available_before=result.available_before,
            available_after=result.available_after,
            created_at=result.created_at,
        )


@strawberry.type
class PointsAdjustPayload:
    adjustment: PointsAdjustment | None
    member: MemberSummary | None
    user_errors: list[PointsAdjustUserError]


async def points_adjust(info: StaffInfo, input: PointsAdjustInput) -> PointsAdjustPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        result = await adjust_member_points(
            actor,
            member_id_of(input.member),
            input.amount,
            reason=ADJUSTMENT_REASONS.to_domain(input.reason_code),
            note=input.note or "",
            idempotency_key=input.idempotency_key,
            store_code=input.store_code,
        )
    except DomainError as error:
        return PointsAdjustPayload(
            adjustment=None,
            member=None,
            user_errors=[to_user_error(PointsAdjustUserError, PointsAdjustErrorCode, error)],
        )
    member = await info.context.loaders.member.load(result.member_id)
    return PointsAdjustPayload(
        adjustment=PointsAdjustment.from_result(result),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class PointsAdjustMutation:
    points_adjust: PointsAdjustPayload = strawberry.mutation(
        resolver=points_adjust,
        description="Credit or debit points by hand with a reason; above the program's cap a manager is needed.",
    )
