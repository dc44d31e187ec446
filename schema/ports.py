"""What the member schema needs from the API layer: session issuing (Firebase, JWT signing), wallet links
(signing keys, the public URL) and the live updates' broker (in process or Redis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from loyalty.live import Change
from loyalty.models import Member


class SessionRefused(Exception):
    """Sign-in or refresh was refused; `code` is one of SessionErrorCode's names. `retryable`: the input was not at
    fault (a dependency of ours failed), so the same request may succeed later."""

    def __init__(self, code: str, message: str, *, retryable: bool = False, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.field = field  # the input at fault by its Python name, when it is not the token (`referral_code`)


@dataclass(frozen=True)
class IssuedSession:
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str
    member: Member


class SessionIssuer(Protocol):
    async def create(
        self, firebase_id_token: str, *, referral_code: str | None = None, device_id: str | None = None
    ) -> IssuedSession: ...

    async def refresh(self, refresh_token: str) -> IssuedSession: ...


class WalletLinks(Protocol):
    """The member's wallet links, made by the API layer (it holds the signing keys and knows the public URL)."""

    async def apple_pass_url(self, member_id: int, now: datetime) -> str | None:
        """A short-lived signed link downloading the member's Apple Wallet pass; None when Apple Wallet is off."""
        ...


class GoogleWalletLinks(Protocol):
    """The member's "save to Google Wallet" link, made by the API layer (it holds the service account's key)."""

    async def google_save_url(self, member_id: int, now: datetime) -> str | None:
        """A link that saves the member's card to Google Wallet; None while Google cannot be reached."""
        ...


class LiveSubscription(Protocol):
    async def next(self) -> frozenset[Change]:
        """What changed for the member since the previous call, waiting for the next notice (changes published
        faster than they are taken arrive merged)."""
        ...

    def close(self) -> None:
        """Stop receiving (idempotent)."""
        ...


class LiveUpdates(Protocol):
    """The live updates of members (`memberUpdated`), routed by the API layer's broker (`api.live`)."""

    async def subscribe(self, member_id: int) -> LiveSubscription:
        """A subscription to the member's notices, receiving from the moment this returns."""
        ...
