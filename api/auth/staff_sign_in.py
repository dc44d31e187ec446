"""Staff sign-in (email and password → a staff access token) and, per request, the staff member or integration
that the headers authenticate as (staff access token or API key)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from api.auth import InvalidToken
from api.auth.bearer import bearer_token
from api.auth.tokens import STAFF_AUDIENCE, TokenService
from loyalty.actors import Actor
from loyalty.errors import DomainError
from loyalty.staff import (
    InvalidCredentials,
    actor_for_subject,
    authenticate_api_key,
    authenticate_staff,
    token_subject,
)
from schema.staff.ports import IssuedStaffSession

log = logging.getLogger("klubb.auth")


@dataclass(frozen=True)
class StaffSignIn:
    """Signs staff in for `staffSessionCreate` (the schema's `StaffSessionIssuer`)."""

    tokens: TokenService

    async def create(self, email: str, password: str) -> IssuedStaffSession:
        try:
            actor = await authenticate_staff(email, password)
        except DomainError as error:  # wrong password, unknown or inactive account, throttled: one line, no traceback
            log.info("staff sign-in refused [%s]: %s", error.code, error.message)
            raise
        access = self.tokens.issue(token_subject(actor), STAFF_AUDIENCE, actor.session_id)
        return IssuedStaffSession(access.token, access.expires_at, actor)


async def actor_from_headers(headers: Mapping[str, str], tokens: TokenService, at: datetime) -> Actor | None:
    """The staff member or integration the request authenticates as at `at`; None without credentials.

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
    claims = tokens.verify(token, STAFF_AUDIENCE, at)
    actor = await actor_for_subject(claims.subject, claims.session_id)
    if actor is None:
        raise InvalidToken("this staff account is no longer active")
    return actor
