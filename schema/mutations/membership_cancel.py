"""membershipCancel (member app): the member cancels their own paid membership at the end of its period.

The member may: cancelling stops renewals only (the shop's payment system still has to stop charging; klubb records
what it reports), and the benefits stay until the period ends. Staff have `membershipCancel` on their endpoint.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.memberships import cancel_membership
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.types.membership import Membership


@strawberry.enum
class MembershipCancelErrorCode(Enum):
    INVALID = "INVALID"
    MEMBERSHIP_NOT_ACTIVE = "MEMBERSHIP_NOT_ACTIVE"


@strawberry.type
class MembershipCancelUserError(UserError):
    code: MembershipCancelErrorCode


@strawberry.type
class MembershipCancelPayload:
    membership: Membership | None
    user_errors: list[MembershipCancelUserError]


async def membership_cancel(info: Info) -> MembershipCancelPayload:
    member_id = info.context.require_member()
    try:
        await cancel_membership(None, member_id)
    except DomainError as error:
        shown = to_user_error(MembershipCancelUserError, MembershipCancelErrorCode, error)
        shown.field = None  # the mutation has no input: nothing for the app to correct
        return MembershipCancelPayload(membership=None, user_errors=[shown])
    view = await info.context.loaders.membership.load(member_id)
    return MembershipCancelPayload(membership=Membership.from_view(view) if view else None, user_errors=[])
