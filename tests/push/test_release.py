"""Releasing due messages (`loyalty.messages.release_due`): expiry, consent at the moment of sending, rolling
frequency caps (at the cap and one over), quiet hours in the member's timezone across both DST changes, urgent
transactional messages, the inbox without a device, and a statement budget that does not grow with the batch."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from loyalty import messages
from loyalty.clock import FrozenClock
from loyalty.messages import Released, quiet_until
from loyalty.models import Member, MessagePurpose, MessageStatus, PushDelivery, PushMessage, PushPolicy
from tests.loyalty.test_purchase_statements import counted, kinds
from tests.push.helpers import (
    add_devices,
    message,
    new_member,
    new_members,
    outgoing,
    schedule,
    sent_at,
    withdraw_consent,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")


async def policy(**values: Any) -> None:
    # TimeFields want aware times (Tortoise's use_tz); the policy's are local wall times whatever the tag.
    values = {k: v.replace(tzinfo=UTC) if isinstance(v, time) else v for k, v in values.items()}
    await PushPolicy.create(updated_at=datetime(2026, 1, 1, tzinfo=UTC), **values)


async def state(member: Member, occasion: str) -> tuple[MessageStatus, str]:
    found = await message(member, occasion)
    return found.status, found.suppressed_reason


async def test_a_due_message_lands_in_the_inbox_with_one_delivery_per_device(db: str, clock: FrozenClock) -> None:
    # given a member with two devices, one without any, and a message to each due now (one due later)
    phone = await new_member()
    await add_devices(phone, "tok-phone", "tok-tablet")
    alone = await new_member()
    await schedule(outgoing(phone, "campaign:1"), outgoing(alone, "campaign:1"))
    await schedule(outgoing(phone, "campaign:2", due_at=clock.now() + timedelta(seconds=1)))
    # when due messages are released
    released = await messages.release_due()
    # then both are SENT now (the inbox); the phone owes one delivery per device, the other member none
    assert released == Released(sent=2, deliveries=2)
    first = await message(phone, "campaign:1")
    assert (first.status, first.sent_at) == (MessageStatus.SENT, clock.now())
    assert (await message(alone, "campaign:1")).status is MessageStatus.SENT
    assert (await message(phone, "campaign:2")).status is MessageStatus.SCHEDULED
    rows = await PushDelivery.all().order_by("token").values_list("message_id", "token", "status", "next_attempt_at")
    assert rows == [(first.id, "tok-phone", "pending", clock.now()), (first.id, "tok-tablet", "pending", clock.now())]
    # and releasing again does nothing
    assert await messages.release_due() == Released()


async def test_an_expired_message_is_suppressed(db: str, clock: FrozenClock) -> None:
    # given a message whose offer ended exactly now, and one ending a second later
    member = await new_member()
    await schedule(
        outgoing(member, "offer:1", expires_at=clock.now()),
        outgoing(member, "offer:2", expires_at=clock.now() + timedelta(seconds=1)),
    )
    # when released
    released = await messages.release_due()
    # then the first is suppressed as expired, the second sent
    assert released == Released(sent=1, suppressed={"expired": 1})
    assert await state(member, "offer:1") == (MessageStatus.SUPPRESSED, "expired")
    assert await state(member, "offer:2") == (MessageStatus.SENT, "")


async def test_consent_withdrawn_after_scheduling_suppresses_marketing_only(db: str, clock: FrozenClock) -> None:
    # given a marketing and a transactional message scheduled while the member consented
    member = await new_member(consent=True)
    await schedule(
        outgoing(member, "campaign:1"),
        outgoing(member, "points_earned:1", purpose=MessagePurpose.TRANSACTIONAL),
    )
    # when the member opts out before they are sent
    await withdraw_consent(member)
    released = await messages.release_due()
    # then the marketing one is suppressed, the transactional one sent
    assert released == Released(sent=1, suppressed={"consent": 1})
    assert await state(member, "campaign:1") == (MessageStatus.SUPPRESSED, "consent")
    assert await state(member, "points_earned:1") == (MessageStatus.SENT, "")


async def test_the_daily_cap_sends_exactly_the_cap_and_suppresses_one_over(db: str, clock: FrozenClock) -> None:
    # given a cap of 2 marketing messages a day, one sent 23 h 59 min ago and one sent exactly 24 h ago
    await policy(marketing_per_day=2, marketing_per_week=None)
    member = await new_member()
    await sent_at(member, "old:1", clock.now() - timedelta(hours=23, minutes=59))
    await sent_at(member, "old:2", clock.now() - timedelta(hours=24))
    # and three more due now (oldest due first)
    await schedule(*(outgoing(member, f"campaign:{n}", due_at=clock.now() - timedelta(minutes=n)) for n in (3, 2, 1)))
    # when released
    released = await messages.release_due()
    # then the rolling day holds 1 already: one more reaches the cap, the next two are over it
    assert released == Released(sent=1, suppressed={"cap": 2})
    assert await state(member, "campaign:3") == (MessageStatus.SENT, "")
    assert await state(member, "campaign:2") == (MessageStatus.SUPPRESSED, "cap")
    assert await state(member, "campaign:1") == (MessageStatus.SUPPRESSED, "cap")


async def test_the_weekly_cap_counts_seven_rolling_days_per_purpose(db: str, clock: FrozenClock) -> None:
    # given 3 marketing a week: three sent within the last 7 days, one exactly 7 days ago
    await policy(marketing_per_day=None, marketing_per_week=3, transactional_per_day=1)
    member = await new_member()
    for n, days in enumerate((1, 3, 6.99, 7)):
        await sent_at(member, f"old:{n}", clock.now() - timedelta(days=days))
    await schedule(
        outgoing(member, "campaign:1"),
        outgoing(member, "points_earned:1", purpose=MessagePurpose.TRANSACTIONAL),
        outgoing(member, "points_earned:2", purpose=MessagePurpose.TRANSACTIONAL, due_at=clock.now() + timedelta(1)),
    )
    # when released
    released = await messages.release_due()
    # then marketing is at its weekly cap; transactional has its own cap (1 a day: the first is sent)
    assert released == Released(sent=1, suppressed={"cap": 1})
    assert await state(member, "campaign:1") == (MessageStatus.SUPPRESSED, "cap")
    assert await state(member, "points_earned:1") == (MessageStatus.SENT, "")
    # and a day later the second transactional one goes (the first left the rolling day exactly now)
    clock.advance(timedelta(days=1))
    assert await messages.release_due() == Released(sent=1)


async def test_two_members_caps_are_their_own(db: str, clock: FrozenClock) -> None:
    # given a cap of 1 a day and two members with two messages each due now
    await policy(marketing_per_day=1)
    first, second = await new_members(2)
    await schedule(*(outgoing(m, f"campaign:{n}") for m in (first, second) for n in (1, 2)))
    # when released in one batch
    released = await messages.release_due()
    # then each member gets one
    assert released == Released(sent=2, suppressed={"cap": 2})
    assert await PushMessage.filter(status="sent").order_by("member_id").values_list("member_id", flat=True) == [
        first.id,
        second.id,
    ]


@pytest.mark.parametrize(
    ("due_local", "end_local", "end_utc"),
    [
        # Saturday before the spring change (CET, +1) → Sunday 29 March 08:00 CEST (+2)
        (datetime(2026, 3, 28, 22, 0), datetime(2026, 3, 29, 8, 0), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        # Saturday before the autumn change (CEST, +2) → Sunday 25 October 08:00 CET (+1)
        (datetime(2026, 10, 24, 22, 0), datetime(2026, 10, 25, 8, 0), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
        # after midnight, inside the night of the change
        (datetime(2026, 3, 29, 3, 30), datetime(2026, 3, 29, 8, 0), datetime(2026, 3, 29, 6, 0, tzinfo=UTC)),
        (datetime(2026, 10, 25, 2, 30), datetime(2026, 10, 25, 8, 0), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
    ],
)
async def test_quiet_hours_move_the_message_to_their_local_end_across_dst(
    db: str, clock: FrozenClock, due_local: datetime, end_local: datetime, end_utc: datetime
) -> None:
    # given quiet hours 21:00-08:00 and a Stockholm member's marketing message due inside them
    await policy(quiet_start=time(21, 0), quiet_end=time(8, 0))
    member = await new_member(timezone="Europe/Stockholm")
    due = due_local.replace(tzinfo=STOCKHOLM).astimezone(UTC)
    clock.set(due)
    await schedule(outgoing(member, "campaign:1", due_at=due))
    # when released
    released = await messages.release_due()
    # then it waits, still scheduled, until 08:00 local wall time of that morning (the new offset)
    assert released == Released(postponed=1)
    found = await message(member, "campaign:1")
    assert (found.status, found.due_at) == (MessageStatus.SCHEDULED, end_utc)
    assert found.due_at.astimezone(STOCKHOLM).replace(tzinfo=None) == end_local
    # and a second before the end nothing is released; at the end it is sent
    clock.set(end_utc - timedelta(seconds=1))
    assert await messages.release_due() == Released()
    clock.set(end_utc)
    assert await messages.release_due() == Released(sent=1)


async def test_quiet_hours_spare_urgent_transactional_messages_only(db: str, clock: FrozenClock) -> None:
    # given quiet hours 22:00-07:00 UTC, now 23:00
    await policy(quiet_start=time(22, 0), quiet_end=time(7, 0))
    clock.set(datetime(2026, 3, 2, 23, 0, tzinfo=UTC))
    member = await new_member()
    transactional = MessagePurpose.TRANSACTIONAL
    await schedule(
        outgoing(member, "voucher_expiring:1", purpose=transactional, urgent=True),
        outgoing(member, "points_earned:1", purpose=transactional),
        outgoing(member, "campaign:1", urgent=True),  # urgent marketing is still marketing
    )
    # when released
    released = await messages.release_due()
    # then only the urgent transactional one is sent now; the others wait until 07:00
    assert released == Released(sent=1, postponed=2)
    assert await state(member, "voucher_expiring:1") == (MessageStatus.SENT, "")
    waiting = await PushMessage.filter(status="scheduled").values_list("due_at", flat=True)
    assert waiting == [datetime(2026, 3, 3, 7, 0, tzinfo=UTC)] * 2


def test_quiet_until_edges() -> None:
    utc = ZoneInfo("UTC")
    night, morning = time(21, 0), time(8, 0)
    at = datetime(2026, 5, 5, tzinfo=UTC)
    # spanning midnight: start is inside, end is outside
    assert quiet_until(at.replace(hour=21), utc, night, morning) == datetime(2026, 5, 6, 8, 0, tzinfo=UTC)
    assert quiet_until(at.replace(hour=7, minute=59), utc, night, morning) == at.replace(hour=8)
    assert quiet_until(at.replace(hour=8), utc, night, morning) is None
    assert quiet_until(at.replace(hour=20, minute=59), utc, night, morning) is None
    # within one day (a siesta)
    assert quiet_until(at.replace(hour=13), utc, time(13, 0), time(15, 0)) == at.replace(hour=15)
    assert quiet_until(at.replace(hour=15), utc, time(13, 0), time(15, 0)) is None
    # none configured, or start == end
    assert quiet_until(at, utc, None, morning) is None
    assert quiet_until(at, utc, morning, morning) is None


async def test_an_unknown_timezone_is_treated_as_utc(db: str, clock: FrozenClock) -> None:
    # given quiet hours 11:00-13:00 and a member whose timezone is not a zone (now 12:00 UTC)
    await policy(quiet_start=time(11, 0), quiet_end=time(13, 0))
    member = await new_member(timezone="Mars/Olympus")
    await schedule(outgoing(member, "campaign:1"))
    # when released, then it waits until 13:00 UTC
    assert await messages.release_due() == Released(postponed=1)
    assert (await message(member, "campaign:1")).due_at == datetime(2026, 3, 2, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize("members", [3, 60])
async def test_a_release_batch_has_a_fixed_statement_budget(db: str, clock: FrozenClock, members: int) -> None:
    # given members with a device each, one message each, some suppressed, some postponed
    await policy(quiet_start=time(11, 0), quiet_end=time(13, 0))
    people = await new_members(members)
    for person in people:
        await add_devices(person, f"tok-{person.id}")
    await schedule(*(outgoing(p, "campaign:1", purpose=MessagePurpose.TRANSACTIONAL, urgent=True) for p in people))
    await schedule(outgoing(people[0], "expired:1", expires_at=clock.now()), outgoing(people[1], "quiet:1"))
    # when released
    with counted() as counter:
        released = await messages.release_due()
    # then the statements do not depend on the batch's size
    assert released == Released(sent=members, deliveries=members, postponed=1, suppressed={"expired": 1})
    statements = [k for k in kinds(counter.statements) if k.split()[0] not in ("BEGIN", "COMMIT")]
    assert statements == [
        "SELECT push_message",
        "SELECT push_policy",
        "SELECT member",
        "SELECT consent",
        "SELECT push_message",
        "SELECT device",
        "UPDATE push_message",  # suppressed: expired
        "UPDATE push_message",  # postponed
        "UPDATE push_message",  # sent
        "INSERT push_delivery",
    ]
