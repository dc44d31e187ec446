"""The inbox's reads on a large inbox (not a timed test): EXPLAIN ANALYZE of the first page and of a page 5,000
messages deep, and the time per page and per unread count, for one member with `--messages` messages among
`--members` members as many each.

    .venv/bin/python -m bench.inbox_reads --database-url postgres://postgres@127.0.0.1:5432/bench_inbox

The database must be migrated and have no members (it writes them, and deletes them at the end). A tenth of the
messages are suppressed, a third expired; all sent a minute apart.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise import connections

from loyalty import inbox, sql
from loyalty.db import connect, disconnect
from loyalty.members import enroll_member
from loyalty.models import Member, MessagePurpose, MessageStatus, PushMessage

NOW = datetime(2026, 12, 4, tzinfo=UTC)


async def _seed(members: int, messages: int) -> list[Member]:
    enrolled = [(await enroll_member(f"bench-inbox-{n}"))[0] for n in range(members)]
    for member in enrolled:
        rows = [
            PushMessage(
                member_id=member.id,
                occasion=f"bench:{k}",
                purpose=MessagePurpose.MARKETING,
                title="Title",
                body="Body",
                status=MessageStatus.SENT if k % 10 else MessageStatus.SUPPRESSED,
                due_at=NOW,
                created_at=NOW,
                sent_at=NOW - timedelta(minutes=k),
                expires_at=NOW + timedelta(days=1) if k % 3 else NOW - timedelta(days=1),
            )
            for k in range(messages)
        ]
        await PushMessage.bulk_create(rows, batch_size=2000)
    return enrolled


async def _measure(name: str, statement: sql.Rows[Any], params: list[Any], runs: int) -> None:
    conn = connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    text = sql._engine_sql(statement.text, 0, postgres)
    if postgres:
        plan = await conn.execute_query_dict("EXPLAIN (ANALYZE, BUFFERS) " + text, params)
        print(f"{name}:\n" + "\n".join("    " + row["QUERY PLAN"] for row in plan))
    started = time.perf_counter()
    for _ in range(runs):
        await sql.fetch_rows(statement, params)
    print(f"{name}: {(time.perf_counter() - started) / runs * 1000:.2f} ms per page ({runs} runs)")


async def main(database_url: str, members: int, messages: int, runs: int) -> None:
    await connect(database_url)
    try:
        if await Member.exists():
            raise SystemExit("the database has members: use an empty (migrated) one")
        enrolled = await _seed(members, messages)
        conn = connections.get("default")
        if conn.capabilities.dialect == "postgres":
            await conn.execute_script('ANALYZE "push_message"')
        target = enrolled[0].id
        deep = await PushMessage.filter(member_id=target, occasion=f"bench:{messages // 2 + 1}").first()
        assert deep is not None
        live = [target, MessageStatus.SENT.value, NOW]
        await _measure("first page", inbox._PAGE, [*live, 21], runs)
        after = [deep.id, target, deep.id, target]
        await _measure(f"page after #{messages // 2 + 1}", inbox._PAGE_AFTER, [*live, *after, 21], runs)
        started = time.perf_counter()
        for _ in range(runs):
            await inbox.unread_count(target, NOW)
        print(f"unread count: {(time.perf_counter() - started) / runs * 1000:.2f} ms ({runs} runs)")
    finally:
        await Member.filter(firebase_uid__startswith="bench-inbox-").delete()
        await disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--members", type=int, default=21)
    parser.add_argument("--messages", type=int, default=10_000, help="per member")
    parser.add_argument("--runs", type=int, default=200)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.database_url, arguments.members, arguments.messages, arguments.runs))
