"""The `Authorization: Bearer <token>` header both GraphQL endpoints and the console read."""

from __future__ import annotations

from api.auth.errors import InvalidToken


def bearer_token(header_value: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` header; None without a header, `InvalidToken` if malformed."""
    if header_value is None:
        return None
    scheme, _, token = header_value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise InvalidToken("expected 'Authorization: Bearer <token>'")
    return token
