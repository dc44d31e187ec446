"""What one `memberUpdated` message reads: the member's state, fresh, in one statement however long the history."""

from __future__ import annotations

from datetime import timedelta

from loyalty.clock import FrozenClock
from loyalty.live import Change
from loyalty.models import Member
from loyalty.program import cached_program
from schema.subscriptions.member_updated import MemberChange, member_update
from tests.loyalty.ledger_helpers import purchase
from tests.schema.conftest import SQLCounter


async def test_a_message_reads_the_member_in_one_statement_however_long_the_history(
    anna: Member, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    await cached_program()  # the program is cached (as in a serving process)
    for count in (1, 20):
        # given a history of `count` purchases
        for n in range(count):
            await purchase(anna.id, f"R{count}-{n}", 1_000, clock.now())
        sql_counter.statements.clear()

        # when a message is made
        update = await member_update(anna.id, frozenset({Change.TIER, Change.POINTS}))

        # then it read one statement, and says what changed in the declared order
        assert len(sql_counter.statements) == 1, sql_counter.statements
        assert update is not None
        assert update.changes == [MemberChange.POINTS, MemberChange.TIER]


async def test_points_that_matured_show_as_available(anna: Member, clock: FrozenClock) -> None:
    # given a purchase whose return window has passed
    await purchase(anna.id, "R1", 1_000, clock.now())
    clock.advance(timedelta(days=15))

    # when a message is made, the lot has settled
    update = await member_update(anna.id, frozenset())

    assert update is not None
    assert (update.points.available, update.points.pending, update.points.lifetime_earned) == (10, 0, 10)


async def test_a_member_that_no_longer_exists_gives_no_message(anna: Member) -> None:
    assert await member_update(anna.id + 1000, frozenset()) is None
