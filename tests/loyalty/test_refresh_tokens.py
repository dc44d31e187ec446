"""Refresh tokens: stored hashed, rotated on use, reuse ends the session, and concurrent rotation spends once."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest

from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, Program, RefreshToken
from loyalty.refresh_tokens import (
    RefreshTokenInvalid,
    RefreshTokenReused,
    end_session,
    rotate_refresh_token,
    start_session,
)
from tests.conftest import START


async def _member(uid: str = "uid-session") -> Member:
    member, _ = await enroll_member(uid, email=f"{uid}@example.com")
    return member


async def test_start_session_stores_only_the_hash(program: Program) -> None:
    # given a member
    member = await _member()

    # when a session starts
    raw = await start_session(member.id, refresh_days=30)

    # then only the SHA-256 of the token is stored, with the session's lifetime
    row = await RefreshToken.get(member_id=member.id)
    assert row.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in {row.token_hash, str(row.family)}
    assert (row.created_at, row.expires_at, row.used_at, row.revoked_at) == (
        START,
        START + timedelta(days=30),
        None,
        None,
    )
    assert len(raw) == 43  # 32 random bytes, base64url


async def test_each_sign_in_starts_its_own_family(program: Program) -> None:
    member = await _member()

    first, second = await start_session(member.id), await start_session(member.id)

    rows = await RefreshToken.filter(member_id=member.id).order_by("id")
    assert first != second
    assert rows[0].family != rows[1].family


async def test_rotation_spends_the_token_and_continues_the_family(program: Program, clock: FrozenClock) -> None:
    # given a session, a day later
    member = await _member()
    raw = await start_session(member.id, refresh_days=30)
    clock.advance(timedelta(days=1))

    # when the token is rotated
    member_id, new_raw = await rotate_refresh_token(raw, refresh_days=30)

    # then the old token is marked used and the new one belongs to the same family with a fresh lifetime
    old = await RefreshToken.get(token_hash=hashlib.sha256(raw.encode()).hexdigest())
    new = await RefreshToken.get(token_hash=hashlib.sha256(new_raw.encode()).hexdigest())
    assert member_id == member.id
    assert new_raw != raw
    assert (old.used_at, old.revoked_at) == (START + timedelta(days=1), None)
    assert (new.family, new.used_at, new.expires_at) == (old.family, None, START + timedelta(days=31))
    # and the new token rotates in turn
    assert (await rotate_refresh_token(new_raw))[0] == member.id


async def test_reuse_revokes_the_whole_family(program: Program, clock: FrozenClock) -> None:
    # given a session rotated twice (a → b → c), and another session of the same member
    member = await _member()
    a = await start_session(member.id)
    _, b = await rotate_refresh_token(a)
    _, c = await rotate_refresh_token(b)
    other = await start_session(member.id)
    clock.advance(timedelta(minutes=5))

    # when the spent token a is presented again
    with pytest.raises(RefreshTokenReused) as refused:
        await rotate_refresh_token(a)

    # then every token of that family is revoked, the newest one included, and the other session is untouched
    assert refused.value.code == "REFRESH_TOKEN_REUSED"
    family = (await RefreshToken.get(token_hash=hashlib.sha256(a.encode()).hexdigest())).family
    assert [t.revoked_at for t in await RefreshToken.filter(family=family)] == [START + timedelta(minutes=5)] * 3
    with pytest.raises(RefreshTokenInvalid):
        await rotate_refresh_token(c)
    assert (await rotate_refresh_token(other))[0] == member.id


async def test_token_expires_after_refresh_days(program: Program, clock: FrozenClock) -> None:
    # given two sessions: one tried just before expiry, one at expiry
    member = await _member()
    early, late = await start_session(member.id, refresh_days=7), await start_session(member.id, refresh_days=7)
    clock.advance(timedelta(days=7, seconds=-1))
    assert (await rotate_refresh_token(early))[0] == member.id

    # when the lifetime has passed
    clock.advance(timedelta(seconds=1))

    # then the token is refused and nothing is spent
    with pytest.raises(RefreshTokenInvalid, match="expired") as refused:
        await rotate_refresh_token(late)
    assert refused.value.code == "REFRESH_TOKEN_INVALID"
    assert await RefreshToken.filter(used_at__isnull=False).count() == 1


@pytest.mark.parametrize("raw", ["", "not-a-token", "x" * 43])
async def test_unknown_token_is_invalid(program: Program, raw: str) -> None:
    await start_session((await _member()).id)

    with pytest.raises(RefreshTokenInvalid):
        await rotate_refresh_token(raw)


async def test_end_session_revokes_the_family(program: Program) -> None:
    # given a rotated session
    member = await _member()
    _, current = await rotate_refresh_token(await start_session(member.id))

    # when the member signs out
    await end_session(current)

    # then the current token no longer works, and no reuse is reported for it
    with pytest.raises(RefreshTokenInvalid):
        await rotate_refresh_token(current)
    assert await RefreshToken.filter(revoked_at__isnull=True).count() == 0


async def test_sessions_go_when_the_member_goes(program: Program) -> None:
    member = await _member()
    raw = await start_session(member.id)

    await member.delete()

    with pytest.raises(RefreshTokenInvalid):
        await rotate_refresh_token(raw)


@pytest.mark.postgres_only
async def test_concurrent_rotations_of_one_token_spend_it_once(program: Program) -> None:
    # given a session whose token is sent by eight clients at once, on separate connections
    member = await _member()
    raw = await start_session(member.id)

    # when they all rotate it concurrently
    results = await asyncio.gather(*(rotate_refresh_token(raw) for _ in range(8)), return_exceptions=True)

    # then exactly one gets a new token; the others are reuse, which ends the session
    winners = [r for r in results if isinstance(r, tuple)]
    assert len(winners) == 1
    assert [type(r) for r in results if not isinstance(r, tuple)] == [RefreshTokenReused] * 7
    rows = await RefreshToken.filter(member_id=member.id)
    assert len(rows) == 2
    assert all(row.revoked_at is not None for row in rows)
