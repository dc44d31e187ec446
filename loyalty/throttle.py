"""Throttling of guesses (sign-in passwords, voucher codes): at most `limit` attempts per subject per window.

Claim first: an attempt is counted before it is evaluated, so however many arrive at once, at most `limit` are
evaluated per window; the rest are refused with `TooManyAttempts` without being looked at (and without counting).
An attempt that turned out right is then forgiven (`release`: it was no failure) or wipes the slate (`clear`: a
successful sign-in). Scopes keep unrelated counters apart ("staff_login", "voucher_code"); subjects are what is
protected or who guesses (an email, a member, a staff session, an API key).

    claims = await claim("voucher_code", [session, member], limit=5, window=timedelta(minutes=15))
    if attempt_succeeds():
        await release(claims)

A subject's counter is one `ThrottleCounter` row: its window opens with the first attempt counted in it and lasts
`window`; when it is over (or every attempt in it was forgiven), the next attempt opens a new one. Every change is
one conditional UPDATE of that row (`attempts < limit`, the window it read), so concurrent attempts, in any number of
processes, cannot both take the last place. Each statement commits on its own: call these outside a transaction,
so that a failed attempt stays counted when the caller rolls back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from loyalty import clock
from loyalty.errors import DomainError
from loyalty.models import ThrottleCounter

# Column sizes of ThrottleCounter.scope / subject.
MAX_SCOPE = 32
MAX_SUBJECT = 128
# A claim retries only when another attempt changed the counter between its read and its update, which is progress
# for that other attempt; past this many rounds it is refused rather than spin (it fails closed).
_MAX_ROUNDS = 20


class TooManyAttempts(DomainError):
    """Too many attempts for this subject recently; try again later."""

    code = "TOO_MANY_ATTEMPTS"


@dataclass(frozen=True)
class Claim:
    """One attempt counted against (scope, subject) in the window that started at `window_start`."""

    scope: str
    subject: str  # as stored (`_subject_key`)
    window_start: datetime


def _subject_key(subject: str) -> str:
    # Long subjects (an email may have 254 characters) and any but printable ASCII (whatever a sign-in form was sent:
    # NUL bytes, lone surrogates, which PostgreSQL refuses) are stored as their digest, as good for counting.
    if len(subject) <= MAX_SUBJECT and subject.isascii() and subject.isprintable():
        return subject
    return "sha256:" + hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()


def _check_scope(scope: str) -> str:
    if not scope or len(scope) > MAX_SCOPE:
        raise ValueError(f"throttle scope must be 1 to {MAX_SCOPE} characters")
    return scope


def _too_many(window: timedelta) -> TooManyAttempts:
    minutes = max(1, int(window.total_seconds() // 60))
    return TooManyAttempts(f"too many failed attempts; try again within {minutes} minutes")


async def attempts(scope: str, subject: str, window: timedelta) -> int:
    """How many attempts count against (scope, subject) in its current window (0 once the window is over)."""
    row = await ThrottleCounter.get_or_none(scope=_check_scope(scope), subject=_subject_key(subject))
    if row is None or row.window_start <= clock.now() - window:
        return 0
    return row.attempts


async def _claim_one(scope: str, subject: str, limit: int, window: timedelta) -> Claim | None:
    """Count one attempt against (scope, subject); None if the subject is at its limit."""
    for _ in range(_MAX_ROUNDS):
        now = clock.now()
        row = await ThrottleCounter.get_or_none(scope=scope, subject=subject)
        if row is None:
            try:
                await ThrottleCounter.create(scope=scope, subject=subject, window_start=now, attempts=1)
            except IntegrityError:  # another attempt created it first: count against that row
                continue
            return Claim(scope, subject, now)
        seen = ThrottleCounter.filter(id=row.id, window_start=row.window_start, attempts=row.attempts)
        if row.window_start <= now - window or row.attempts == 0:
            # A new window, opened by this attempt; the update only applies to the row as it was read.
            if await seen.update(window_start=now, attempts=1):
                return Claim(scope, subject, now)
        elif row.attempts >= limit:
            return None
        elif await seen.update(attempts=F("attempts") + 1):
            return Claim(scope, subject, row.window_start)
    return None


async def claim(scope: str, subjects: Sequence[str], limit: int, window: timedelta) -> list[Claim]:
    """Count one attempt against each subject before it is made.

    Raises `TooManyAttempts` if any subject already had `limit` attempts in its window; then nothing is counted
    (the subjects claimed before it are released), so hammering a locked subject does not extend its lock.
    """
    _check_scope(scope)
    claims: list[Claim] = []
    for subject in subjects:
        claimed = await _claim_one(scope, _subject_key(subject), limit, window)
        if claimed is None:
            await release(claims)
            raise _too_many(window)
        claims.append(claimed)
    return claims


async def release(claims: Sequence[Claim]) -> None:
    """Forgive claimed attempts that turned out right: they no longer count (in the window they were counted in)."""
    for claimed in claims:
        await ThrottleCounter.filter(
            scope=claimed.scope, subject=claimed.subject, window_start=claimed.window_start, attempts__gt=0
        ).update(attempts=F("attempts") - 1)


async def clear(scope: str, subject: str) -> None:
    """Forget every attempt counted against (scope, subject), e.g. after a successful sign-in."""
    await ThrottleCounter.filter(scope=_check_scope(scope), subject=_subject_key(subject)).delete()
