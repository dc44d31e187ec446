"""What FCM sending needs from the configuration, built by the composition root (`Settings.push_config()`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DEVELOPMENT_FAKE_URL = "http://127.0.0.1:9098"  # `python -m push.fake`'s default port
MAX_BATCH = 500  # `messaging.send_each_async` refuses more messages in one call


class CredentialSource(StrEnum):
    SERVICE_ACCOUNT_FILE = "service-account-file"  # a service account's JSON key file
    APPLICATION_DEFAULT = "application-default"  # GOOGLE_APPLICATION_CREDENTIALS or the platform's metadata server
    DEVELOPMENT = "development"  # a fixed bearer token, sent to the local fake at `fake_url`


@dataclass(frozen=True)
class FcmConfig:
    project_id: str
    credentials: CredentialSource
    service_account_file: str | None = None  # with SERVICE_ACCOUNT_FILE
    # DEVELOPMENT: the fake FCM's base URL (`http://127.0.0.1:9098`; the SDK's path `/v1/projects/…` follows it) and
    # the token its `Authorization: Bearer` header carries (the fake checks it).
    fake_url: str | None = None
    # DEVELOPMENT over https: the fake's certificate (PEM), which the SDK's client then trusts instead of the public
    # CAs (`push.fcm.FcmSender`): HTTP/2 over TLS, as FCM is reached, costs the client half the CPU of HTTP/1.1.
    fake_certificate: str | None = None
    development_token: str = "klubb-development-fcm-token"  # noqa: S105 (only the fake accepts it)
    timeout_seconds: float = 10.0
    # Messages per `send_each_async` call (each is one HTTP request, all started at once). 100 = the streams an
    # HTTP/2 connection to FCM carries at once: the rest of a larger batch waits in httpx's pool, which scans its
    # queue per request (1.2 ms per message at 100, 1.7 ms at 500 against the fake: bench/README.md).
    batch_size: int = 100
    # Batches in flight at once. Each message of a batch is its own request, all started together by the SDK: over
    # HTTP/1.1 (the fake) httpx's pool holds 100 connections and assigns queued requests in O(queue x connections),
    # so two batches of 500 queued at once spent > 10 s assigning and timed out (bench/README.md, FCM fan-out).
    concurrency: int = 1

    def __post_init__(self) -> None:
        if not self.project_id:
            raise ValueError("FCM needs a project id")
        if self.credentials is CredentialSource.SERVICE_ACCOUNT_FILE and not self.service_account_file:
            raise ValueError("FCM credentials from a service account file need its path")
        if self.credentials is CredentialSource.DEVELOPMENT:
            if not self.fake_url or not self.fake_url.startswith(("http://", "https://")):
                raise ValueError(f"development FCM needs the fake's http(s) URL, not {self.fake_url!r}")
            if not self.development_token:
                raise ValueError("development FCM needs a token")
            if self.fake_certificate is not None and not self.fake_url.startswith("https://"):
                raise ValueError("a fake FCM certificate needs the fake's https URL")
        elif self.fake_url is not None or self.fake_certificate is not None:
            raise ValueError("a fake FCM URL or certificate is for development credentials only")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"FCM batch size must be 1..{MAX_BATCH}, not {self.batch_size}")
        if self.concurrency < 1:
            raise ValueError(f"FCM concurrency must be at least 1, not {self.concurrency}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"FCM timeout must be positive, not {self.timeout_seconds}")

    @property
    def messages_url(self) -> str | None:
        """The fake's send endpoint in development (None: the SDK's own, https://fcm.googleapis.com)."""
        if self.fake_url is None:
            return None
        return f"{self.fake_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
