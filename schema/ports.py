"""What the member schema needs from the API layer: session issuing (Firebase, JWT signing) and wallet links
(signing keys, the public URL)."""

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


class WalletLinks(Protocol):
    """The member's wallet links, made by the API layer (it holds the signing keys and knows the public URL)."""

    async def apple_pass_url(self, member_id: int, now: datetime) -> str | None:
        """A short-lived signed link downloading the member's Apple Wallet pass; None when Apple Wallet is off."""
        ...
