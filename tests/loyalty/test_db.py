"""The PostgreSQL pool gives connections back without asyncpg's reset query (`loyalty.db.keep_session`), safely;
connections of their own (`dedicated_connection`, the worker's LISTEN) are made from the same URL."""

from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty import db as database
from loyalty.members import member_rows
from loyalty.models import Member, Program
from tests.loyalty.ledger_helpers import new_member


def test_the_postgres_config_keeps_released_sessions_and_sqlite_is_as_given() -> None:
    # when the config is made for each engine
    postgres = database.tortoise_config("postgres://klubb@db.example:5433/klubb?maxsize=9")["connections"]
    reset = database.tortoise_config("postgres://klubb@db.example/klubb", reset_released_sessions=True)
    sqlite = database.tortoise_config("sqlite://var/klubb.sqlite3")["connections"]

    # then PostgreSQL's pool resets with `keep_session`, the URL's own parameters kept; SQLite is untouched
    assert postgres == {
        "default": {
            "engine": "tortoise.backends.asyncpg",
            "credentials": {
                "host": "db.example",
                "port": 5433,
                "user": "klubb",
                "password": None,
                "database": "klubb",
                "maxsize": "9",  # as Tortoise reads a URL (it converts it later)
                "reset": database.keep_session,
            },
        }
    }
    assert reset["connections"] == {"default": "postgres://klubb@db.example/klubb"}
    assert sqlite == {"default": "sqlite://var/klubb.sqlite3"}


def _postgres_only(url: str) -> None:
    if not database.is_postgres(url):
        pytest.skip("the pool's reset is PostgreSQL's")


async def _session(connection: asyncpg.Connection) -> tuple[Any, ...]:
    row = await connection.fetchrow(
        "SELECT current_setting('statement_timeout'), current_setting('TimeZone'),"
        " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()),"
        " (SELECT count(*) FROM pg_cursors)"
    )
    assert row is not None
    return tuple(row)


async def test_a_released_connection_comes_back_as_fresh_as_the_reset_query_would_leave_it(db: str) -> None:
    _postgres_only(db)
    pool: asyncpg.Pool = connections.get("default")._pool  # type: ignore[attr-defined]
    assert pool._reset is database.keep_session  # the pool was made with the hook
    async with pool.acquire() as connection:
        fresh = await _session(connection)

    # when a transaction is left open on a connection given back, and a transaction fails
    connection = await pool.acquire()
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute("SELECT 1")
    await pool.release(connection)

    async def fail_in_a_transaction() -> None:
        async with in_transaction() as conn:
            await conn.execute_query("SELECT 1")
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await fail_in_a_transaction()

    # then every pooled connection is outside any transaction (asyncpg rolled back before the hook), with the
    # session settings, locks and cursors a fresh one has
    held = [await pool.acquire() for _ in range(pool.get_size())]
    try:
        assert [c.is_in_transaction() for c in held] == [False] * len(held)
        assert [await _session(c) for c in held] == [fresh] * len(held)
    finally:
        for c in held:
            await pool.release(c)


async def test_a_hot_read_is_one_round_trip_no_reset_query_after_it(
    program: Program, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_only(db)
    # given a member, and asyncpg's connection reset watched
    member: Member = await new_member("uid-pool")
    resets: list[object] = []
    original = asyncpg.connection.Connection.reset

    async def reset(self: asyncpg.Connection, **options: Any) -> None:
        resets.append(self)
        await original(self, **options)

    monkeypatch.setattr(asyncpg.connection.Connection, "reset", reset)

    # when their row is read a few times outside a transaction
    for _ in range(3):
        rows = await member_rows([member.id], program, clock.now())

    # then each connection went back to the pool without the reset query's round trip
    assert rows[member.id].member_number == member.member_number
    assert resets == []


@pytest.mark.postgres_only
async def test_a_dedicated_connection_reaches_the_pools_database_with_the_urls_options_and_its_own_name(
    db: str,
) -> None:
    # given the database's URL with pool-only options and a schema, as a deployment may write it
    url = f"{db}{'&' if '?' in db else '?'}minsize=2&maxsize=3&schema=public"

    # when a dedicated connection is made from it
    connection = await database.dedicated_connection(url, application_name="klubb test")
    try:
        row = await connection.fetchrow(
            "SELECT current_database() AS db, current_setting('application_name') AS name,"
            " current_setting('search_path') AS path"
        )
        pooled = await connections.get("default").execute_query_dict("SELECT current_database() AS db")
    finally:
        await connection.close()

    # then it is on the pool's database, named, with the URL's schema; the pool's options were left to the pool
    assert (row["db"], row["name"], row["path"]) == (pooled[0]["db"], "klubb test", "public")


async def test_a_dedicated_connection_needs_postgresql() -> None:
    # when one is asked for on SQLite, then it is refused with the reason
    with pytest.raises(ValueError, match=r"^a dedicated connection needs a PostgreSQL URL$"):
        await database.dedicated_connection("sqlite://var/klubb.sqlite3", application_name="x")
