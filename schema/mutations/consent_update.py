"""consentUpdate: the member grants or withdraws a consent in the app (recorded with its time, source APP and the
member as actor); a withdrawal stops marketing pushes at once."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import models
from loyalty.consent import member_actor, set_consent
from loyalty.errors import DomainError
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.types.consent import CONSENT_CHANNELS, CONSENT_PURPOSES, Consent, ConsentChannel, ConsentPurpose
from schema.types.member import Member


@strawberry.enum
class ConsentUpdateErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class ConsentUpdateUserError(UserError):
    code: ConsentUpdateErrorCode


@strawberry.input
class ConsentUpdateInput:
    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: bool


@strawberry.type
class ConsentUpdatePayload:
    consent: Consent | None
    member: Member | None = strawberry.field(description="With `marketingConsent` as it now is.")
    user_errors: list[ConsentUpdateUserError]


async def consent_update(info: Info, input: ConsentUpdateInput) -> ConsentUpdatePayload:
    member_id = info.context.require_member()
    try:
        state = await set_consent(
            member_id,
            CONSENT_CHANNELS.to_domain(input.channel),
            CONSENT_PURPOSES.to_domain(input.purpose),
            input.granted,
            models.ConsentSource.APP,
            member_actor(member_id),
        )
    except DomainError as error:
        return ConsentUpdatePayload(
            consent=None,
            member=None,
            user_errors=[to_user_error(ConsentUpdateUserError, ConsentUpdateErrorCode, error)],
        )
    member = await models.Member.get(id=member_id)
    return ConsentUpdatePayload(consent=Consent.from_domain(state), member=Member.from_model(member), user_errors=[])
