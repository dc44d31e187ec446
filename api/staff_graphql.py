"""/staff/graphql: the staff schema, for a staff access token (`Authorization: Bearer`) or an API key (`X-Api-Key`).

Bad credentials are an HTTP 401, as on the member endpoint; no credentials leave only `staffSessionCreate` open.
The actor is rebuilt from the database on every request, so a deactivated account or revoked key stops at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from api.auth import AuthError, InvalidToken
from api.auth.sessions import bearer_token
from api.auth.tokens import STAFF_AUDIENCE, TokenService
from api.graphql import OrjsonGraphQL
from loyalty.actors import Actor
from loyalty.staff import InvalidCredentials, actor_for_staff, authenticate_api_key, authenticate_staff
from schema.staff.context import StaffContext
from schema.staff.mutations.staff_session_create import IssuedStaffSession

STAFF_SUBJECT_PREFIX = "staff:"  # keeps staff ids apart from member ids in token subjects


@dataclass(frozen=True)
class ApiStaffSessions:
    """Signs staff in for `staffSessionCreate` (the schema's `StaffSessionIssuer`)."""

    tokens: TokenService

    async def create(self, email: str, password: str) -> IssuedStaffSession:
        actor = await authenticate_staff(email, password)
        access = self.tokens.issue(f"{STAFF_SUBJECT_PREFIX}{actor.id}", STAFF_AUDIENCE)
        return IssuedStaffSession(access.token, access.expires_at, actor)


async def actor_from_headers(headers: Mapping[str, str], tokens: TokenService) -> Actor | None:
    """The staff member or integration the request authenticates as; None without credentials.

    Raises `InvalidToken` / `TokenExpired` for a bad, expired or member token, an unknown, revoked or malformed API
    key, a deactivated account, or both kinds of credentials at once.
    """
    authorization, api_key = headers.get("authorization"), headers.get("x-api-key")
    if authorization is not None and api_key is not None:
        raise InvalidToken("send a staff access token or an API key, not both")
    if api_key is not None:
        try:
            return await authenticate_api_key(api_key)
        except InvalidCredentials:
            raise InvalidToken("invalid API key") from None
    token = bearer_token(authorization)
    if token is None:
        return None
    subject = tokens.verify(token, STAFF_AUDIENCE).subject
    staff_id = subject.removeprefix(STAFF_SUBJECT_PREFIX)
    if not subject.startswith(STAFF_SUBJECT_PREFIX) or not staff_id.isascii() or not staff_id.isdigit():
        raise InvalidToken()
    actor = await actor_for_staff(int(staff_id))
    if actor is None:
        raise InvalidToken("this staff account is no longer active")
    return actor


class StaffGraphQL(OrjsonGraphQL[StaffContext]):
    """/staff/graphql: checkout and back-office operations for staff and integrations."""

    def __init__(self, schema: Any, *, tokens: TokenService, graphiql: bool) -> None:
        super().__init__(schema, graphiql=graphiql)
        self.tokens = tokens
        self.staff_sessions = ApiStaffSessions(tokens)

    async def get_context(self, request: Request, response: Response) -> StaffContext:  # type: ignore[override]
        try:
            actor = await actor_from_headers(request.headers, self.tokens)
        except AuthError as error:
            raise HTTPException(401, error.message) from error
        return StaffContext(request=request, response=response, actor=actor, staff_sessions=self.staff_sessions)
