"""userErrors: business failures are returned in payloads, never as top-level errors."""

from __future__ import annotations

import strawberry

from loyalty.errors import DomainError


@strawberry.type
class UserError:
    code: str = strawberry.field(description="Stable machine-readable code, e.g. INSUFFICIENT_POINTS.")
    message: str
    field: list[str] | None = strawberry.field(description="Path to the input field at fault.")


def user_error(error: DomainError) -> UserError:
    """Map a domain failure to a userError (the field path is relative to the mutation's `input`)."""
    return UserError(code=error.code, message=error.message, field=["input", error.field] if error.field else None)
