"""A campaign's due rows share one due time: claiming a batch of them must walk the (status, time) index, not sort
every due row per batch (a tie-break on id did, on PostgreSQL: 43 to 58 ms a batch at 33,000 to 50,000 rows,
bench/README.md "A push campaign end to end")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tortoise import connections

from loyalty.clock import FrozenClock
from loyalty.messages import release_due
from loyalty.models import Device, MessagePurpose, PushPolicy
from push.consumer import claim_due
from tests.conftest import START
from tests.push.helpers import new_members, outgoing, schedule


class _Statements(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.sent: list[tuple[str, list[Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple) and len(record.args) == 2 and isinstance(record.args[0], str):
            self.sent.append((record.args[0], list(record.args[1] or [])))


async def _plan_of_claim(table: str, work: Callable[[], Awaitable[Any]]) -> str:
    """The plan PostgreSQL chooses for the `SELECT … FOR UPDATE SKIP LOCKED` that `work` sends on `table`."""
    logger, handler = logging.getLogger("tortoise.db_client"), _Statements()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        await work()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    [(query, values)] = [
        (q, v) for q, v in handler.sent if q.startswith("SELECT") and f'FROM "{table}"' in q and "SKIP LOCKED" in q
    ]
    conn = connections.get("default")
    await conn.execute_script(f'ANALYZE "{table}"')
    rows = await conn.execute_query_dict(f"EXPLAIN {query}", values)
    return "\n".join(str(row["QUERY PLAN"]) for row in rows)


@pytest.mark.postgres_only
async def test_a_campaigns_due_messages_and_deliveries_are_claimed_through_their_index(
    db: str, clock: FrozenClock
) -> None:
    # given 3,000 members with a device each and a message each, all due at one time
    await PushPolicy.create(transactional_per_day=None, updated_at=START)
    members = await new_members(3000)
    await Device.bulk_create(
        [Device(member_id=m.id, token=f"tok-{m.id}", platform="android", created_at=START, last_seen_at=START)
         for m in members],
        batch_size=1000,
    )  # fmt: skip
    await schedule(*(outgoing(m, "campaign:1", purpose=MessagePurpose.TRANSACTIONAL) for m in members))

    # when a batch of messages is released, then all of them, then a batch of deliveries is leased
    release_plan = await _plan_of_claim("push_message", lambda: release_due(100))
    await release_due(5000)
    lease_plan = await _plan_of_claim("push_delivery", lambda: claim_due(100, 60.0))

    # then neither sorts the due rows: each reads the first of them from its index
    assert "Sort" not in release_plan, release_plan
    assert "Index Scan" in release_plan, release_plan
    assert "Sort" not in lease_plan, lease_plan
    assert "Index Scan" in lease_plan, lease_plan
