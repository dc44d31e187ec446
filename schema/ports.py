"""What the session mutations need from the API layer (which owns Firebase and JWT signing)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loyalty.models import Member


class SessionRefused(Exception):
    """Sign-in or refresh was refused; `code` is one of SessionErrorCode's names. `retryable`: the input was not at
    fault (a dependency of ours failed), so the same request may succeed later."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    member: Member


class SessionIssuer(Protocol):
    async def create(self, firebase_id_token: str) -> IssuedSession: ...

    async def refresh(self, refresh_token: str) -> IssuedSession: ...
