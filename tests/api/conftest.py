"""CLI tests: plain (not async) tests, since the commands run their own event loop with `asyncio.run`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE
from typer.testing import CliRunner

from api import cli
from api.settings import Settings


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None) -> Iterator[None]:
    """A migrated SQLite file of its own: the CLI connects and disconnects the ORM itself."""
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=f"sqlite://{tmp_path / 'cli.sqlite3'}"))
    EXECUTOR_CACHE.clear()  # Tortoise caches SQL per connection name, and other tests may have run PostgreSQL's
    assert CliRunner().invoke(cli.app, ["migrate"]).exit_code == 0
    yield
    EXECUTOR_CACHE.clear()
