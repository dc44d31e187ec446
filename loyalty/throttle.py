"""Throttling of failed attempts (sign-in passwords, voucher codes): at most `limit` failures per subject per window.

A failure is one `ThrottleEvent` row for (scope, subject). Scopes keep unrelated counters apart ("staff_login",
"voucher_code", ...); subjects are whatever is being protected (an email, a member id, a staff session). Rows are
written outside the caller's transaction by default, so that a rolled-back attempt still counts; pass `conn` to do
otherwise.

Check, then record (simple; two statements, so attempts that run truly in parallel can all pass the check before any
failure is recorded):

    await check_throttle("voucher_code", subject, limit=5, window=timedelta(minutes=15))  # TooManyAttempts if over
    if not attempt_succeeds():
        await record_failure("voucher_code", subject)

Claim, then forgive (race-free: the attempt is counted as a failure before it is made, so however many arrive at
once, at most `limit` are let through per window):

    await claim_attempt("staff_login", email, limit=5, window=timedelta(minutes=15))  # TooManyAttempts if over
    if attempt_succeeds():
        await clear("staff_login", email)  # the success forgives its own claim and the earlier failures
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock
from loyalty.errors import DomainError
from loyalty.models import ThrottleEvent

# Column sizes of ThrottleEvent.scope / subject.
MAX_SCOPE = 32
MAX_SUBJECT = 128


class TooManyAttempts(DomainError):
    """Too many failed attempts for this subject recently; try again later."""

    code = "TOO_MANY_ATTEMPTS"


def _subject_key(subject: str) -> str:
    # Long subjects (an email may have 254 characters) are stored as their digest, which is as good for counting.
    if len(subject) <= MAX_SUBJECT:
        return subject
    return "sha256:" + hashlib.sha256(subject.encode()).hexdigest()


def _check_scope(scope: str) -> str:
    if not scope or len(scope) > MAX_SCOPE:
        raise ValueError(f"throttle scope must be 1 to {MAX_SCOPE} characters")
    return scope


async def failures(scope: str, subject: str, window: timedelta, conn: BaseDBAsyncClient | None = None) -> int:
    """How many failures (scope, subject) had within the last `window`."""
    since = clock.now() - window
    return (
        await ThrottleEvent.filter(scope=_check_scope(scope), subject=_subject_key(subject), created_at__gt=since)
        .using_db(conn)
        .count()
    )


async def check_throttle(
    scope: str, subject: str, limit: int, window: timedelta, conn: BaseDBAsyncClient | None = None
) -> None:
    """Raise `TooManyAttempts` if (scope, subject) already had `limit` failures within the last `window`."""
    if await failures(scope, subject, window, conn) >= limit:
        raise _too_many(window)


def _too_many(window: timedelta) -> TooManyAttempts:
    minutes = max(1, int(window.total_seconds() // 60))
    return TooManyAttempts(f"too many failed attempts; try again within {minutes} minutes")


async def record_failure(scope: str, subject: str, conn: BaseDBAsyncClient | None = None) -> None:
    """Count one failure against (scope, subject)."""
    await ThrottleEvent.create(
        scope=_check_scope(scope), subject=_subject_key(subject), created_at=clock.now(), using_db=conn
    )


async def claim_attempt(scope: str, subject: str, limit: int, window: timedelta) -> None:
    """Count an attempt as a failure before it is made; raise `TooManyAttempts` if that exceeds `limit` in `window`.

    Race-free: each attempt inserts its row, then counts the committed rows, so of any number of simultaneous
    attempts at most `limit` see a count within the limit. A refused attempt takes its row back, so hammering a
    locked subject does not extend the lock. A successful attempt should `clear` the subject.
    """
    event = await ThrottleEvent.create(scope=_check_scope(scope), subject=_subject_key(subject), created_at=clock.now())
    if await failures(scope, subject, window) > limit:
        await ThrottleEvent.filter(id=event.id).delete()
        raise _too_many(window)


async def clear(scope: str, subject: str, conn: BaseDBAsyncClient | None = None) -> None:
    """Forget every recorded failure of (scope, subject), e.g. after a successful sign-in."""
    await ThrottleEvent.filter(scope=_check_scope(scope), subject=_subject_key(subject)).using_db(conn).delete()
