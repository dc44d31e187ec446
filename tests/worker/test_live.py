"""The live-updates consumer: notices queued inside the dispatch transaction, published after it commits."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest

from loyalty import events
from loyalty.clock import FrozenClock
from loyalty.live import Change, MemberNotice
from loyalty.members import enroll_member
from loyalty.models import OutboxEvent, Program
from tests.loyalty.ledger_helpers import purchase
from worker.dispatch import dispatch_pending
from worker.live import LiveConsumer
from worker.runner import drain_once


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.published: list[list[MemberNotice]] = []
        self.fail = fail

    async def publish(self, notices: Sequence[MemberNotice]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.published.append(list(notices))


async def test_notices_are_published_after_the_dispatch_commits(program: Program, clock: FrozenClock) -> None:
    # given two members' purchases in the outbox
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    await purchase(anna.id, "R1", 1_000, clock.now())
    await purchase(bo.id, "R2", 60_000, clock.now())
    await purchase(anna.id, "R3", 1_000, clock.now())
    recorder = Recorder()
    consumer = LiveConsumer(recorder)

    # when they are dispatched: nothing is published yet (the transaction may still be open)
    assert await dispatch_pending([consumer]) == await OutboxEvent.all().count()
    assert recorder.published == []

    # then deliver_due publishes one notice per member, merged
    assert await consumer.deliver_due(None) == 2
    assert recorder.published == [
        [
            MemberNotice(anna.id, frozenset({Change.POINTS})),
            MemberNotice(bo.id, frozenset({Change.POINTS, Change.TIER})),
        ]
    ]
    # and nothing twice
    assert await consumer.deliver_due(None) == 0


async def test_a_broker_failure_drops_the_notices_with_a_warning(
    program: Program, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    anna, _ = await enroll_member("uid-anna")
    await purchase(anna.id, "R1", 1_000, clock.now())
    consumer = LiveConsumer(Recorder(fail=True))

    with caplog.at_level(logging.WARNING, logger="klubb.live"):
        assert await drain_once([consumer]) == 0

    assert [r.getMessage() for r in caplog.records if r.name == "klubb.live"] == [
        "live updates: 1 notices not published: ConnectionError: broker down"
    ]
    assert consumer._queued == {}  # lost, not retried (the app reads everything when it reconnects)


async def test_events_without_a_live_view_publish_nothing(program: Program) -> None:
    anna, _ = await enroll_member("uid-anna")  # member.enrolled: not a live change
    recorder = Recorder()
    consumer = LiveConsumer(recorder)

    await drain_once([consumer])

    assert await OutboxEvent.filter(type=events.MEMBER_ENROLLED, member_id=anna.id).count() == 1
    assert recorder.published == []
