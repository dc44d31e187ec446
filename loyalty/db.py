"""Database configuration for Tortoise ORM (one app, `loyalty`, with built-in migrations)."""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import sqlite3
from typing import Any

import asyncpg
from asyncpg.exceptions import InterfaceError, InternalClientError
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError

DEFAULT_DATABASE_URL = "sqlite://klubb.sqlite3"

# Tortoise's SQLite driver adapts dates and datetimes but not times (`TimeField`: the push policy's quiet hours);
# stored as ISO text, which the TimeField parses back when it reads them.
sqlite3.register_adapter(datetime.time, lambda value: value.isoformat())


def is_postgres(database_url: str) -> bool:
    """True for PostgreSQL URLs (the engine with real row locks)."""
    return database_url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://"))


async def keep_session(connection: Any) -> None:
    """The pool's reset of a connection given back to it, instead of asyncpg's reset query: nothing more.

    asyncpg resets every released connection with one more round trip (`SELECT pg_advisory_unlock_all(); CLOSE ALL;
    UNLISTEN *; RESET ALL;`), i.e. one per statement Tortoise runs outside a transaction, which doubles the round
    trips of a hot read. klubb leaves nothing of that behind in a session: no session-level advisory locks (row locks
    and `SKIP LOCKED` only), no cursors, no LISTEN on a pooled connection (subscriptions fan out through Redis or
    in-process; the worker's LISTEN holds a connection of its own, `dedicated_connection`), no `SET`
    (session settings are given at connect, `server_settings`, and stay). What a released connection could still
    carry is an open transaction, and asyncpg rolls that back before this hook runs (`Connection._reset`), as it
    clears the connection's listeners. tests/loyalty/test_db.py checks that the pool keeps this hook and that a
    connection's session state is as fresh as asyncpg's reset would leave it for everything klubb does.
    """


