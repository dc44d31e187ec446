"""Adapts the auth services to what the schema's session mutations expect (`schema.sessions.SessionIssuer`)."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import AuthError
from api.auth.firebase import FirebaseVerifier
from api.auth.sessions import create_session, refresh_session
from api.auth.tokens import TokenService
from api.settings import Settings
from loyalty.errors import DomainError
from schema.sessions import IssuedSession, SessionRefused


@dataclass(frozen=True)
class ApiSessionIssuer:
    settings: Settings
    tokens: TokenService
    verifier: FirebaseVerifier

    async def create(self, firebase_id_token: str) -> IssuedSession:
        try:
            issued = await create_session(
                firebase_id_token, verifier=self.verifier, tokens=self.tokens, settings=self.settings
            )
        except (AuthError, DomainError) as error:
            raise SessionRefused(error.code, str(error)) from error
        return _issued(issued)

    async def refresh(self, refresh_token: str) -> IssuedSession:
        try:
            issued = await refresh_session(refresh_token, tokens=self.tokens, settings=self.settings)
        except (AuthError, DomainError) as error:
            raise SessionRefused(error.code, str(error)) from error
        return _issued(issued)


def _issued(issued: object) -> IssuedSession:
    return IssuedSession(
        access_token=issued.access_token,  # type: ignore[attr-defined]
        access_token_expires_at=issued.access_expires_at,  # type: ignore[attr-defined]
        refresh_token=issued.refresh_token,  # type: ignore[attr-defined]
        member=issued.member,  # type: ignore[attr-defined]
    )
