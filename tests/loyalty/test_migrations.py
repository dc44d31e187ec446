"""The migrated schema enforces what the models declare (every `unique=True` field has a unique index), and 0010's
outbox trigger wakes the worker on PostgreSQL and goes away with the migration."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from tortoise import Tortoise, connections
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.migrations.api import migrate as run_migrations
from tortoise.transactions import in_transaction

from loyalty import events
from loyalty.db import connect, dedicated_connection, disconnect, is_postgres, tortoise_config
from loyalty.models import LedgerEntry, OutboxEvent
from worker.wakeup import CHANNEL


async def _unique_columns(table: str) -> set[tuple[str, ...]]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT array_agg(a.attname ORDER BY k.n)::text[] AS columns FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE t.relname = $1 AND i.indisunique GROUP BY i.indexrelid",
            [table],
        )
        return {tuple(row["columns"]) for row in rows}
    indexes = await conn.execute_query_dict(f'PRAGMA index_list("{table}")')
    found: set[tuple[str, ...]] = set()
    for index in indexes:
        if index["unique"]:
            info = await conn.execute_query_dict(f'PRAGMA index_info("{index["name"]}")')
            found.add(tuple(column["name"] for column in sorted(info, key=lambda c: c["seqno"])))
    return found


async def test_every_unique_field_of_the_models_has_a_unique_index(db: str) -> None:
    # given every model's fields declared unique (foreign keys included: Tortoise's migration writer drops theirs)
    declared: list[tuple[str, str]] = []
    for model in Tortoise.apps["loyalty"].values():
        for name, field in model._meta.fields_map.items():
            if (
                field.pk
                or not getattr(field, "unique", False)
                or name not in model._meta.db_fields | model._meta.fk_fields
            ):
                continue
            column = field.source_field or name
            if isinstance(field, ForeignKeyFieldInstance):
                column = model._meta.fields_map[f"{name}_id"].source_field or f"{name}_id"
            declared.append((model._meta.db_table, column))

    # then the migrated database has a one-column unique index (or constraint) for each
    missing = [(table, column) for table, column in declared if (column,) not in await _unique_columns(table)]
    assert missing == []
    assert (LedgerEntry._meta.db_table, "reverses_id") in declared  # the check sees foreign keys


# --- the outbox's wake-up trigger (0010, PostgreSQL only) -------------------------------------------------------


async def _outbox_triggers() -> list[tuple[str, str, str, str]]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT trigger_name, event_manipulation, action_timing, action_orientation"
            " FROM information_schema.triggers WHERE event_object_table = 'outbox_event'"
        )
        return sorted(
            (r["trigger_name"], r["event_manipulation"], r["action_timing"], r["action_orientation"]) for r in rows
        )
    rows = await conn.execute_query_dict(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'outbox_event'"
    )
    return [(r["name"], "", "", "") for r in rows]


async def _notify_function_exists() -> bool:
    rows = await connections.get("default").execute_query_dict(
        "SELECT count(*) AS n FROM pg_proc WHERE proname = 'klubb_outbox_notify'"
    )
    return bool(rows[0]["n"])


async def test_outbox_inserts_notify_the_worker_once_per_statement_on_postgresql_only(db: str) -> None:
    # given the migrated database, then the outbox has its wake-up trigger on PostgreSQL (statement-level) only
    triggers = await _outbox_triggers()
    if not is_postgres(db):
        assert triggers == []  # SQLite has no NOTIFY: its worker polls
        return
    assert triggers == [("outbox_event_notify", "INSERT", "AFTER", "STATEMENT")]


@pytest.mark.postgres_only
async def test_outbox_notifications_arrive_at_commit_one_per_transaction_none_for_a_rollback(db: str) -> None:
    # given a connection listening on the worker's channel
    received: list[str] = []
    arrived = asyncio.Event()

    def notified(connection: object, pid: int, channel: str, payload: str) -> None:
        received.append(payload)
        arrived.set()

    listener = await dedicated_connection(db, application_name="test listener")
    try:
        await listener.add_listener(CHANNEL, notified)

        # when a transaction writes events in a batched INSERT and one more on its own, before and after its commit
        async with in_transaction() as conn:
            outbox = events.Outbox()
            for points in (1, 2, 3):
                outbox.add(events.POINTS_EARNED, member_id=1, payload={"points": points})
            await outbox.flush(conn)
            await events.emit(conn, events.POINTS_EARNED, member_id=1, payload={"points": 4})
            await asyncio.sleep(0.2)
            before_commit = list(received)
        await asyncio.wait_for(arrived.wait(), 5)
        await asyncio.sleep(0.2)  # time for a second notification, if one were sent
        at_commit = list(received)

        # and a transaction writing an event rolls back
        with contextlib.suppress(_Rollback):
            async with in_transaction() as conn:
                await events.emit(conn, events.POINTS_EARNED, member_id=1, payload={"points": 5})
                raise _Rollback
        await asyncio.sleep(0.3)
    finally:
        await listener.close()

    # then nothing arrived before the commit, one empty notification at it (four rows), none for the rollback
    assert (before_commit, at_commit, received) == ([], [""], [""])
    assert await OutboxEvent.all().count() == 4


class _Rollback(Exception):
    pass


@pytest.mark.postgres_only
async def test_migration_0010_down_drops_the_outbox_trigger_and_up_restores_it(db: str) -> None:
    # given the migrated database with its trigger and function
    assert await _outbox_triggers() == [("outbox_event_notify", "INSERT", "AFTER", "STATEMENT")]
    assert await _notify_function_exists()

    # when migrated down to 0009
    await disconnect()
    await run_migrations(config=tortoise_config(db), target="loyalty.0009_unique_foreign_keys")
    await disconnect()
    await connect(db)
    down = (await _outbox_triggers(), await _notify_function_exists())

    # and up again
    await disconnect()
    await run_migrations(config=tortoise_config(db))
    await disconnect()
    await connect(db)

    # then down removed both and up made them again
    assert down == ([], False)
    assert await _outbox_triggers() == [("outbox_event_notify", "INSERT", "AFTER", "STATEMENT")]
    assert await _notify_function_exists()