def tortoise_config(database_url: str, *, reset_released_sessions: bool = False) -> dict[str, Any]:
    """The Tortoise config for `database_url` (``sqlite://path`` or ``postgres://user@host/db``).

    On PostgreSQL, pooled connections go back to the pool without asyncpg's reset query (`keep_session`) unless
    `reset_released_sessions` (the bench measures both).
    """
    connection: str | dict[str, Any] = database_url
    if is_postgres(database_url) and not reset_released_sessions:
        expanded = expand_db_url(database_url)
        if expanded["engine"] == "tortoise.backends.asyncpg":  # the driver the hook is for
            expanded["credentials"]["reset"] = keep_session
            connection = expanded
    return {
        "connections": {"default": connection},
        "apps": {
            "loyalty": {
                "models": ["loyalty.models"],
                "default_connection": "default",
                "migrations": "loyalty.migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# Read by the `tortoise` CLI (`tortoise makemigrations`), see [tool.tortoise] in pyproject.toml.
TORTOISE_ORM = tortoise_config(os.environ.get("KLUBB_DATABASE_URL", DEFAULT_DATABASE_URL))


# SQLSTATE classes and codes that mean "the database is not there right now", not "this statement was wrong":
# connection exceptions (08xxx), administrator/crash shutdown and "cannot connect now" during a restart (57P01-03),
# too many connections (53300).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# asyncpg's own (client-side) errors for a connection that died under it; no SQLSTATE of their own. When PostgreSQL
# restarts it sends each idle connection a FATAL error before closing it; asyncpg, expecting nothing, puts the
# connection's protocol in its error-consuming state (2) until the close arrives. A statement that takes the
# connection from the pool in between fails with "cannot switch to state N; another operation (2) is in progress"
# (no second task is involved), and one whose connection the pool reclaims on the close with "released back to the
# pool". Both mean "the server dropped us", as `tests/api/test_database_restart.py` shows.
_UNAVAILABLE_INTERFACE_MESSAGES = (
    "connection is closed",
    "connection was closed",
    "the server closed",
    "another operation (2) is in progress",
    "connection has been released back to the pool",
)


def database_unavailable(error: BaseException) -> bool:
    """True when `error` (or what caused it) says the database cannot be reached or is restarting: a fault worth
    retrying in a moment (the API's 503), not a bug. Tortoise re-raises driver errors under its own types, so the
    whole cause chain is checked."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):  # refused, reset, unreachable, DNS failure, connect timeout
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(current, DBConnectionError):
            return True
        if isinstance(current, InterfaceError | InternalClientError) and any(
            text in str(current) for text in _UNAVAILABLE_INTERFACE_MESSAGES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


_transaction_start_fixed = False


def _undo_failed_transaction_start() -> None:
    """Make a pooled transaction whose start fails leave nothing behind (Tortoise 1.1.9 leaves two things).

    `TransactionContextPooled.__aenter__` takes a pooled connection and makes the transaction the current task's
    connection, then sends BEGIN. If BEGIN fails (PostgreSQL restarted and the pooled connection is dead but not yet
    seen closed, or the task is cancelled), `__aexit__` never runs: the connection is never given back to the pool, and
    the task keeps the dead transaction as its connection. Every later statement of that task (a job's loop, the
    worker) then runs on that connection: "connection has been released back to the pool", or asyncpg's "another
    operation is in progress" once the pool hands the connection to another task. Undo both, as `__aexit__` would.
    """
    from tortoise import connections
    from tortoise.backends.base.client import TransactionContextPooled

    global _transaction_start_fixed
    if _transaction_start_fixed:
        return
    start = TransactionContextPooled.__aenter__

    async def enter(self: TransactionContextPooled) -> Any:
        try:
            return await start(self)
        except BaseException:
            token = getattr(self, "token", None)  # unset if the failure came before it
            if token is not None:
                connections.reset(token)
            pool, connection = self.client._parent._pool, self.client._connection
            if pool is not None and connection is not None:
                with contextlib.suppress(Exception):  # already released when the driver saw it close
                    await pool.release(connection)
            self.client._connection = None
            raise

    setattr(TransactionContextPooled, "__aenter__", enter)  # noqa: B010 (mypy refuses a method assignment)
    _transaction_start_fixed = True


# What a Tortoise URL's query may carry that is the pool's (or the event loop), not a connection's.
_POOL_ONLY = frozenset({"minsize", "maxsize", "max_queries", "max_inactive_connection_lifetime", "loop"})


async def dedicated_connection(database_url: str, *, application_name: str) -> asyncpg.Connection:
    """A PostgreSQL connection of its own, outside Tortoise's pool, with the URL's credentials and options (the same
    parsing as the pool's, so both reach the same server and database); named in `pg_stat_activity`.

    For session state a pooled connection must not carry (`keep_session`): the outbox worker's LISTEN.
    """
    if not is_postgres(database_url):
        raise ValueError("a dedicated connection needs a PostgreSQL URL")
    credentials = dict(expand_db_url(database_url)["credentials"])
    server_settings = dict(credentials.pop("server_settings", None) or {})
    schema = credentials.pop("schema", None)
    if schema:
        server_settings["search_path"] = schema
    credentials.pop("application_name", None)
    server_settings["application_name"] = application_name
    accepted = inspect.signature(asyncpg.connect).parameters
    options = {k: v for k, v in credentials.items() if k in accepted and k not in _POOL_ONLY}
    return await asyncpg.connect(**options, server_settings=server_settings)


async def connect(database_url: str, *, reset_released_sessions: bool = False) -> None:
    """Initialize Tortoise for this process (visible to every task: the server's lifespan runs apart)."""
    from tortoise import Tortoise

    _undo_failed_transaction_start()
    config = tortoise_config(database_url, reset_released_sessions=reset_released_sessions)
    await Tortoise.init(config=config, _enable_global_fallback=True)


async def ping() -> None:
    """One round trip to the database (the readiness check); raises if it cannot be reached."""
    from tortoise import connections

    await connections.get("default").execute_query("SELECT 1")


async def disconnect() -> None:
    """Close this process's database connections."""
    from tortoise import Tortoise

    await Tortoise.close_connections()


async def migrate(database_url: str) -> None:
    """Apply the schema migrations in `loyalty/migrations` to the database."""
    from tortoise import Tortoise
    from tortoise.migrations.api import migrate as run_migrations

    try:
        await run_migrations(config=tortoise_config(database_url))
    finally:
        # Tortoise's migrate leaves its connections open; an open aiosqlite thread keeps the process alive.
        await Tortoise.close_connections()
