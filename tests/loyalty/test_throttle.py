"""loyalty.throttle: at most `limit` failures per (scope, subject) within a sliding window."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import ThrottleEvent
from loyalty.throttle import TooManyAttempts, check_throttle, claim_attempt, clear, failures, record_failure

WINDOW = timedelta(minutes=15)


async def test_the_limit_th_failure_closes_the_door(db: str) -> None:
    # given four failures: a fifth attempt is still allowed
    for _ in range(4):
        await record_failure("login", "a@example.com")
    await check_throttle("login", "a@example.com", 5, WINDOW)

    # when a fifth failure is recorded
    await record_failure("login", "a@example.com")

    # then the next attempt is refused
    with pytest.raises(TooManyAttempts) as refused:
        await check_throttle("login", "a@example.com", 5, WINDOW)
    assert refused.value.code == "TOO_MANY_ATTEMPTS"
    assert refused.value.message == "too many failed attempts; try again within 15 minutes"


async def test_failures_slide_out_of_the_window(db: str, clock: FrozenClock) -> None:
    # given five failures, the first one a minute before the others
    await record_failure("login", "a@example.com")
    clock.advance(timedelta(minutes=1))
    for _ in range(4):
        await record_failure("login", "a@example.com")

    # when the first one is exactly 15 minutes old, it no longer counts
    clock.advance(WINDOW - timedelta(minutes=1))
    await check_throttle("login", "a@example.com", 5, WINDOW)
    assert await failures("login", "a@example.com", WINDOW) == 4

    # and one more failure closes the door again
    await record_failure("login", "a@example.com")
    with pytest.raises(TooManyAttempts):
        await check_throttle("login", "a@example.com", 5, WINDOW)


async def test_scopes_and_subjects_are_counted_apart(db: str) -> None:
    for _ in range(5):
        await record_failure("login", "a@example.com")

    await check_throttle("login", "b@example.com", 5, WINDOW)
    await check_throttle("voucher_code", "a@example.com", 5, WINDOW)


async def test_clear_forgets_the_subjects_failures_only(db: str) -> None:
    for _ in range(5):
        await record_failure("login", "a@example.com")
        await record_failure("login", "b@example.com")

    await clear("login", "a@example.com")

    await check_throttle("login", "a@example.com", 5, WINDOW)
    assert await failures("login", "b@example.com", WINDOW) == 5


async def test_claimed_attempts_count_as_failures_until_cleared(db: str) -> None:
    for _ in range(5):
        await claim_attempt("login", "a@example.com", 5, WINDOW)

    with pytest.raises(TooManyAttempts):
        await claim_attempt("login", "a@example.com", 5, WINDOW)
    assert await failures("login", "a@example.com", WINDOW) == 5  # the refused claim took its row back

    await clear("login", "a@example.com")
    await claim_attempt("login", "a@example.com", 5, WINDOW)


async def test_refused_claims_do_not_extend_the_lock(db: str, clock: FrozenClock) -> None:
    for _ in range(5):
        await claim_attempt("login", "a@example.com", 5, WINDOW)
    for _ in range(3):
        clock.advance(timedelta(minutes=4))
        with pytest.raises(TooManyAttempts):
            await claim_attempt("login", "a@example.com", 5, WINDOW)

    clock.advance(timedelta(minutes=3))  # the five failures are now 15 minutes old; the refusals left nothing behind

    await claim_attempt("login", "a@example.com", 5, WINDOW)


@pytest.mark.postgres_only
async def test_simultaneous_claims_never_let_more_than_the_limit_through(db: str) -> None:
    # when 30 attempts claim at once
    results = await asyncio.gather(
        *(claim_attempt("login", "a@example.com", 5, WINDOW) for _ in range(30)), return_exceptions=True
    )

    # then at most 5 went through (fewer when many inserted before any counted) and only they are counted
    passed = sum(r is None for r in results)
    assert passed <= 5
    assert all(isinstance(r, TooManyAttempts) for r in results if r is not None)
    assert await failures("login", "a@example.com", WINDOW) == passed
    # and the window still holds exactly 5 attempts in all
    for _ in range(5 - passed):
        await claim_attempt("login", "a@example.com", 5, WINDOW)
    with pytest.raises(TooManyAttempts):
        await claim_attempt("login", "a@example.com", 5, WINDOW)


async def test_long_subjects_are_stored_as_a_digest(db: str) -> None:
    subject = "x" * 200 + "@example.com"

    await record_failure("login", subject)

    assert await failures("login", subject, WINDOW) == 1
    stored = await ThrottleEvent.get()
    assert len(stored.subject) == len("sha256:") + 64


async def test_a_bad_scope_is_a_programming_error(db: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        await record_failure("", "a@example.com")
    with pytest.raises(ValueError, match="scope"):
        await check_throttle("s" * 33, "a@example.com", 5, WINDOW)
    assert await ThrottleEvent.all().count() == 0
