"""The session a sign-in or refresh returns (`sessionCreate`, `sessionRefresh`), with its error codes."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from schema.errors import UserError, input_path
from schema.ports import IssuedSession, SessionRefused
from schema.types.member import Member


@strawberry.enum
class SessionErrorCode(Enum):
    # Values are error codes, not secrets.
    INVALID = "INVALID"
    INVALID_FIREBASE_TOKEN = "INVALID_FIREBASE_TOKEN"  # noqa: S105
    AUTH_UNAVAILABLE = "AUTH_UNAVAILABLE"
    REFRESH_TOKEN_INVALID = "REFRESH_TOKEN_INVALID"  # noqa: S105
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"  # noqa: S105
    # A referral code given at sign-up that cannot be used: nothing was written (no member, no session).
    CODE_UNKNOWN = "CODE_UNKNOWN"
    REFERRALS_OFF = "REFERRALS_OFF"


@strawberry.type
class SessionUserError(UserError):
    code: SessionErrorCode


@strawberry.type(description="Send `accessToken` as a Bearer token; trade `refreshToken` for new tokens before expiry.")
class SessionPayload:
    access_token: str | None
    access_token_expires_at: datetime | None
    refresh_token: str | None
    member: Member | None
    user_errors: list[SessionUserError]

    @classmethod
    def issued(cls, session: IssuedSession) -> SessionPayload:
        return cls(
            access_token=session.access_token,
            access_token_expires_at=session.access_token_expires_at,
            refresh_token=session.refresh_token,
            member=Member.from_model(session.member),
            user_errors=[],
        )

    @classmethod
    def refused(cls, error: SessionRefused, field: str) -> SessionPayload:
        """The refusal, naming the input at fault by its Python name (`refresh_token`); a retryable one names none."""
        code = SessionErrorCode[error.code] if error.code in SessionErrorCode.__members__ else SessionErrorCode.INVALID
        return cls(
            access_token=None,
            access_token_expires_at=None,
            refresh_token=None,
            member=None,
            user_errors=[
                SessionUserError(
                    code=code,
                    message=error.message,
                    field=None if error.retryable else input_path(error.field or field),
                )
            ],
        )
