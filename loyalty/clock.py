"""Business time. Every service asks `now()`; tests swap the clock to move time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock(Clock):
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def advance(self, delta: timedelta) -> datetime:
        self._at += delta
        return self._at

    def set(self, at: datetime) -> None:
        self._at = at.astimezone(UTC)


_clock: Clock = Clock()


def now() -> datetime:
    """The current business time (UTC, timezone-aware)."""
    return _clock.now()


def use_clock(clock: Clock) -> Clock:
    """Install `clock` as the business clock and return the previous one."""
    global _clock
    previous, _clock = _clock, clock
    return previous
