"""pushCampaignCancel: a manager cancels a campaign not yet sent (no further batch is written); audited."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import campaigns
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.push_campaigns import PushCampaign, campaign_id_of, input_field


@strawberry.enum
class PushCampaignCancelErrorCode(Enum):
    CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"
    CAMPAIGN_NOT_CANCELLABLE = "CAMPAIGN_NOT_CANCELLABLE"
    INVALID = "INVALID"
    FORBIDDEN = "FORBIDDEN"


@strawberry.type
class PushCampaignCancelUserError(UserError):
    code: PushCampaignCancelErrorCode


@strawberry.input
class PushCampaignCancelInput:
    id: strawberry.ID = strawberry.field(description="The campaign's global id.")


@strawberry.type
class PushCampaignCancelPayload:
    push_campaign: PushCampaign | None
    user_errors: list[PushCampaignCancelUserError]


def _user_error(error: DomainError) -> PushCampaignCancelUserError:
    mapped = to_user_error(PushCampaignCancelUserError, PushCampaignCancelErrorCode, error)
    mapped.field = input_field(error, nested=False)
    return mapped


async def push_campaign_cancel(info: StaffInfo, input: PushCampaignCancelInput) -> PushCampaignCancelPayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        campaign = await campaigns.cancel_campaign(actor, campaign_id_of(input.id))
    except DomainError as error:
        return PushCampaignCancelPayload(push_campaign=None, user_errors=[_user_error(error)])
    return PushCampaignCancelPayload(push_campaign=PushCampaign.from_model(campaign), user_errors=[])


@strawberry.type
class PushCampaignCancelMutation:
    push_campaign_cancel: PushCampaignCancelPayload = strawberry.mutation(
        resolver=push_campaign_cancel,
        description="Cancel a draft, scheduled or sending campaign; what was already written stays owed.",
    )
