"""What the staff schema needs from the API layer, which owns password checks and token signing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loyalty.actors import Actor


@dataclass(frozen=True)
class IssuedStaffSession:
    access_token: str
    access_token_expires_at: datetime
    actor: Actor


class StaffSessionIssuer(Protocol):
    async def create(self, email: str, password: str) -> IssuedStaffSession:
        """Sign in; raises `InvalidCredentials` or `TooManyAttempts` (DomainErrors)."""
        ...
