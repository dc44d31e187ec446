"""The worker's own config, and how the composition root builds it from the service settings."""

from api.settings import Settings
from worker.config import WorkerConfig


def test_worker_config_takes_the_outbox_settings() -> None:
    # Given settings with every outbox knob changed from its default
    settings = Settings(webhook_timeout_seconds=3.5, webhook_retry_hours=6, worker_lease_seconds=90.0)

    # When the composition root builds the worker's config, then it carries exactly those
    assert settings.worker_config() == WorkerConfig(
        webhook_timeout_seconds=3.5, webhook_retry_hours=6, lease_seconds=90.0
    )


def test_worker_listens_on_postgresql_unless_turned_off() -> None:
    # Given the same settings on SQLite, on PostgreSQL, and on PostgreSQL with listening turned off
    postgres = "postgres://klubb@db.example/klubb"
    urls = [
        Settings(database_url="sqlite://klubb.sqlite3").worker_config().listen_url,
        Settings(database_url=postgres).worker_config().listen_url,
        Settings(database_url=postgres, worker_listen=False).worker_config().listen_url,
    ]

    # Then only PostgreSQL with listening on (the default) gives the worker a URL to LISTEN on
    assert urls == [None, postgres, None]


def test_claim_lease_outlives_one_attempt() -> None:
    # Given leases asked for below, at and above the attempt timeout plus one second
    def lease(asked: float) -> float:
        config = WorkerConfig(webhook_timeout_seconds=10.0, webhook_retry_hours=24, lease_seconds=asked)
        return config.claim_lease_seconds

    # Then the claim lease is never shorter than timeout + 1 s, and otherwise what was asked
    assert [lease(5.0), lease(11.0), lease(11.5), lease(60.0)] == [11.0, 11.0, 11.5, 60.0]
