"""The birthday job: once a year in the member's birthday month, in the member's timezone."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

import pytest

from loyalty import jobs
from loyalty.clock import FrozenClock
from loyalty.models import EntryKind, LedgerEntry, Member, Program
from tests.loyalty.ledger_helpers import balances, configure, new_member


async def _born(uid: str, birthday: date | None, timezone: str = "UTC") -> Member:
    member = await new_member(uid)
    await Member.filter(id=member.id).update(birthday=birthday, timezone=timezone)
    return member


async def test_members_in_their_birthday_month_get_the_points_once(program: Program, clock: FrozenClock) -> None:
    # given 100 birthday points; it is 2 March 2026
    await configure(birthday_points=100)
    march = await _born("uid-march", date(1990, 3, 31))
    april = await _born("uid-april", date(1990, 4, 1))
    unknown = await _born("uid-unknown", None)

    # when the job runs twice
    first = await jobs.birthday_rewards()
    second = await jobs.birthday_rewards()

    # then only the March member is credited, once, immediately available
    assert (first, second) == (1, 0)
    assert await balances(march.id) == (100, 0, 100)
    assert await balances(april.id) == (0, 0, 0)
    assert await balances(unknown.id) == (0, 0, 0)
    entry = await LedgerEntry.get(member_id=march.id)
    assert (entry.kind, entry.description) == (EntryKind.BIRTHDAY, "birthday 2026")


async def test_the_birthday_month_starts_in_the_members_own_timezone(program: Program, clock: FrozenClock) -> None:
    # given 23:30 UTC on 28 February: already 1 March in Stockholm
    await configure(birthday_points=50)
    clock.set(datetime(2026, 2, 28, 23, 30, tzinfo=UTC))
    stockholm = await _born("uid-sthlm", date(1985, 3, 10), "Europe/Stockholm")
    london = await _born("uid-utc", date(1985, 3, 10), "Europe/London")

    # when
    assert await jobs.birthday_rewards() == 1

    # then
    assert await balances(stockholm.id) == (50, 0, 50)
    assert await balances(london.id) == (0, 0, 0)


async def test_a_29_february_birthday_is_celebrated_in_february_of_a_non_leap_year(
    program: Program, clock: FrozenClock
) -> None:
    # given a leap-day member and February 2027 (not a leap year)
    await configure(birthday_points=75)
    leap = await _born("uid-leap", date(2000, 2, 29))
    clock.set(datetime(2027, 2, 10, 9, 0, tzinfo=UTC))

    # when / then
    assert await jobs.birthday_rewards() == 1
    assert await balances(leap.id) == (75, 0, 75)


async def test_the_next_year_brings_the_next_birthday_points(program: Program, clock: FrozenClock) -> None:
    await configure(birthday_points=100)
    member = await _born("uid-march", date(1990, 3, 2))
    await jobs.birthday_rewards()

    clock.set(datetime(2027, 3, 1, tzinfo=UTC))
    assert await jobs.birthday_rewards() == 1

    assert await balances(member.id) == (200, 0, 200)


async def test_a_program_without_birthday_points_credits_nothing(program: Program, clock: FrozenClock) -> None:
    member = await _born("uid-march", date(1990, 3, 2))

    assert await jobs.birthday_rewards() == 0
    assert await LedgerEntry.filter(member_id=member.id).count() == 0


@pytest.mark.postgres_only
async def test_concurrent_job_runs_credit_each_member_once(program: Program, clock: FrozenClock) -> None:
    # given 10 March birthdays
    await configure(birthday_points=100)
    members = [await _born(f"uid-{i}", date(1990, 3, 1 + i)) for i in range(10)]

    # when three jobs run at once
    counts = await asyncio.gather(*(jobs.birthday_rewards(batch_size=3) for _ in range(3)))

    # then
    assert sum(counts) == 10
    assert await LedgerEntry.filter(kind=EntryKind.BIRTHDAY).count() == 10
    for member in members:
        assert await balances(member.id) == (100, 0, 100)
