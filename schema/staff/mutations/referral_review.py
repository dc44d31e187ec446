"""referralReview: a manager approves or rejects a flagged referral (audited)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import referrals
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.referrals import REFERRAL, Referral
from schema.types.enum_map import EnumMap


@strawberry.enum
class ReferralReviewDecision(Enum):
    APPROVE = "approve"
    REJECT = "reject"


REVIEW_DECISIONS = EnumMap(
    referrals.ReviewDecision,
    ReferralReviewDecision,
    {
        referrals.ReviewDecision.APPROVE: ReferralReviewDecision.APPROVE,
        referrals.ReviewDecision.REJECT: ReferralReviewDecision.REJECT,
    },
)


@strawberry.enum
class ReferralReviewErrorCode(Enum):
    INVALID = "INVALID"
    REFERRAL_NOT_FOUND = "REFERRAL_NOT_FOUND"
    NOT_FLAGGED = "NOT_FLAGGED"
    FORBIDDEN = "FORBIDDEN"


@strawberry.type
class ReferralReviewUserError(UserError):
    code: ReferralReviewErrorCode


@strawberry.input
class ReferralReviewInput:
    referral: strawberry.ID = strawberry.field(description="The referral's global id (`Referral.id`).")
    decision: ReferralReviewDecision
    note: str | None = strawberry.field(default=None, description="Why (kept with the referral and the audit).")


@strawberry.type
class ReferralReviewPayload:
    referral: Referral | None
    user_errors: list[ReferralReviewUserError]


async def referral_review(info: StaffInfo, input: ReferralReviewInput) -> ReferralReviewPayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        key = REFERRAL.decode(input.referral)
        if key is None:
            raise referrals.ReferralNotFound("no such referral", field="referral")
        reviewed = await referrals.review_referral(
            actor, key, REVIEW_DECISIONS.to_domain(input.decision), input.note or ""
        )
    except DomainError as error:
        return ReferralReviewPayload(
            referral=None, user_errors=[to_user_error(ReferralReviewUserError, ReferralReviewErrorCode, error)]
        )
    return ReferralReviewPayload(referral=Referral.from_model(reviewed), user_errors=[])


@strawberry.type
class ReferralReviewMutation:
    referral_review: ReferralReviewPayload = strawberry.mutation(
        resolver=referral_review,
        description="Approve (the referral earns as usual; at once if its qualifying purchase was made) or reject a "
        "flagged referral (manager and above).",
    )
