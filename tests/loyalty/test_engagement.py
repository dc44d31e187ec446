"""Engagement events: points by rule, limits per member day and month (member's timezone), idempotency."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.engagement import LimitReached, UnknownEventType, record_engagement
from loyalty.errors import DomainError, DuplicateIdempotencyKey, InvalidInput
from loyalty.models import AuditLog, EngagementEvent, EngagementRule, EntryKind, LedgerEntry, Member, Program, StaffRole
from tests.loyalty.ledger_helpers import balances, new_member
from tests.loyalty.purchase_helpers import all_counts

POS = Actor(kind="api_key", id=7, role=StaffRole.CASHIER, name="Review site")


async def _record(member: Member, external_id: str, at: datetime, event_type: str = "review_written") -> int:
    result = await record_engagement(POS, member.id, event_type=event_type, external_id=external_id, occurred_at=at)
    return result.points


async def _stockholmer(uid: str = "uid-engage") -> Member:
    member = await new_member(uid)
    await Member.filter(id=member.id).update(timezone="Europe/Stockholm")  # UTC+1 in February and March
    return member


async def test_an_event_credits_its_rules_points_at_once(program: Program, clock: FrozenClock) -> None:
    # given
    await EngagementRule.create(event_type="review_written", points=25)
    member = await new_member("uid-engage")

    # when
    result = await record_engagement(
        POS, member.id, event_type="review_written", external_id="rev-1", occurred_at=clock.now()
    )

    # then
    assert (result.member_id, result.event_type, result.points) == (member.id, "review_written", 25)
    assert await balances(member.id) == (25, 0, 25)
    entry = await LedgerEntry.get(member_id=member.id)
    assert (entry.kind, entry.description) == (EntryKind.ADJUSTMENT, "engagement: review_written")
    event = await EngagementEvent.get()
    assert (event.id, event.external_id, event.points) == (result.event_id, "rev-1", 25)
    assert (await AuditLog.get()).action == "engagement.record"


async def test_a_retried_event_credits_once_and_a_reused_id_is_refused(program: Program, clock: FrozenClock) -> None:
    # given an event already recorded
    await EngagementRule.create(event_type="social_share", points=5)
    member = await new_member("uid-engage")
    other = await new_member("uid-other")
    first = await record_engagement(
        POS, member.id, event_type="social_share", external_id="s-1", occurred_at=clock.now()
    )
    before = await all_counts()

    # when it is sent again, and its external id is sent for another member
    again = await record_engagement(
        POS, member.id, event_type="social_share", external_id="s-1", occurred_at=clock.now()
    )
    with pytest.raises(DuplicateIdempotencyKey):
        await record_engagement(POS, other.id, event_type="social_share", external_id="s-1", occurred_at=clock.now())

    # then
    assert again == first
    assert await all_counts() == before
    assert await balances(member.id) == (5, 0, 5)


async def test_daily_limit_counts_the_members_own_calendar_day(program: Program, clock: FrozenClock) -> None:
    # given 2 reviews a day for a member in Stockholm
    await EngagementRule.create(event_type="review_written", points=10, per_day_limit=2)
    member = await _stockholmer()
    march_1_local_late = datetime(2026, 3, 1, 22, 59, 59, tzinfo=UTC)  # 23:59:59 in Stockholm

    # when two reviews come in on 1 March (Stockholm)
    assert await _record(member, "r1", march_1_local_late) == 10
    assert await _record(member, "r2", datetime(2026, 2, 28, 23, 0, tzinfo=UTC)) == 10  # 00:00 on 1 March there
    before = await all_counts()

    # then a third on that day is refused, writing nothing
    with pytest.raises(LimitReached) as refused:
        await _record(member, "r3", datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
    assert refused.value.code == "LIMIT_REACHED"
    assert await all_counts() == before

    # and one a second later (00:00 on 2 March in Stockholm, still 1 March in UTC) earns
    assert await _record(member, "r4", march_1_local_late + timedelta(seconds=1)) == 10
    assert await balances(member.id) == (30, 0, 30)


async def test_monthly_limit_counts_the_members_own_calendar_month(program: Program, clock: FrozenClock) -> None:
    # given 3 surveys a month
    await EngagementRule.create(event_type="survey_answered", points=50, per_month_limit=3)
    member = await _stockholmer()
    feb_first_local = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
    march_first_local = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)

    # when three are answered across February (Stockholm), the last a second before March there
    for i, at in enumerate([feb_first_local, datetime(2026, 2, 14, 12, 0, tzinfo=UTC), march_first_local]):
        assert await _record(member, f"s{i}", at - timedelta(seconds=1 if i == 2 else 0), "survey_answered") == 50

    # then a fourth in February is refused, and one at midnight on 1 March (Stockholm) earns
    with pytest.raises(LimitReached):
        await _record(member, "s3", datetime(2026, 2, 20, tzinfo=UTC), "survey_answered")
    assert await _record(member, "s4", march_first_local, "survey_answered") == 50
    assert await balances(member.id) == (200, 0, 200)


@pytest.mark.parametrize(
    ("event_type", "external_id", "at_offset", "error", "code"),
    [
        ("app_installed", "x1", timedelta(0), UnknownEventType, "UNKNOWN_EVENT_TYPE"),  # the rule is inactive
        ("newsletter_read", "x1", timedelta(0), UnknownEventType, "UNKNOWN_EVENT_TYPE"),
        ("", "x1", timedelta(0), UnknownEventType, "UNKNOWN_EVENT_TYPE"),
        ("review_written", "", timedelta(0), InvalidInput, "INVALID"),
        ("review_written", "x" * 129, timedelta(0), InvalidInput, "INVALID"),
        ("review_written", "x1", timedelta(minutes=5, seconds=1), InvalidInput, "INVALID"),
    ],
)
async def test_bad_events_are_refused_with_a_precise_code_and_write_nothing(
    program: Program,
    clock: FrozenClock,
    event_type: str,
    external_id: str,
    at_offset: timedelta,
    error: type[DomainError],
    code: str,
) -> None:
    # given
    await EngagementRule.create(event_type="review_written", points=10)
    await EngagementRule.create(event_type="app_installed", points=100, active=False)
    member = await new_member("uid-engage")
    before = await all_counts()

    # when / then
    with pytest.raises(error) as refused:
        await record_engagement(
            POS, member.id, event_type=event_type, external_id=external_id, occurred_at=clock.now() + at_offset
        )
    assert refused.value.code == code
    assert await all_counts() == before


@pytest.mark.postgres_only
async def test_concurrent_events_never_exceed_the_daily_limit(program: Program, clock: FrozenClock) -> None:
    # given a limit of 2 shares a day
    await EngagementRule.create(event_type="social_share", points=5, per_day_limit=2)
    member = await new_member("uid-engage")

    # when 6 different shares arrive at once
    results = await asyncio.gather(
        *(
            record_engagement(POS, member.id, event_type="social_share", external_id=f"s{i}", occurred_at=clock.now())
            for i in range(6)
        ),
        return_exceptions=True,
    )

    # then exactly 2 earn
    assert sorted(type(r).__name__ for r in results) == ["EngagementResult"] * 2 + ["LimitReached"] * 4
    assert await EngagementEvent.all().count() == 2
    assert await balances(member.id) == (10, 0, 10)
