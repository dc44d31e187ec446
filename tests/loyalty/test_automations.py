"""Lifecycle automations: each one's edge under the business clock, once per occasion, nothing while disabled, the
`[push]` configuration and concurrent runs."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from loyalty import automations, events
from loyalty.automations import apply_push_config, on_events
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput
from loyalty.models import (
    AutomationKind,
    Member,
    MessagePurpose,
    OutboxEvent,
    Program,
    PushAutomation,
    PushMessage,
    PushPolicy,
    Voucher,
)
from tests.conftest import START
from tests.loyalty.ledger_helpers import give_available, new_member, purchase
from tests.loyalty.push_helpers import add_devices, bulk_members

DAY = timedelta(days=1)


async def enable(kind: str, **settings: Any) -> None:
    await apply_push_config(
        {
            "automations": {
                kind: {
                    "enabled": True,
                    "title": {"en": "Hi", "sv": "Hej"},
                    "body": {"en": "{points} points on {date}, {remaining} to {tier}", "sv": "{points} poäng"},
                    **settings,
                }
            }
        }
    )


async def messages() -> list[tuple[int, str, str]]:
    return list(await PushMessage.all().order_by("id").values_list("member_id", "occasion", "body"))


async def test_welcome_waits_for_its_delay_and_comes_once(program: Program, clock: FrozenClock) -> None:
    # given the welcome 10 minutes after enrollment, and a member enrolled now
    await enable("welcome", delay_minutes=10)
    member = await new_member("uid-new")

    # when the job runs a second before the delay ends, at its end, and again
    clock.advance(timedelta(minutes=10, seconds=-1))
    early = await automations.welcome()
    clock.advance(timedelta(seconds=1))
    due, again = await automations.welcome(), await automations.welcome()

    # then one welcome, at the delay's end
    assert (early, due, again) == (0, 1, 0)
    [message] = await PushMessage.all()
    assert (message.member_id, message.occasion, message.purpose, message.automation, message.due_at) == (
        member.id,
        "welcome",
        MessagePurpose.TRANSACTIONAL,
        AutomationKind.WELCOME,
        START + timedelta(minutes=10),
    )


async def test_points_earned_from_the_outbox_once_per_event(program: Program, clock: FrozenClock) -> None:
    # given the automation, a Swedish member's purchase earning 120 points, and a purchase earning none
    await enable("points_earned")
    member = await new_member("uid-buyer")
    await add_devices([member.id], "sv-SE")
    await purchase(member.id, "R1", 12_000, START)
    await purchase(member.id, "R2", 50, START)
    batch = list(await OutboxEvent.filter(type=events.POINTS_EARNED).order_by("id"))

    # when the push consumer's fan-out hands the events over twice (at least once delivery)
    conn = connections.get("default")
    first = await on_events(conn, batch, clock.now())
    second = await on_events(conn, batch, clock.now())

    # then one message, for the event with points, in Swedish
    assert (first, second) == (1, 0)
    assert await messages() == [(member.id, f"points_earned:{batch[0].id}", "120 poäng")]


async def test_points_earned_tells_only_of_recent_points(program: Program, clock: FrozenClock) -> None:
    # given the automation with a 24-hour horizon, and purchases recorded 24 hours and 24 hours and a second ago
    await enable("points_earned", max_age_hours=24)
    member = await new_member("uid-buyer")
    await purchase(member.id, "R1", 12_000, START)
    clock.advance(timedelta(seconds=1))
    await purchase(member.id, "R2", 13_000, clock.now())
    batch = list(await OutboxEvent.filter(type=events.POINTS_EARNED).order_by("id"))

    # when a worker that was down hands them over a day after the first
    written = await on_events(connections.get("default"), batch, START + timedelta(hours=24, seconds=1))

    # then only the purchase at most 24 hours old is told of
    assert (written, await messages()) == (
        1,
        [(member.id, f"points_earned:{batch[1].id}", "130 points on {date}, {remaining} to {tier}")],
    )


async def test_points_earned_while_disabled_writes_nothing(program: Program, clock: FrozenClock) -> None:
    # given a purchase and the automation configured but off
    await apply_push_config({"automations": {"points_earned": {"enabled": False}}})
    member = await new_member("uid-buyer")
    await purchase(member.id, "R1", 12_000, START)

    # when
    written = await on_events(connections.get("default"), list(await OutboxEvent.all()), clock.now())

    # then
    assert (written, await messages()) == (0, [])


async def test_points_expiring_within_n_days_exactly(program: Program, clock: FrozenClock) -> None:
    # given 14 days' notice, and 100 points expiring in 365 days (the program's expiry)
    await enable("points_expiring", within_days=14)
    member = await new_member("uid-saver")
    await give_available(member.id, 100)
    expires = START + timedelta(days=365)

    # when the job runs a second before the window reaches the expiry, when it does, and again
    clock.set(expires - timedelta(days=14, seconds=1))
    early = await automations.points_expiring()
    clock.set(expires - timedelta(days=14))
    due, again = await automations.points_expiring(), await automations.points_expiring()

    # then one message, for that date
    assert (early, due, again) == (0, 1, 0)
    assert await messages() == [
        (member.id, "points_expiring:2027-03-02", "100 points on 2027-03-02, {remaining} to {tier}")
    ]


async def test_points_expiring_on_one_date_are_summed_whatever_the_batch(program: Program, clock: FrozenClock) -> None:
    # given two members, each with two lots expiring on the same date, and a job taking one member per batch
    await enable("points_expiring", within_days=14)
    first, second = await new_member("uid-a"), await new_member("uid-b")
    for member in (first, second):
        await give_available(member.id, 100, key="one")
        await give_available(member.id, 30, key="two")
    clock.set(START + timedelta(days=365 - 14))

    # when the job runs
    written = await automations.points_expiring(batch_size=1)

    # then one message per member, telling of both lots
    assert (written, await messages()) == (
        2,
        [
            (m.id, "points_expiring:2027-03-02", "130 points on 2027-03-02, {remaining} to {tier}")
            for m in (first, second)
        ],
    )


async def test_close_to_the_next_tier_within_x_percent_exactly(program: Program, clock: FrozenClock) -> None:
    # given 10 % (Silver at 500: 450 to 499 qualifies) and members at 449, 450 and 499 points this year
    await enable("close_to_tier", within_percent=10)
    below, exact, closest = [await new_member(f"uid-{n}") for n in ("below", "exact", "closest")]
    for member, total in ((below, 44_900), (exact, 45_000), (closest, 49_900)):
        await purchase(member.id, f"R{member.id}", total, START)

    # when the job runs twice
    first, again = await automations.close_to_tier(), await automations.close_to_tier()

    # then the two within 10 % are told what is missing, once this period
    assert (first, again) == (2, 0)
    silver = next(t for t in program.tiers if t.name == "Silver")
    assert await messages() == [
        (exact.id, f"close_to_tier:{silver.id}:2026-01-01", "{points} points on {date}, 50 to Silver"),
        (closest.id, f"close_to_tier:{silver.id}:2026-01-01", "{points} points on {date}, 1 to Silver"),
    ]


async def test_win_back_once_per_lapse(program: Program, clock: FrozenClock) -> None:
    # given members enrolled 100 days ago whose last purchase was 59 and 60 days ago (lapsing from 60)
    await enable("win_back")
    clock.set(START - 100 * DAY)
    active, lapsing = await bulk_members(2, program)
    clock.set(START)
    await Member.filter(id=active).update(last_purchase_at=START - 59 * DAY)
    await Member.filter(id=lapsing).update(last_purchase_at=START - 60 * DAY)

    # when the job runs twice; then the member buys again and lapses again 60 days later
    first, again = await automations.win_back(), await automations.win_back()
    await Member.filter(id=lapsing).update(last_purchase_at=START + DAY)
    await Member.filter(id=active).update(last_purchase_at=START + DAY)
    clock.set(START + 61 * DAY)
    later = await automations.win_back()

    # then once per lapse
    assert (first, again, later) == (1, 0, 2)
    occasions = await PushMessage.filter(member_id=lapsing).order_by("id").values_list("occasion", flat=True)
    assert occasions == [
        f"win_back:{(START - 60 * DAY).isoformat()}",
        f"win_back:{(START + DAY).isoformat()}",
    ]


async def test_birthday_once_a_year_in_the_members_month(program: Program, clock: FrozenClock) -> None:
    # given members born in March (it is 2 March) and in April
    await enable("birthday")
    march, _april = await bulk_members(
        2, program, lambda i: {"birthday": date(1990, 3, 31) if i == 0 else date(1990, 4, 1)}
    )

    # when the job runs twice, and next March
    first, again = await automations.birthday(), await automations.birthday()
    clock.set(datetime(2027, 3, 1, tzinfo=UTC))
    next_year = await automations.birthday()

    # then the March member, once each year
    assert (first, again, next_year) == (1, 0, 1)
    assert [(m, o) for m, o, _ in await messages()] == [(march, "birthday:2026"), (march, "birthday:2027")]


async def test_voucher_expiring_within_n_days_exactly(program: Program, clock: FrozenClock) -> None:
    # given 3 days' notice, and vouchers expiring in exactly 3 days and 3 days and a second
    await enable("voucher_expiring", within_days=3)
    member = await new_member("uid-voucher")
    soon = await Voucher.create(member_id=member.id, code="V1", issued_at=START, expires_at=START + 3 * DAY)
    await Voucher.create(
        member_id=member.id, code="V2", issued_at=START, expires_at=START + 3 * DAY + timedelta(seconds=1)
    )

    # when the job runs twice
    first, again = await automations.voucher_expiring(), await automations.voucher_expiring()

    # then the one within 3 days, opening it
    assert (first, again) == (1, 0)
    [message] = await PushMessage.all()
    assert (message.occasion, message.target, message.purpose) == (
        f"voucher_expiring:{soon.id}",
        f"voucher:{soon.id}",
        MessagePurpose.TRANSACTIONAL,
    )


async def test_disabled_automations_write_nothing(program: Program, clock: FrozenClock) -> None:
    # given members every automation would reach, and every automation configured but off
    await apply_push_config({"automations": {kind.value: {"enabled": False} for kind in AutomationKind}})
    member = await new_member("uid-all")
    await Member.filter(id=member.id).update(birthday=date(1990, 3, 1))
    await give_available(member.id, 100)
    await purchase(member.id, "R1", 45_000, START)
    await Voucher.create(member_id=member.id, code="V1", issued_at=START, expires_at=START + DAY)
    clock.set(START + 364 * DAY)

    # when every job runs
    written = [await run() for run in automations.JOB_RUNS.values()]

    # then
    assert (written, await messages()) == ([0] * 6, [])


async def test_concurrent_runs_write_each_message_once(program: Program, clock: FrozenClock) -> None:
    # given 30 members with a birthday this month
    await enable("birthday")
    await bulk_members(30, program, lambda i: {"birthday": date(1990, 3, 1)})

    # when three workers run the job at once, in small batches
    counts = await asyncio.gather(*(automations.birthday(batch_size=7) for _ in range(3)))

    # then each message was written, and counted, once
    assert sum(counts) == 30
    assert await PushMessage.all().count() == 30


async def test_the_push_section_seeds_the_policy_and_automations(program: Program, clock: FrozenClock) -> None:
    # when a [push] section is applied
    written = await apply_push_config(
        {
            "default_locale": "sv",
            "marketing_per_day": 2,
            "quiet_start": "21:00",
            "quiet_end": "08:00",
            "automations": {"welcome": {"enabled": True, "title": {"sv": "Hej"}, "body": {"sv": "Välkommen"}}},
        }
    )

    # then
    policy = await PushPolicy.get()
    assert written == 1
    assert (
        policy.default_locale,
        policy.marketing_per_day,
        policy.marketing_per_week,
        policy.quiet_start and policy.quiet_start.replace(tzinfo=None),
    ) == (
        "sv",
        2,
        3,
        time(21, 0),
    )
    welcome = await PushAutomation.get(kind=AutomationKind.WELCOME)
    assert (welcome.enabled, welcome.settings, welcome.body) == (True, {"delay_minutes": 10}, {"sv": "Välkommen"})


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"automations": {"welcome": {"enabled": True, "title": {"sv": "Hej"}, "body": {"sv": "Hej"}}}}, "title"),
        (
            {
                "automations": {
                    "welcome": {"enabled": True, "title": {"en": "Hi"}, "body": {"en": "Hi"}, "delay_minutes": -1}
                }
            },
            "delay_minutes",
        ),
        ({"automations": {"close_to_tier": {"within_percent": 101}}}, "within_percent"),
        ({"automations": {"welcome": {"delay": 5}}}, "welcome"),
        ({"automations": {"anniversary": {}}}, "automations"),
        ({"quiet_start": "21:00"}, "quiet_start"),
        ({"quiet_start": "late", "quiet_end": "08:00"}, "quiet_start"),
        ({"marketing_per_day": -1}, "marketing_per_day"),
    ],
)
async def test_a_bad_push_section_is_refused(program: Program, section: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await apply_push_config(section)

    assert refused.value.field == field
    assert await PushAutomation.all().count() == 0
    assert await PushPolicy.all().count() == 0


async def test_enabling_needs_texts(program: Program) -> None:
    # given an automation configured off without texts
    await apply_push_config({"automations": {"birthday": {"enabled": False}}})

    # then it cannot be switched on until it has them
    with pytest.raises(InvalidInput):
        await automations.set_enabled(AutomationKind.BIRTHDAY, True)
    async with in_transaction():
        await PushAutomation.filter(kind=AutomationKind.BIRTHDAY).update(title={"en": "Hi"}, body={"en": "Hi"})
    switched = await automations.set_enabled(AutomationKind.BIRTHDAY, True)
    assert switched.enabled is True
