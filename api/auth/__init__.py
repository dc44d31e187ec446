"""Authentication: Firebase ID token verification, our access JWTs and member sessions.

Only the errors are re-exported here, so that importing them does not load firebase-admin or the key machinery.
"""

from api.auth.errors import (
    AuthError,
    AuthUnavailable,
    InvalidFirebaseToken,
    InvalidToken,
    TokenExpired,
)

__all__ = [
    "AuthError",
    "AuthUnavailable",
    "InvalidFirebaseToken",
    "InvalidToken",
    "TokenExpired",
]
