"""staffMembershipCancel: cancel a member's paid membership at the end of its period (any staff role: a member
asking at the till), audited. The member app has its own `membershipCancel` (schema/mutations/membership_cancel.py)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.memberships import cancel_membership
from loyalty.models import StaffRole
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.membership import MEMBERSHIP_STATUSES, MembershipStatus


@strawberry.enum
class StaffMembershipCancelErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    MEMBERSHIP_NOT_ACTIVE = "MEMBERSHIP_NOT_ACTIVE"


@strawberry.type
class StaffMembershipCancelUserError(UserError):
    code: StaffMembershipCancelErrorCode


@strawberry.input
class StaffMembershipCancelInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")


@strawberry.type
class StaffMembershipCancelPayload:
    status: MembershipStatus | None = strawberry.field(description="CANCELLED, or LAPSED for one that was in grace.")
    ends_at: datetime | None = strawberry.field(description="When the benefits end.")
    member: MemberSummary | None
    user_errors: list[StaffMembershipCancelUserError]


async def staff_membership_cancel(info: StaffInfo, input: StaffMembershipCancelInput) -> StaffMembershipCancelPayload:
    actor = info.context.require(StaffRole.CASHIER)
    try:
        result = await cancel_membership(actor, member_id_of(input.member))
    except DomainError as error:
        return StaffMembershipCancelPayload(
            status=None,
            ends_at=None,
            member=None,
            user_errors=[to_user_error(StaffMembershipCancelUserError, StaffMembershipCancelErrorCode, error)],
        )
    member = await info.context.loaders.member.load(result.member_id)
    return StaffMembershipCancelPayload(
        status=MEMBERSHIP_STATUSES.to_api(result.status),
        ends_at=result.ends_at,
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class StaffMembershipCancelMutation:
    staff_membership_cancel: StaffMembershipCancelPayload = strawberry.mutation(
        resolver=staff_membership_cancel,
        description="Cancel the member's paid membership at the end of its period (benefits until then).",
    )
