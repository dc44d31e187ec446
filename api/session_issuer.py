"""Adapts the auth services to what the schema's session mutations expect (`schema.sessions.SessionIssuer`)."""

from __future__ import annotations

from dataclasses import dataclass

from api.auth import AuthError, AuthUnavailable
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
            return await create_session(
                firebase_id_token, verifier=self.verifier, tokens=self.tokens, settings=self.settings
            )
        except AuthUnavailable:
            raise  # our fault, not the member's: a top-level error
        except AuthError as error:
            raise SessionRefused(error.code, error.message) from error

    async def refresh(self, refresh_token: str) -> IssuedSession:
        try:
            return await refresh_session(refresh_token, tokens=self.tokens, settings=self.settings)
        except DomainError as error:  # RefreshTokenInvalid, RefreshTokenReused
            raise SessionRefused(error.code, error.message) from error
