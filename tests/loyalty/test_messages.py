"""Scheduling push messages: one per member and occasion, whatever the number of runs; texts by locale."""

from __future__ import annotations

from datetime import timedelta

from tortoise import connections

from loyalty.clock import FrozenClock
from loyalty.messages import BODY_LIMIT, Outgoing, localised, schedule
from loyalty.models import MessagePurpose, MessageStatus, Program, PushMessage
from tests.loyalty.ledger_helpers import new_member


def _welcome(member_id: int, clock: FrozenClock, title: str = "Welcome") -> Outgoing:
    return Outgoing(
        member_id=member_id,
        occasion="welcome",
        purpose=MessagePurpose.MARKETING,
        title=title,
        body="b" * (BODY_LIMIT + 5),
        due_at=clock.now() + timedelta(minutes=10),
    )


async def test_a_second_run_of_a_producer_writes_nothing(program: Program, clock: FrozenClock) -> None:
    # given
    ann, bob = await new_member("uid-ann"), await new_member("uid-bob")
    conn = connections.get("default")
    await schedule(conn, [_welcome(ann.id, clock)], clock.now())

    # when: the producer runs again, now also for bob, with a changed text
    await schedule(conn, [_welcome(ann.id, clock, "Changed"), _welcome(bob.id, clock)], clock.now())

    # then: one message each; ann's is the first run's
    rows = await PushMessage.all().order_by("member_id").values_list("member_id", "title", "status", "due_at")
    due = clock.now() + timedelta(minutes=10)
    assert rows == [
        (ann.id, "Welcome", MessageStatus.SCHEDULED, due),
        (bob.id, "Welcome", MessageStatus.SCHEDULED, due),
    ]
    assert {len(b) for b in await PushMessage.all().values_list("body", flat=True)} == {BODY_LIMIT}


async def test_nothing_to_schedule_writes_nothing(program: Program, clock: FrozenClock) -> None:
    # when
    await schedule(connections.get("default"), [], clock.now())

    # then
    assert await PushMessage.all().count() == 0


def test_a_text_is_chosen_by_locale_then_language_then_default() -> None:
    texts = {"en": "Hello", "sv": "Hej"}
    assert localised(texts, "sv-SE", "en") == "Hej"
    assert localised(texts, "sv_FI", "en") == "Hej"
    assert localised(texts, "de-DE", "en") == "Hello"
    assert localised({"sv": "Hej"}, "de", "en") == "Hej"
    assert localised({}, "de", "en") == ""
