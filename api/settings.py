"""Service settings, read from KLUBB_* environment variables (see the README's configuration table).

Only `api` (the composition root) reads them. A package below it declares what it needs as a small frozen config of
its own and gets it from here (`Settings.worker_config()`), so it never imports `api`: see `worker/config.py`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from enum import StrEnum
from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.live import LiveLimits
from loyalty.db import DEFAULT_DATABASE_URL, is_postgres
from push.config import DEVELOPMENT_FAKE_URL, CredentialSource, FcmConfig
from wallet.apns import PRODUCTION_URL as APNS_PRODUCTION_URL
from wallet.config import AppleWalletConfig
from wallet.credentials import development_secret
from worker.config import WorkerConfig


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class UnsafeSettings(RuntimeError):
    """Production mode was asked for with settings that are only safe in development; `problems` lists each one
    (the CLI prints one line per problem)."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems) or (message,)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KLUBB_", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    public_url: str = "http://127.0.0.1:8000"

    # Identity
    firebase_project_id: str = "klubb-dev"
    jwt_issuer: str = "klubb"
    # PEM file of the current signing key (EC P-256); required in production.
    jwt_private_key_file: str | None = None
    # Public PEM files of retired keys still accepted during rotation (comma-separated paths).
    jwt_previous_public_key_files: str = ""
    # Development only: where an auto-generated signing key is kept so tokens survive restarts.
    jwt_dev_key_file: str = "var/dev-jwt-key.pem"
    access_token_seconds: int = Field(default=900, ge=60, le=3600)
    refresh_token_days: int = Field(default=30, ge=1, le=365)

    # GraphQL limits
    graphql_max_depth: int = 12
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 2000
    # Run the member app's trusted queries through their compiled plans (schema/compiled/); off: all via strawberry.
    compiled_execution: bool = True
    # Fields a document selects once its fragments are expanded: bounds the cost of validating a hostile document.
    graphql_max_fields: int = Field(default=300, ge=1)
    # Request bodies larger than this are refused with 413 before they are parsed (bytes; member and staff endpoint).
    graphql_max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    staff_graphql_max_body_bytes: int = Field(default=1024 * 1024, ge=1024)

    # Outbox: drain in the API process (embedded default); production runs `klubb worker` instead.
    embedded_worker: bool = True
    webhook_timeout_seconds: float = 10.0
    webhook_retry_hours: int = 24
    worker_lease_seconds: float = 60.0  # claim lease; must exceed webhook_timeout_seconds
    # On PostgreSQL, workers LISTEN for new outbox events (worker/wakeup.py) and drain at once; off: they only poll
    # (behind a pooler in transaction mode, where LISTEN does not work).
    worker_listen: bool = True
    # Periodic jobs (run by every outbox worker): seconds between runs by job name, as JSON; 0 turns a job off.
    job_intervals: dict[str, float] = Field(default_factory=dict)

    # Apple Wallet: on by default (development passes signed by a local CA in `wallet_dev_directory`); production
    # needs the Pass Type ID certificate, its key, Apple's WWDR certificate and a secret.
    wallet_enabled: bool = True
    apple_pass_certificate_file: str | None = None
    apple_pass_key_file: str | None = None
    apple_pass_key_password: str | None = None
    apple_wwdr_certificate_file: str | None = None
    wallet_secret: str | None = None  # ≥ 32 characters: pass tokens and download links derive from it
    wallet_dev_directory: str = "var/wallet-dev"
    wallet_branding_directory: str | None = None  # icon.png, logo.png, strip.png (@2x, @3x) overriding the defaults
    wallet_link_seconds: int = Field(default=300, ge=30, le=3600)
    # APNs: unset sends to Apple's production APNs when credentials are configured, and logs pushes otherwise.
    apns_url: str | None = None
    apns_ca_file: str | None = None  # a CA bundle for APNs' server certificate (tests: the fake's)

    # Google Wallet (wallet/google/), its own switch (independent of Apple's `wallet_enabled`: either runs without the
    # other's credentials): the issuer id and the service account's JSON key file; without them outside production a
    # generated key in `google_wallet_dev_key_file` and links to the local fake (/dev/google-wallet).
    google_wallet_enabled: bool = True
    google_wallet_issuer_id: str | None = None
    google_wallet_service_account_file: str | None = None
    # Google's callback signing keys (the JSON of https://pay.google.com/gp/m/issuer/keys, saved to a file).
    google_wallet_callback_keys_file: str | None = None
    google_wallet_dev_key_file: str = "var/google-wallet-dev-service-account.json"
    google_wallet_logo_url: str | None = None

    # Live updates (`memberUpdated` over graphql-transport-ws on /graphql): in process with the embedded worker;
    # across processes through Redis pub/sub (`KLUBB_REDIS_URL`, e.g. redis://127.0.0.1:6379/0), which production
    # needs whenever the outbox worker is not inside the one API process.
    live_updates_enabled: bool = True
    redis_url: str | None = Field(default=None, pattern=r"^rediss?://")
    redis_channel: str = Field(default="klubb:live", min_length=1, max_length=200)  # one per deployment sharing Redis
    # Open websockets per member and API process; a new one beyond it closes that member's oldest (4029).
    live_connections_per_member: int = Field(default=5, ge=1, le=100)
    # A socket is closed (4000) after this long with no subscription, or with nothing heard from the client (it
    # answers the server's pings every `live_ping_seconds`).
    live_idle_seconds: float = Field(default=60.0, gt=0, le=3600)
    live_ping_seconds: float = Field(default=20.0, gt=0, le=3600)
    live_init_seconds: float = Field(default=10.0, gt=0, le=60)  # connection_init within this, or closed (4408)
    live_max_message_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)  # larger: closed (1009)
    # App push through FCM (push/): on by default. Production sends as the service account (the key file, or the
    # environment's GOOGLE_APPLICATION_CREDENTIALS); development and tests send to the local fake FCM
    # (`python -m push.fake`) at `push_fcm_fake_url` with a fixed token, unless given a service account file.
    push_enabled: bool = True
    push_fcm_project_id: str | None = None  # default: firebase_project_id (the app's Firebase project)
    push_fcm_service_account_file: str | None = None
    push_fcm_fake_url: str | None = None  # default in development: DEVELOPMENT_FAKE_URL; refused in production
    push_fcm_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    push_fcm_concurrency: int = Field(default=1, ge=1, le=16)
    push_fcm_batch_size: int = Field(default=100, ge=1, le=500)  # messages per send_each_async call
    push_retry_hours: float = Field(default=24.0, gt=0)  # a push still failing this long after it was owed is dropped
    # Deliveries the consumer leases, sends and records at a time (sent in calls of push_fcm_batch_size).
    push_batch_size: int = Field(default=100, ge=1, le=500)
    # A batch's lease: longer than the SDK may take on it (`api.push_setup.lease_seconds` raises it to what the
    # batch's calls can take at worst), or a slow batch is sent again by another worker.
    push_lease_seconds: float = Field(default=120.0, gt=0)

    # The referral landing page (/r/<code>, api/referral_page.py): its language when neither ?lang= nor the browser's
    # Accept-Language names one it speaks (en, sv).
    referral_page_language: Literal["en", "sv"] = "en"

    @property
    def production(self) -> bool:
        return self.environment == Environment.PRODUCTION

    def worker_config(self) -> WorkerConfig:
        """What the outbox worker takes from these settings (it does not import them: `worker` → `loyalty` only)."""
        return WorkerConfig(
            webhook_timeout_seconds=self.webhook_timeout_seconds,
            webhook_retry_hours=self.webhook_retry_hours,
            lease_seconds=self.worker_lease_seconds,
            listen_url=self.database_url if self.worker_listen and is_postgres(self.database_url) else None,
        )

    def live_limits(self) -> LiveLimits:
        return LiveLimits(
            connections_per_member=self.live_connections_per_member,
            idle_seconds=self.live_idle_seconds,
            ping_seconds=self.live_ping_seconds,
            init_seconds=self.live_init_seconds,
            max_message_bytes=self.live_max_message_bytes,
        )

    def wallet_config(self) -> AppleWalletConfig:
        """What the wallet package takes from these settings; development without a secret gets one made (and kept)
        in the development directory."""
        credentials = (self.apple_pass_certificate_file, self.apple_pass_key_file, self.apple_wwdr_certificate_file)
        apns_url = self.apns_url or (APNS_PRODUCTION_URL if all(credentials) else None)
        secret = self.wallet_secret.encode() if self.wallet_secret else development_secret(self.wallet_dev_directory)
        return AppleWalletConfig(
            certificate_file=self.apple_pass_certificate_file,
            key_file=self.apple_pass_key_file,
            wwdr_file=self.apple_wwdr_certificate_file,
            key_password=self.apple_pass_key_password,
            dev_directory=self.wallet_dev_directory,
            secret=secret,
            web_service_url=self.public_url.rstrip("/") + "/passkit",
            apns_url=apns_url,
            apns_ca_file=self.apns_ca_file,
            branding_directory=self.wallet_branding_directory,
            link_seconds=self.wallet_link_seconds,
            apns_timeout_seconds=self.webhook_timeout_seconds,
            lease_seconds=self.worker_lease_seconds,
        )

    def push_config(self) -> FcmConfig:
        """What FCM sending takes from these settings: production uses real credentials only; elsewhere the fake,
        unless a service account file is configured (sending to real devices from a development machine)."""
        source = CredentialSource.DEVELOPMENT
        account: str | None = None
        fake: str | None = self.push_fcm_fake_url or DEVELOPMENT_FAKE_URL
        if self.push_fcm_service_account_file:
            source, account, fake = CredentialSource.SERVICE_ACCOUNT_FILE, self.push_fcm_service_account_file, None
        elif self.production:
            source, fake = CredentialSource.APPLICATION_DEFAULT, None
        return FcmConfig(
            project_id=self.push_fcm_project_id or self.firebase_project_id,
            credentials=source,
            service_account_file=account,
            fake_url=fake,
            timeout_seconds=self.push_fcm_timeout_seconds,
            concurrency=self.push_fcm_concurrency,
            batch_size=self.push_fcm_batch_size,
        )

    def _push_problems(self) -> list[str]:
        if not self.push_enabled:
            return []
        problems = []
        adc = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        if self.push_fcm_service_account_file:
            path = self.push_fcm_service_account_file
            if not os.path.isfile(path) or not os.access(path, os.R_OK):
                problems.append(f"KLUBB_PUSH_FCM_SERVICE_ACCOUNT_FILE {path!r} is not a readable file")
        elif not adc:
            problems.append(
                "App push is enabled (KLUBB_PUSH_ENABLED) but neither KLUBB_PUSH_FCM_SERVICE_ACCOUNT_FILE nor "
                "GOOGLE_APPLICATION_CREDENTIALS is set"
            )
        elif not os.path.isfile(adc) or not os.access(adc, os.R_OK):
            problems.append(f"GOOGLE_APPLICATION_CREDENTIALS {adc!r} is not a readable file")
        if self.push_fcm_fake_url:
            problems.append("KLUBB_PUSH_FCM_FAKE_URL is set (pushes would go to a fake FCM)")
        return problems

    def _wallet_problems(self) -> list[str]:
        problems = []
        files = {
            "KLUBB_APPLE_PASS_CERTIFICATE_FILE": self.apple_pass_certificate_file,
            "KLUBB_APPLE_PASS_KEY_FILE": self.apple_pass_key_file,
            "KLUBB_APPLE_WWDR_CERTIFICATE_FILE": self.apple_wwdr_certificate_file,
        }
        for name, path in files.items():
            if not path:
                problems.append(f"Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but {name} is not set")
            elif not os.access(path, os.R_OK) or not os.path.isfile(path):
                problems.append(f"{name} {path!r} is not a readable file")
        if not self.wallet_secret or len(self.wallet_secret) < 32:
            problems.append("Apple Wallet is enabled but KLUBB_WALLET_SECRET is not set to at least 32 characters")
        if self.apns_url and not self.apns_url.startswith("https://"):
            problems.append("KLUBB_APNS_URL must be https")
        return problems

    def unsafe_problems(self) -> list[str]:
        """Why these settings are unsafe in production, one sentence per problem (none outside production)."""
        if not self.production:
            return []
        problems = []
        if os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
            problems.append("FIREBASE_AUTH_EMULATOR_HOST is set (accepts unsigned Firebase tokens)")
        if not self.jwt_private_key_file:
            problems.append("KLUBB_JWT_PRIVATE_KEY_FILE is not set")
        elif not os.access(self.jwt_private_key_file, os.R_OK) or not os.path.isfile(self.jwt_private_key_file):
            problems.append(f"KLUBB_JWT_PRIVATE_KEY_FILE {self.jwt_private_key_file!r} is not a readable file")
        if self.database_url.startswith("sqlite") and self.workers > 1:
            problems.append("SQLite cannot be shared by several worker processes")
        if not self.public_url.startswith("https://"):
            problems.append("KLUBB_PUBLIC_URL must be https")
        if self.live_updates_enabled and not self.redis_url and self.live_updates_cross_processes:
            problems.append(
                "live updates (memberUpdated) need KLUBB_REDIS_URL when the outbox worker runs outside the API process "
                "(KLUBB_EMBEDDED_WORKER=false or KLUBB_WORKERS > 1); or set KLUBB_LIVE_UPDATES_ENABLED=false"
            )
        if self.wallet_enabled:
            problems.extend(self._wallet_problems())
        problems.extend(self._google_wallet_problems())
        problems.extend(self._push_problems())
        return problems

    @property
    def live_updates_cross_processes(self) -> bool:
        """Notices are published by another process than the subscribers' (only Redis carries them there)."""
        return not self.embedded_worker or self.workers > 1

    @property
    def google_wallet_on(self) -> bool:
        """Google Wallet runs (`KLUBB_GOOGLE_WALLET_ENABLED`), whether or not Apple Wallet does."""
        return self.google_wallet_enabled

    def _google_wallet_problems(self) -> list[str]:
        if not self.google_wallet_on:
            return []
        problems = []
        if not self.google_wallet_issuer_id:
            problems.append("Google Wallet is enabled but KLUBB_GOOGLE_WALLET_ISSUER_ID is not set")
        for name, path in (
            ("KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE", self.google_wallet_service_account_file),
            ("KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE", self.google_wallet_callback_keys_file),
        ):
            if not path:
                problems.append(f"Google Wallet is enabled but {name} is not set")
            elif not os.path.isfile(path) or not os.access(path, os.R_OK):
                problems.append(f"{name} {path!r} is not a readable file")
        return problems

    def check_safe(self) -> None:
        """Refuse production mode with development-only settings: `UnsafeSettings` listing every problem."""
        if problems := self.unsafe_problems():
            raise UnsafeSettings("refusing to start in production: " + "; ".join(problems), problems)


@lru_cache
def get_settings() -> Settings:
    """The process's settings (cached; tests build `Settings(...)` directly)."""
    return Settings()
