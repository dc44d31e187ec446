"""Test fixtures: every database test runs on SQLite and, when KLUBB_TEST_POSTGRES_URL is set, on PostgreSQL."""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from api.auth.tokens import TokenService
from api.settings import Environment, Settings
from loyalty import clock as business_clock
from loyalty import program as program_config
from loyalty import staff
from loyalty.db import connect, disconnect, migrate
from loyalty.models import Program
from loyalty.program import apply_program_config, forget_cached_program
from tests.invariants import assert_consent_cache, assert_ledger_invariants
from wallet.credentials import development_credentials

POSTGRES_URL = os.environ.get("KLUBB_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("KLUBB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
_migrated: set[str] = set()

TEST_PROGRAM: dict[str, Any] = {
    "program": {
        "name": "Test Club",
        "currency": "EUR",
        "earn_rate": 1,
        "pending_days": 14,
        "expiry_days": 365,
        "expiring_soon_days": 30,
        "tier_metric": "points",
        "tier_period": "calendar_year",
    },
    "tiers": [
        {"name": "Member", "threshold": 0, "multiplier": 1, "benefits": ["Member prices"]},
        {"name": "Silver", "threshold": 500, "multiplier": 1.25, "benefits": ["Free delivery"]},
        {"name": "Gold", "threshold": 2000, "multiplier": 1.5, "benefits": ["Early access", "Birthday gift"]},
    ],
}


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite://{tmp_path_factory.mktemp('db') / 'klubb.sqlite3'}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    if request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip("PostgreSQL run skipped: KLUBB_TEST_POSTGRES_URL is not set (.ci/run sets it)")
        return POSTGRES_URL
    if request.node.get_closest_marker("postgres_only"):
        pytest.skip("needs real concurrent connections: PostgreSQL only")
    return sqlite_url


async def _reset_schema(url: str) -> None:
    if url == POSTGRES_URL:
        conn = connections.get("default")
        await conn.execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    else:
        Path(url.removeprefix("sqlite://")).unlink(missing_ok=True)


async def _truncate_all(url: str) -> None:
    conn = connections.get("default")
    tables = [model._meta.db_table for model in Tortoise.apps["loyalty"].values()]
    if url == POSTGRES_URL:
        await conn.execute_script(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE;")
    else:
        await conn.execute_script(
            "PRAGMA foreign_keys=OFF;"
            + "".join(f"DELETE FROM {t};" for t in tables)
            + "DELETE FROM sqlite_sequence;PRAGMA foreign_keys=ON;"
        )


WALLET_DEV_DIRECTORY = "KLUBB_WALLET_DEV_DIRECTORY"
WALLET_TEST_SECRET = "wallet-test-secret-" + "x" * 32


@pytest.fixture(scope="session")
def wallet_dev_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One development signing chain for the whole session (RSA keys take a while to make)."""
    directory = tmp_path_factory.mktemp("wallet-dev")
    development_credentials(directory)
    return directory


@pytest.fixture(autouse=True)
def wallet_in_tmp(monkeypatch: pytest.MonkeyPatch, wallet_dev_directory: Path) -> None:
    """Every app a test builds signs passes with the session's development chain, never one in the repo's var/."""
    monkeypatch.setenv(WALLET_DEV_DIRECTORY, str(wallet_dev_directory))


@pytest.fixture(autouse=True)
def steady_program_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program's read cache lasts the whole test (every configuration change and every test still drop it): on a
    slow machine its few seconds of wall-clock life would otherwise add statements to the SQL budgets."""
    monkeypatch.setattr(program_config, "_CACHE_SECONDS", math.inf)


@pytest.fixture
def clock() -> Iterator[business_clock.FrozenClock]:
    """A frozen business clock at START; tests move it with `clock.advance(...)`."""
    frozen = business_clock.FrozenClock(START)
    previous = business_clock.use_clock(frozen)
    yield frozen
    business_clock.use_clock(previous)


@pytest.fixture
async def db(database_url: str, clock: business_clock.FrozenClock) -> AsyncIterator[str]:
    """A migrated, empty database; after the test the ledger invariants and the consent cache are checked."""
    if database_url not in _migrated:
        await connect(database_url)
        await _reset_schema(database_url)
        await disconnect()
        EXECUTOR_CACHE.clear()
        await migrate(database_url)
        await disconnect()
        EXECUTOR_CACHE.clear()
        _migrated.add(database_url)
    await connect(database_url)
    try:
        await _truncate_all(database_url)
        forget_cached_program()
        yield database_url
        await assert_ledger_invariants()
        await assert_consent_cache()
    finally:
        forget_cached_program()
        await disconnect()
        # Tortoise caches SQL per connection name; both engines use "default".
        EXECUTOR_CACHE.clear()


@pytest.fixture
async def program(db: str) -> Program:
    """The test program: EUR, 1 point per euro, 14 pending days, 365-day expiry, three tiers."""
    return await apply_program_config(TEST_PROGRAM)


def app_settings(db: str, tmp_path: Path, environment: Environment = Environment.TEST) -> Settings:
    """Settings for an app on the test database with its own signing key; valid in production mode too."""
    key = tmp_path / "jwt.pem"
    TokenService(Settings(jwt_dev_key_file=str(key)))  # writes a key usable in any environment
    wallet = Path(os.environ[WALLET_DEV_DIRECTORY])  # the development chain, as configured credentials
    return Settings(
        environment=environment,
        database_url=db,
        jwt_private_key_file=str(key),
        public_url="https://klubb.example.com",
        device_hash_secret="device-hash-secret-for-the-tests!",
        embedded_worker=False,
        apple_pass_certificate_file=str(wallet / "pass.pem"),
        apple_pass_key_file=str(wallet / "pass-key.pem"),
        apple_wwdr_certificate_file=str(wallet / "wwdr.pem"),
        wallet_secret=WALLET_TEST_SECRET,
        google_wallet_enabled=False,  # tests/api/test_google_wallet.py turns it on with its own credentials
        redis_url=REDIS_URL,  # production refuses live updates without it when the worker runs apart
        push_enabled=False,  # tests/push/ send to the fake FCM with their own config
    )


@pytest.fixture
def fast_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with minimal cost: the tests are about the rules, not the hash's strength."""
    monkeypatch.setattr(staff, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per skip or xfail reason with its count (`make test` runs with `-rfE`: failures stay in full).

    Without PostgreSQL every database test skips its postgres half; listing each of them (`-rs`) buried the
    failures under hundreds of identical lines.
    """
    for outcome in ("skipped", "xfailed"):
        counts: dict[str, int] = {}
        for report in terminalreporter.stats.get(outcome, []):
            if outcome == "skipped" and isinstance(report.longrepr, tuple):
                reason = str(report.longrepr[2]).removeprefix("Skipped: ")
            else:
                reason = str(getattr(report, "wasxfail", "") or "no reason given")
            counts[reason] = counts.get(reason, 0) + 1
        if counts:
            terminalreporter.section(f"{outcome} by reason", sep="-")
            for reason, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
                terminalreporter.line(f"{count:6d} {reason}")
