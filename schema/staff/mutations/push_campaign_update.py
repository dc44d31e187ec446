"""pushCampaignUpdate: a manager replaces a draft's message, offer and audience; audited."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import campaigns
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.push_campaigns import PushCampaign, PushCampaignFields, campaign_id_of, input_field, spec_of


@strawberry.enum
class PushCampaignUpdateErrorCode(Enum):
    INVALID = "INVALID"
    CAMPAIGN_NOT_FOUND = "CAMPAIGN_NOT_FOUND"
    CAMPAIGN_NOT_EDITABLE = "CAMPAIGN_NOT_EDITABLE"
    OFFER_NOT_FOUND = "OFFER_NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"


@strawberry.type
class PushCampaignUpdateUserError(UserError):
    code: PushCampaignUpdateErrorCode


@strawberry.input
class PushCampaignUpdateInput:
    id: strawberry.ID = strawberry.field(description="The campaign's global id.")
    campaign: PushCampaignFields


@strawberry.type
class PushCampaignUpdatePayload:
    push_campaign: PushCampaign | None
    user_errors: list[PushCampaignUpdateUserError]


def _user_error(error: DomainError) -> PushCampaignUpdateUserError:
    mapped = to_user_error(PushCampaignUpdateUserError, PushCampaignUpdateErrorCode, error)
    mapped.field = input_field(error, nested=True)
    return mapped


async def push_campaign_update(info: StaffInfo, input: PushCampaignUpdateInput) -> PushCampaignUpdatePayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        campaign = await campaigns.update_campaign(actor, campaign_id_of(input.id), spec_of(input.campaign))
    except DomainError as error:
        return PushCampaignUpdatePayload(push_campaign=None, user_errors=[_user_error(error)])
    return PushCampaignUpdatePayload(push_campaign=PushCampaign.from_model(campaign), user_errors=[])


@strawberry.type
class PushCampaignUpdateMutation:
    push_campaign_update: PushCampaignUpdatePayload = strawberry.mutation(
        resolver=push_campaign_update,
        description="Replace a draft campaign's message, offer and audience (drafts only).",
    )
