"""engagementRecord: an integration reports an engagement event (review, share, install, survey) that earns points."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty.engagement import record_engagement
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of


@strawberry.enum
class EngagementRecordErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    LIMIT_REACHED = "LIMIT_REACHED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class EngagementRecordUserError(UserError):
    code: EngagementRecordErrorCode


@strawberry.input
class EngagementRecordInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    event_type: str = strawberry.field(description="review_written, social_share, app_installed, survey_answered, …")
    external_id: str = strawberry.field(description="Your id of the event: (eventType, externalId) earns once.")
    occurred_at: datetime


@strawberry.type
class EngagementRecorded:
    event_type: str
    points: int


@strawberry.type
class EngagementRecordPayload:
    engagement: EngagementRecorded | None
    member: MemberSummary | None
    user_errors: list[EngagementRecordUserError]


async def engagement_record(info: StaffInfo, input: EngagementRecordInput) -> EngagementRecordPayload:
    actor = info.context.require(StaffRole.CASHIER)
    try:
        result = await record_engagement(
            actor,
            member_id_of(input.member),
            event_type=input.event_type,
            external_id=input.external_id,
            occurred_at=input.occurred_at,
        )
    except DomainError as error:
        return EngagementRecordPayload(
            engagement=None,
            member=None,
            user_errors=[to_user_error(EngagementRecordUserError, EngagementRecordErrorCode, error)],
        )
    member = await info.context.loaders.member.load(result.member_id)
    return EngagementRecordPayload(
        engagement=EngagementRecorded(event_type=result.event_type, points=result.points),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class EngagementRecordMutation:
    engagement_record: EngagementRecordPayload = strawberry.mutation(
        resolver=engagement_record,
        description=(
            "Credit an engagement event's points by its rule, within the member's daily/monthly limits; "
            "idempotent on (eventType, externalId)."
        ),
    )
