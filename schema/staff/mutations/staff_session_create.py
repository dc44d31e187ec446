"""staffSessionCreate: a staff member signs in with email and password and gets a staff access token.

The only staff operation open without authentication. Passwords are checked in `loyalty.staff`; the token is
signed by the API layer, which the schema reaches through `StaffContext.staff_sessions` (a `StaffSessionIssuer`).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty.errors import DomainError
from schema.errors import UserError, to_user_error
from schema.staff.actor import StaffActor
from schema.staff.context import StaffInfo
from schema.staff.ports import StaffSessionIssuer


@strawberry.enum
class StaffSessionCreateErrorCode(Enum):
    INVALID = "INVALID"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"


@strawberry.type
class StaffSessionCreateUserError(UserError):
    code: StaffSessionCreateErrorCode


@strawberry.input
class StaffSessionCreateInput:
    email: str
    password: str


@strawberry.type(
    description="Send `accessToken` as `Authorization: Bearer …` to /staff/graphql; sign in again after expiry."
)
class StaffSessionCreatePayload:
    access_token: str | None
    access_token_expires_at: datetime | None
    staff: StaffActor | None
    user_errors: list[StaffSessionCreateUserError]


async def staff_session_create(info: StaffInfo, input: StaffSessionCreateInput) -> StaffSessionCreatePayload:
    issuer: StaffSessionIssuer | None = info.context.staff_sessions
    if issuer is None:
        raise RuntimeError("the staff endpoint was set up without a staff session issuer")
    try:
        session = await issuer.create(input.email, input.password)
    except DomainError as error:
        return StaffSessionCreatePayload(
            access_token=None,
            access_token_expires_at=None,
            staff=None,
            user_errors=[to_user_error(StaffSessionCreateUserError, StaffSessionCreateErrorCode, error)],
        )
    return StaffSessionCreatePayload(
        access_token=session.access_token,
        access_token_expires_at=session.access_token_expires_at,
        staff=StaffActor.from_actor(session.actor),
        user_errors=[],
    )


@strawberry.type
class StaffSessionCreateMutation:
    staff_session_create: StaffSessionCreatePayload = strawberry.mutation(
        resolver=staff_session_create,
        description="Sign in with email and password; after 5 failures in 15 minutes further attempts are refused.",
    )
