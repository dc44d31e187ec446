"""pushCampaignSchedule: a manager schedules a draft (or moves a scheduled campaign); the attached offer must run
then; audited."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import campaigns
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.push_campaigns import PushCampaign, campaign_id_of, input_field


@strawberry.enum
class PushCampaignScheduleErrorCode(Enum):
    INVALID = "INVALID"
    CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"
    CAMPAIGN_NOT_EDITABLE = "CAMPAIGN_NOT_EDITABLE"
    OFFER_NOT_RUNNING = "OFFER_NOT_RUNNING"
    INVALID_SCHEDULE = "INVALID_SCHEDULE"
    FORBIDDEN = "FORBIDDEN"


@strawberry.type
class PushCampaignScheduleUserError(UserError):
    code: PushCampaignScheduleErrorCode


@strawberry.input
class PushCampaignScheduleInput:
    id: strawberry.ID = strawberry.field(description="The campaign's global id.")
    scheduled_at: datetime | None = strawberry.field(default=None, description="When to send; now if null.")


@strawberry.type
class PushCampaignSchedulePayload:
    push_campaign: PushCampaign | None
    user_errors: list[PushCampaignScheduleUserError]


def _user_error(error: DomainError) -> PushCampaignScheduleUserError:
    mapped = to_user_error(PushCampaignScheduleUserError, PushCampaignScheduleErrorCode, error)
    mapped.field = input_field(error, nested=False)
    return mapped


async def push_campaign_schedule(info: StaffInfo, input: PushCampaignScheduleInput) -> PushCampaignSchedulePayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        campaign = await campaigns.schedule_campaign(actor, campaign_id_of(input.id), input.scheduled_at)
    except DomainError as error:
        return PushCampaignSchedulePayload(push_campaign=None, user_errors=[_user_error(error)])
    return PushCampaignSchedulePayload(push_campaign=PushCampaign.from_model(campaign), user_errors=[])


@strawberry.type
class PushCampaignScheduleMutation:
    push_campaign_schedule: PushCampaignSchedulePayload = strawberry.mutation(
        resolver=push_campaign_schedule,
        description="Schedule a draft campaign (or move a scheduled one); the attached offer must be running at "
        "that time.",
    )
