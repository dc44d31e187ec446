"""Member sessions: opaque refresh tokens that rotate on every use, stored only as SHA-256 hashes.

The tokens of one sign-in form a family. Presenting a token that was already used means it leaked (or a client
replayed it), so the whole family is revoked: the thief and the member are both signed out, and the member signs in
again with Firebase.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.errors import DomainError
from loyalty.models import RefreshToken

DEFAULT_REFRESH_DAYS = 30
TOKEN_BYTES = 32


class RefreshTokenInvalid(DomainError):
    """The refresh token is unknown, expired, or its session has ended."""

    code = "REFRESH_TOKEN_INVALID"


class RefreshTokenReused(DomainError):
    """The refresh token had already been used; its whole session (family) was revoked."""

    code = "REFRESH_TOKEN_REUSED"


MAX_TOKEN_LENGTH = 100  # ours are 43 characters


def hash_refresh_token(raw: str) -> str:
    """The stored form of a refresh token: a leaked table gives no usable tokens."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _could_be_ours(raw: str) -> bool:
    """Ours are URL-safe base64: anything else (a lone surrogate cannot even be hashed) is no token of ours."""
    return 0 < len(raw) <= MAX_TOKEN_LENGTH and raw.isascii() and raw.isprintable()


async def _issue(
    member_id: int,
    family: uuid.UUID,
    now: datetime,
    refresh_days: int,
    conn: BaseDBAsyncClient | None = None,
    device_hash: str | None = None,
) -> str:
    raw = secrets.token_urlsafe(TOKEN_BYTES)
    await RefreshToken.create(
        member_id=member_id,
        family=family,
        device_hash=device_hash,
        token_hash=hash_refresh_token(raw),
        created_at=now,
        expires_at=now + timedelta(days=refresh_days),
        using_db=conn,
    )
    return raw


async def start_session(
    member_id: int, *, refresh_days: int = DEFAULT_REFRESH_DAYS, device_hash: str | None = None
) -> str:
    """Start a new session (token family) for the member and return its first refresh token. `device_hash`: the app
    installation's (`referrals.device_hash`), kept by every token of the family."""
    return await _issue(member_id, uuid.uuid4(), clock.now(), refresh_days, device_hash=device_hash)


async def revoke_family(family: uuid.UUID) -> int:
    """End a session: every token of the family stops working. Returns how many tokens were revoked now."""
    return await RefreshToken.filter(family=family, revoked_at__isnull=True).update(revoked_at=clock.now())


async def end_session(raw: str) -> None:
    """Sign out: revoke the session the refresh token belongs to (unknown tokens are ignored)."""
    if not _could_be_ours(raw):
        return
    token = await RefreshToken.get_or_none(token_hash=hash_refresh_token(raw))
    if token is not None:
        await revoke_family(token.family)


async def rotate_refresh_token(raw: str, *, refresh_days: int = DEFAULT_REFRESH_DAYS) -> tuple[int, str]:
    """Exchange a refresh token for a new one of the same session: returns (member_id, new raw token).

    Raises `RefreshTokenInvalid` for an unknown, expired or revoked token, and `RefreshTokenReused` (after revoking
    the whole family) for a token that was already used. Of concurrent rotations of one token exactly one succeeds:
    the token is claimed with a conditional UPDATE whose row count decides; the others count as reuse.
    """
    now = clock.now()
    if not _could_be_ours(raw):
        raise RefreshTokenInvalid("invalid refresh token")
    token = await RefreshToken.get_or_none(token_hash=hash_refresh_token(raw))
    # A used token is reuse even when its family is already revoked (by a concurrent reuse of the same token).
    if token is None or (token.revoked_at is not None and token.used_at is None):
        raise RefreshTokenInvalid("invalid refresh token")
    if token.used_at is None and token.expires_at <= now:
        raise RefreshTokenInvalid("refresh token expired")
    new_raw: str | None = None
    if token.used_at is None:
        async with in_transaction() as conn:
            claimed = (
                await RefreshToken.filter(id=token.id, used_at__isnull=True, revoked_at__isnull=True)
                .using_db(conn)
                .update(used_at=now)
            )
            if claimed == 1:
                new_raw = await _issue(token.member_id, token.family, now, refresh_days, conn, token.device_hash)
    if new_raw is None:
        # Used before (or just now by a concurrent request): revoke outside the failed claim so it is committed.
        await revoke_family(token.family)
        raise RefreshTokenReused("refresh token was already used; the session has been ended")
    return token.member_id, new_raw
