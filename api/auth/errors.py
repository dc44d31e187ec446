"""Typed authentication failures. Each has a stable `code` and a message that is safe to show to clients."""

from __future__ import annotations


class AuthError(Exception):
    """Authentication was refused. The message never contains token contents or key material."""

    code = "UNAUTHENTICATED"
    default_message = "authentication failed"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class InvalidToken(AuthError):
    """An access token is malformed, badly signed, for another audience or issuer, or lacks a required claim."""

    code = "INVALID_TOKEN"
    default_message = "invalid access token"


class TokenExpired(AuthError):
    """An access token was valid but its `exp` has passed: the client should refresh."""

    code = "TOKEN_EXPIRED"
    default_message = "access token expired"


class InvalidFirebaseToken(AuthError):
    """A Firebase ID token was refused (bad signature, other project, expired, malformed)."""

    code = "INVALID_FIREBASE_TOKEN"
    default_message = "invalid Firebase ID token"


class AuthUnavailable(AuthError):
    """Firebase's signing keys could not be fetched: a fault on our side, worth retrying."""

    code = "AUTH_UNAVAILABLE"
    default_message = "sign-in is temporarily unavailable (Google's signing keys could not be fetched): try again"
