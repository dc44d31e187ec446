"""Member sign-in: a Firebase ID token becomes our access JWT plus a rotating refresh token; per request, the
access token in the `Authorization` header becomes the member id.

Thin glue between `api.auth.firebase`, `api.auth.tokens` and the domain services in `loyalty`; `MemberSignIn`
serves the schema's session mutations (`schema.ports.SessionIssuer`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime

from api.auth import AuthError, AuthUnavailable
from api.auth.bearer import bearer_token
from api.auth.errors import InvalidToken
from api.auth.firebase import FirebaseVerifier, IdTokenVerifier
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Settings
from loyalty import referrals
from loyalty.errors import DomainError
from loyalty.members import enroll_member, get_member
from loyalty.refresh_tokens import rotate_refresh_token, start_session
from schema.ports import IssuedSession, SessionRefused


async def create_session(
    firebase_id_token: str,
    *,
    verifier: IdTokenVerifier,
    tokens: TokenService,
    settings: Settings,
    referral_code: str | None = None,
    device_id: str | None = None,
) -> IssuedSession:
    """Sign a member in with a Firebase ID token, enrolling them on their first sign-in.

    With `referral_code`: the code is checked before anything is written (`InvalidInput`, `ReferralsOff`,
    `ReferralCodeUnknown` refuse the sign-in: no member, no session); then applied (`referrals.apply_referral`).
    A member who already exists and cannot use it any more (`AlreadyReferred`, `OwnReferralCode`,
    `ReferralWindowClosed`) is signed in all the same. `device_id` is stored only as its keyed hash, on the session
    and the referral (`InvalidInput` for a malformed one, before anything is written).

    Raises `InvalidFirebaseToken` (or `AuthUnavailable` when Google's keys cannot be fetched).
    """
    device = referrals.device_hash(device_id, settings.device_hash_key()) if device_id is not None else None
    identity = await verifier.verify(firebase_id_token)
    if referral_code is not None:
        await referrals.check_code(referral_code, field="referral_code")
    member, _ = await enroll_member(identity.uid, email=identity.email, display_name=identity.name)
    refresh_token = await start_session(member.id, refresh_days=settings.refresh_token_days, device_hash=device)
    if referral_code is not None:
        # The member's history, not the sign-in, is at fault for these: `referralApply` says why.
        with contextlib.suppress(referrals.AlreadyReferred, referrals.OwnReferralCode, referrals.ReferralWindowClosed):
            await referrals.apply_referral(member.id, referral_code, device=device, field="referral_code")
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


def member_id_from_authorization(header_value: str | None, tokens: TokenService, at: datetime) -> int | None:
    """The member id in an `Authorization: Bearer <access token>` header valid at `at`; None without a header.

    Raises `InvalidToken` (malformed header, bad token) or `TokenExpired`.
    """
    access = member_access(header_value, tokens, at)
    return access[0] if access else None


def member_access(header_value: str | None, tokens: TokenService, at: datetime) -> tuple[int, datetime] | None:
    """The member id in an `Authorization: Bearer <access token>` value valid at `at` and when the token expires;
    None without a value (the websocket's `connection_init` carries the same value). Raises as above."""
    token = bearer_token(header_value)
    if token is None:
        return None
    claims = tokens.verify(token, MEMBER_AUDIENCE, at)
    if not claims.subject.isascii() or not claims.subject.isdigit():
        raise InvalidToken()
    return int(claims.subject), claims.expires_at


@dataclass(frozen=True)
class MemberSignIn:
    """The schema's `SessionIssuer`: `sessionCreate` and `sessionRefresh` over the functions above."""

    settings: Settings
    tokens: TokenService
    verifier: FirebaseVerifier

    async def create(
        self, firebase_id_token: str, *, referral_code: str | None = None, device_id: str | None = None
    ) -> IssuedSession:
        try:
            return await create_session(
                firebase_id_token,
                verifier=self.verifier,
                tokens=self.tokens,
                settings=self.settings,
                referral_code=referral_code,
                device_id=device_id,
            )
        except DomainError as error:  # the referral code or the device id
            raise SessionRefused(error.code, error.message, field=error.field) from error
        except AuthUnavailable as error:
            # Our dependency failed, not the member's token: the coded userError the SDL declares, retryable and
            # naming no input (a top-level error would be masked as "Unexpected error." in production).
            raise SessionRefused(error.code, error.message, retryable=True) from error
        except AuthError as error:
            raise SessionRefused(error.code, error.message) from error

    async def refresh(self, refresh_token: str) -> IssuedSession:
        try:
            return await refresh_session(refresh_token, tokens=self.tokens, settings=self.settings)
        except DomainError as error:  # RefreshTokenInvalid, RefreshTokenReused
            raise SessionRefused(error.code, error.message) from error
