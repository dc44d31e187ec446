"""profileUpdate: the member changes their name, birthday, interests, timezone or marketing consent."""

from __future__ import annotations

from datetime import date
from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.members import ProfileChanges, update_profile
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.types.member import Member


@strawberry.enum
class ProfileUpdateErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class ProfileUpdateUserError(UserError):
    code: ProfileUpdateErrorCode


@strawberry.input
class ProfileUpdateInput:
    display_name: str | None = None
    birthday: date | None = None
    interests: list[str] | None = None
    marketing_consent: bool | None = strawberry.field(
        default=None, description="Changing it records the time of consent or withdrawal."
    )
    timezone: str | None = strawberry.field(default=None, description="IANA name, e.g. Europe/Stockholm.")


@strawberry.type
class ProfileUpdatePayload:
    member: Member | None
    user_errors: list[ProfileUpdateUserError]


async def profile_update(info: Info, input: ProfileUpdateInput) -> ProfileUpdatePayload:
    member_id = info.context.require_member()
    changes = ProfileChanges(
        display_name=input.display_name,
        birthday=input.birthday,
        interests=input.interests,
        marketing_consent=input.marketing_consent,
        timezone=input.timezone,
    )
    try:
        member = await update_profile(member_id, changes)
    except DomainError as error:
        return ProfileUpdatePayload(
            member=None, user_errors=[to_user_error(ProfileUpdateUserError, ProfileUpdateErrorCode, error)]
        )
    return ProfileUpdatePayload(member=Member.from_model(member), user_errors=[])
