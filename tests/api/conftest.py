"""CLI tests: plain (not async) tests, since the commands run their own event loop with `asyncio.run`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tortoise.backends.base.executor import EXECUTOR_CACHE
from typer.testing import CliRunner

from api import cli
from api.settings import Settings


@pytest.fixture(scope="session")
def migrated_cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file `klubb migrate` made, once per run: each test copies it (migrating from scratch each time cost
    seconds per test)."""
    template = tmp_path_factory.mktemp("cli-template") / "cli.sqlite3"
    settings = Settings(database_url=f"sqlite://{template}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "get_settings", lambda: settings)
        EXECUTOR_CACHE.clear()
        result = CliRunner().invoke(cli.app, ["migrate"])
        EXECUTOR_CACHE.clear()
    assert result.exit_code == 0, result.output
    return template


@pytest.fixture
def cli_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_password_hashing: None, migrated_cli_template: Path
) -> Iterator[None]:
    """A migrated SQLite file of its own: the CLI connects and disconnects the ORM itself."""
    database = tmp_path / "cli.sqlite3"
    shutil.copyfile(migrated_cli_template, database)
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url=f"sqlite://{database}"))
    EXECUTOR_CACHE.clear()  # Tortoise caches SQL per connection name, and other tests may have run PostgreSQL's
    yield
    EXECUTOR_CACHE.clear()
