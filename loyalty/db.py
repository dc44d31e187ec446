"""Database configuration for Tortoise ORM (one app, `loyalty`, with built-in migrations)."""

from __future__ import annotations

import os
from typing import Any

DEFAULT_DATABASE_URL = "sqlite://klubb.sqlite3"


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The Tortoise config for `database_url` (``sqlite://path`` or ``postgres://user@host/db``)."""
    return {
        "connections": {"default": database_url},
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


def is_postgres(database_url: str) -> bool:
    """True for PostgreSQL URLs (the engine with real row locks)."""
    return database_url.startswith(("postgres://", "postgresql://", "asyncpg://", "psycopg://"))


async def connect(database_url: str) -> None:
    """Initialize Tortoise for this process (visible to every task: the server's lifespan runs apart)."""
    from tortoise import Tortoise

    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)


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
