"""pushCampaignCreate: a manager drafts a push campaign (message per locale, optional offer, audience); audited."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import campaigns
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.push_campaigns import PushCampaign, PushCampaignFields, input_field, spec_of


@strawberry.enum
class PushCampaignCreateErrorCode(Enum):
    INVALID = "INVALID"
    OFFER_NOT_FOUND = "OFFER_NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"


@strawberry.type
class PushCampaignCreateUserError(UserError):
    code: PushCampaignCreateErrorCode


@strawberry.input
class PushCampaignCreateInput:
    campaign: PushCampaignFields


@strawberry.type
class PushCampaignCreatePayload:
    push_campaign: PushCampaign | None
    user_errors: list[PushCampaignCreateUserError]


def _user_error(error: DomainError) -> PushCampaignCreateUserError:
    mapped = to_user_error(PushCampaignCreateUserError, PushCampaignCreateErrorCode, error)
    mapped.field = input_field(error, nested=True)
    return mapped


async def push_campaign_create(info: StaffInfo, input: PushCampaignCreateInput) -> PushCampaignCreatePayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        campaign = await campaigns.create_campaign(actor, spec_of(input.campaign))
    except DomainError as error:
        return PushCampaignCreatePayload(push_campaign=None, user_errors=[_user_error(error)])
    return PushCampaignCreatePayload(push_campaign=PushCampaign.from_model(campaign), user_errors=[])


@strawberry.type
class PushCampaignCreateMutation:
    push_campaign_create: PushCampaignCreatePayload = strawberry.mutation(
        resolver=push_campaign_create,
        description="Draft a push campaign: its texts per locale (the default locale required), an optional offer "
        "and an audience.",
    )
