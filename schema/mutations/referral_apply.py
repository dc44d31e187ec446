"""referralApply: the member attaches a friend's referral code, within the program's days after enrolment, once."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import referrals
from loyalty.errors import DomainError
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.types.referral import MemberReferral


@strawberry.enum
class ReferralApplyErrorCode(Enum):
    INVALID = "INVALID"
    CODE_UNKNOWN = "CODE_UNKNOWN"
    OWN_CODE = "OWN_CODE"
    ALREADY_REFERRED = "ALREADY_REFERRED"
    WINDOW_CLOSED = "WINDOW_CLOSED"
    REFERRALS_OFF = "REFERRALS_OFF"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class ReferralApplyUserError(UserError):
    code: ReferralApplyErrorCode


@strawberry.input
class ReferralApplyInput:
    code: str = strawberry.field(description="The friend's code (case, spaces and dashes do not matter).")
    device_id: str | None = strawberry.field(
        default=None, description="The app installation's id (stored only as a keyed hash): the abuse checks."
    )


@strawberry.type
class ReferralApplyPayload:
    applied: bool = strawberry.field(
        description="True when the code was attached: the bonuses come with your first qualifying purchase."
    )
    referral: MemberReferral | None = strawberry.field(description="Your own referral code and link.")
    user_errors: list[ReferralApplyUserError]


async def referral_apply(info: Info, input: ReferralApplyInput) -> ReferralApplyPayload:
    member_id = info.context.require_member()
    try:
        device = referrals.device_hash(input.device_id, info.context.device_hash_key)
        await referrals.apply_referral(member_id, input.code, device=device)
    except DomainError as error:
        return ReferralApplyPayload(
            applied=False,
            referral=None,
            user_errors=[to_user_error(ReferralApplyUserError, ReferralApplyErrorCode, error)],
        )
    summary = await referrals.referral_summary(member_id)
    return ReferralApplyPayload(
        applied=True, referral=MemberReferral.from_domain(summary, info.context.public_url), user_errors=[]
    )
