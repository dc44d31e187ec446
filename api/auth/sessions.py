"""Member sign-in: a Firebase ID token becomes our access JWT plus a rotating refresh token.

Thin glue between `api.auth.firebase`, `api.auth.tokens` and the domain services in `loyalty`.
"""

from __future__ import annotations

from api.auth.errors import InvalidToken
from api.auth.firebase import IdTokenVerifier
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Settings
from loyalty.members import enroll_member, get_member
from loyalty.sessions import rotate_refresh_token, start_session
from schema.sessions import IssuedSession


async def create_session(
    firebase_id_token: str, *, verifier: IdTokenVerifier, tokens: TokenService, settings: Settings
) -> IssuedSession:
    """Sign a member in with a Firebase ID token, enrolling them on their first sign-in.

    Raises `InvalidFirebaseToken` (or `AuthUnavailable` when Google's keys cannot be fetched).
    """
    identity = await verifier.verify(firebase_id_token)
    member, _ = await enroll_member(identity.uid, email=identity.email, display_name=identity.name)
    refresh_token = await start_session(member.id, refresh_days=settings.refresh_token_days)
    access = tokens.issue(str(member.id), MEMBER_AUDIENCE)
    return IssuedSession(access.token, access.expires_at, refresh_token, member)


async def refresh_session(refresh_token: str, *, tokens: TokenService, settings: Settings) -> IssuedSession:
    """Exchange a refresh token for a new access token and a new refresh token (the old one is spent).

    Raises the domain's `RefreshTokenInvalid`, or `RefreshTokenReused` after ending the session of a replayed token.
    """
    member_id, new_refresh = await rotate_refresh_token(refresh_token, refresh_days=settings.refresh_token_days)
    member = await get_member(member_id)
    access = tokens.issue(str(member.id), MEMBER_AUDIENCE)
    return IssuedSession(access.token, access.expires_at, new_refresh, member)


def bearer_token(header_value: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header; None without a header, `InvalidToken` if malformed."""
    if header_value is None:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("expected 'Authorization: Bearer <token>'")
    return token


def member_id_from_authorization(header_value: str | None, tokens: TokenService) -> int | None:
    """The member id in an `Authorization: Bearer <access token>` header; None when there is no header.

    Raises `InvalidToken` (malformed header, bad token) or `TokenExpired`.
    """
    token = bearer_token(header_value)
    if token is None:
        return None
    subject = tokens.verify(token, MEMBER_AUDIENCE).subject
    if not subject.isascii() or not subject.isdigit():
        raise InvalidToken()
    return int(subject)
