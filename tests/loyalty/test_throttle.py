"""loyalty.throttle: at most `limit` attempts per (scope, subject) per window, claimed before they are evaluated."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import ThrottleCounter
from loyalty.throttle import TooManyAttempts, attempts, claim, clear, release

WINDOW = timedelta(minutes=15)
TICK = timedelta(microseconds=1)


async def outcome(subjects: list[str], scope: str = "login") -> str:
    try:
        await claim(scope, subjects, 5, WINDOW)
    except TooManyAttempts:
        return "refused"
    return "ok"


async def test_the_limit_th_attempt_is_the_last_one_let_through(db: str) -> None:
    # given 4 attempts (limit - 1)
    for _ in range(4):
        await claim("login", ["a@example.com"], 5, WINDOW)

    # when the 5th (limit) and the 6th (limit + 1) come
    fifth = await outcome(["a@example.com"])
    with pytest.raises(TooManyAttempts) as sixth:
        await claim("login", ["a@example.com"], 5, WINDOW)

    # then the 5th is let through and the 6th refused, and only the 5 count
    assert fifth == "ok"
    assert sixth.value.code == "TOO_MANY_ATTEMPTS"
    assert sixth.value.message == "too many failed attempts; try again within 15 minutes"
    assert await attempts("login", "a@example.com", WINDOW) == 5


async def test_the_window_opened_by_the_first_attempt_resets_when_it_is_over(db: str, clock: FrozenClock) -> None:
    # given a first attempt, and four a minute later
    first_at = clock.now()
    await claim("login", ["a@example.com"], 5, WINDOW)
    clock.advance(timedelta(minutes=1))
    for _ in range(4):
        await claim("login", ["a@example.com"], 5, WINDOW)

    # when the first is almost 15 minutes old the door is still closed; once it is, a new window opens
    clock.advance(WINDOW - timedelta(minutes=1) - TICK)
    just_before = await outcome(["a@example.com"])
    clock.advance(TICK)
    results = [await outcome(["a@example.com"]) for _ in range(6)]

    assert just_before == "refused"
    assert results == ["ok"] * 5 + ["refused"]
    row = await ThrottleCounter.get()
    assert (row.scope, row.subject, row.window_start, row.attempts) == (
        "login",
        "a@example.com",
        first_at + WINDOW,
        5,
    )


async def test_refused_attempts_count_nothing_and_do_not_extend_the_lock(db: str, clock: FrozenClock) -> None:
    for _ in range(5):
        await claim("login", ["a@example.com"], 5, WINDOW)
    for _ in range(3):
        clock.advance(timedelta(minutes=4))
        assert await outcome(["a@example.com"]) == "refused"
    assert await attempts("login", "a@example.com", WINDOW) == 5

    clock.advance(timedelta(minutes=3))  # the window is 15 minutes old; the refusals left nothing behind

    assert await outcome(["a@example.com"]) == "ok"
    assert await attempts("login", "a@example.com", WINDOW) == 1


async def test_a_released_attempt_no_longer_counts(db: str) -> None:
    # given 4 failures and a fifth attempt that turns out right
    for _ in range(4):
        await claim("voucher_code", ["till"], 5, WINDOW)
    right = await claim("voucher_code", ["till"], 5, WINDOW)

    # when it is released
    await release(right)

    # then one more failure is allowed, and no more
    assert await attempts("voucher_code", "till", WINDOW) == 4
    assert await outcome(["till"], "voucher_code") == "ok"
    assert await outcome(["till"], "voucher_code") == "refused"


async def test_a_release_never_forgives_an_attempt_of_a_later_window(db: str, clock: FrozenClock) -> None:
    # given an attempt claimed in one window, released only once a new window has 5 attempts
    old = await claim("voucher_code", ["till"], 5, WINDOW)
    clock.advance(WINDOW)
    for _ in range(5):
        await claim("voucher_code", ["till"], 5, WINDOW)

    await release(old)

    assert await attempts("voucher_code", "till", WINDOW) == 5
    assert await outcome(["till"], "voucher_code") == "refused"


async def test_after_every_attempt_was_forgiven_the_next_one_opens_a_new_window(db: str, clock: FrozenClock) -> None:
    # given a right attempt (forgiven) 10 minutes ago
    await release(await claim("voucher_code", ["till"], 5, WINDOW))
    clock.advance(timedelta(minutes=10))

    # when 5 wrong attempts follow
    for _ in range(5):
        await claim("voucher_code", ["till"], 5, WINDOW)

    # then they lock for 15 minutes from the first of them, not from the forgiven one
    clock.advance(timedelta(minutes=6))
    assert await outcome(["till"], "voucher_code") == "refused"
    row = await ThrottleCounter.get()
    assert (row.window_start, row.attempts) == (clock.now() - timedelta(minutes=6), 5)


async def test_an_attempt_counts_against_every_subject_or_none(db: str) -> None:
    # given a member at the limit
    for n in range(5):
        await claim("voucher_code", [f"till-{n}", "member:1"], 5, WINDOW)

    # when a till tries that member, and then another member
    refused = await outcome(["till-9", "member:1"], "voucher_code")
    claims = await claim("voucher_code", ["till-9", "member:2"], 5, WINDOW)

    # then the refused attempt counted against neither subject
    assert refused == "refused"
    assert [await attempts("voucher_code", s, WINDOW) for s in ("till-9", "member:1", "member:2")] == [1, 5, 1]
    assert [(c.scope, c.subject) for c in claims] == [("voucher_code", "till-9"), ("voucher_code", "member:2")]


async def test_scopes_and_subjects_are_counted_apart(db: str) -> None:
    for _ in range(5):
        await claim("login", ["a@example.com"], 5, WINDOW)

    assert await outcome(["b@example.com"]) == "ok"
    assert await outcome(["a@example.com"], "voucher_code") == "ok"
    assert await outcome(["a@example.com"]) == "refused"


async def test_clear_forgets_the_subjects_attempts_only(db: str) -> None:
    for _ in range(5):
        await claim("login", ["a@example.com"], 5, WINDOW)
        await claim("login", ["b@example.com"], 5, WINDOW)

    await clear("login", "a@example.com")

    assert await attempts("login", "a@example.com", WINDOW) == 0
    assert await outcome(["a@example.com"]) == "ok"
    assert await attempts("login", "b@example.com", WINDOW) == 5


@pytest.mark.postgres_only
async def test_50_simultaneous_attempts_let_exactly_the_limit_through(db: str) -> None:
    # when 50 attempts claim at once (asyncpg pool: separate connections, really concurrent)
    results = await asyncio.gather(
        *(claim("login", ["a@example.com"], 5, WINDOW) for _ in range(50)), return_exceptions=True
    )

    # then exactly 5 went through, the others were refused, and only the 5 are counted
    passed = [r for r in results if isinstance(r, list)]
    assert len(passed) == 5
    assert all(isinstance(r, TooManyAttempts) for r in results if not isinstance(r, list))
    assert await attempts("login", "a@example.com", WINDOW) == 5
    assert await ThrottleCounter.all().count() == 1


@pytest.mark.postgres_only
async def test_simultaneous_releases_and_claims_keep_the_count_exact(db: str) -> None:
    # given 5 claims, all released at once while 20 more claim
    held = [await claim("login", ["a@example.com"], 5, WINDOW) for _ in range(5)]
    results = await asyncio.gather(
        *(release(c) for c in held),
        *(claim("login", ["a@example.com"], 5, WINDOW) for _ in range(20)),
        return_exceptions=True,
    )

    # then the counter holds exactly the claims that went through, which never made it exceed 5
    passed = sum(isinstance(r, list) for r in results)
    assert passed <= 5
    assert all(r is None or isinstance(r, list | TooManyAttempts) for r in results)
    assert await attempts("login", "a@example.com", WINDOW) == passed


async def test_long_subjects_are_stored_as_a_digest(db: str) -> None:
    subject = "x" * 200 + "@example.com"

    claims = await claim("login", [subject], 5, WINDOW)

    assert await attempts("login", subject, WINDOW) == 1
    stored = await ThrottleCounter.get()
    assert stored.subject == claims[0].subject
    assert len(stored.subject) == len("sha256:") + 64


@pytest.mark.parametrize("subject", ["a\x00@example.com", "\ud800@example.com", "ä@example.com", "a\n@example.com"])
async def test_subjects_with_any_characters_are_counted_by_their_digest(db: str, subject: str) -> None:
    # Whatever a sign-in form was sent; PostgreSQL refuses NUL bytes and lone surrogates in text.
    for _ in range(5):
        await claim("login", [subject], 5, WINDOW)

    assert await outcome([subject]) == "refused"
    assert await outcome(["a@example.com"]) == "ok"
    stored = await ThrottleCounter.get(subject__startswith="sha256:")
    assert (len(stored.subject), stored.attempts) == (len("sha256:") + 64, 5)


async def test_a_bad_scope_is_a_programming_error(db: str) -> None:
    with pytest.raises(ValueError, match="scope"):
        await claim("", ["a@example.com"], 5, WINDOW)
    with pytest.raises(ValueError, match="scope"):
        await clear("s" * 33, "a@example.com")
    assert await ThrottleCounter.all().count() == 0
