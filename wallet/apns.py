"""APNs pushes that tell a device one of its passes changed (its Wallet then asks the web service what changed).

Apple's rule for pass updates: an HTTP/2 `POST /3/device/<push token>` to APNs, authenticated by TLS with the pass
certificate itself, `apns-topic` = the pass type identifier, and an empty JSON payload. One client keeps one
HTTP/2 connection and multiplexes concurrent pushes over it.

Outcomes: 200 sent; 410 `Unregistered` (and 400 `BadDeviceToken`) mean the token is dead: its registrations are
deleted; anything else (429, 5xx, timeouts, connection errors, a certificate APNs refuses) is retried with backoff.
Without an APNs URL (development without credentials) `LoggedPushes` records pushes in the log instead.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import httpcore
import orjson

from wallet.credentials import AppleCredentials

log = logging.getLogger("klubb.wallet.apns")

PRODUCTION_URL = "https://api.push.apple.com"
PAYLOAD = b"{}"
MAX_REASON = 200


class PushOutcome(StrEnum):
    SENT = "sent"
    UNREGISTERED = "unregistered"  # the token is dead: forget its registrations
    RETRY = "retry"


@dataclass(frozen=True)
class PushResult:
    outcome: PushOutcome
    status_code: int | None
    reason: str


class Pushes(Protocol):
    async def push(self, push_token: str) -> PushResult: ...

    async def aclose(self) -> None: ...


def client_tls(credentials: AppleCredentials, ca_file: str | None = None) -> ssl.SSLContext:
    """TLS for APNs: the pass certificate as client certificate; the server checked against the system's CAs (or
    `ca_file`, for a local fake)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(str(credentials.certificate_file), str(credentials.key_file), credentials.key_password)
    return context


def classify(status_code: int | None, body: bytes) -> PushResult:
    """What an APNs answer means for the push and its token."""
    reason = ""
    if body:
        try:
            parsed = orjson.loads(body)
            reason = str(parsed.get("reason", ""))[:MAX_REASON] if isinstance(parsed, dict) else ""
        except orjson.JSONDecodeError:
            reason = body[:MAX_REASON].decode(errors="replace")
    if status_code == 200:
        return PushResult(PushOutcome.SENT, status_code, "")
    if status_code == 410 or (status_code == 400 and reason in ("BadDeviceToken", "DeviceTokenNotForTopic")):
        return PushResult(PushOutcome.UNREGISTERED, status_code, reason)
    return PushResult(PushOutcome.RETRY, status_code, reason or f"HTTP {status_code}")


class ApnsClient:
    """Pass-update pushes over one HTTP/2 connection to `base_url` (APNs, or a fake in tests).

    Requests go through httpcore's connection pool, the transport under httpx (`httpx[http2]` installs it with
    `h2`): httpx's client layer (request and URL building per call) cost about 40 % of a push's CPU, and APNs needs
    none of it (one origin, fixed headers, a fixed body, no redirects, cookies or auth).
    """

    def __init__(
        self,
        base_url: str,
        credentials: AppleCredentials,
        *,
        timeout_seconds: float = 10.0,
        ca_file: str | None = None,
        max_connections: int = 4,
    ) -> None:
        self.topic = credentials.pass_type_id
        self.timeout_seconds = timeout_seconds
        self._base = base_url.rstrip("/").encode()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=client_tls(credentials, ca_file),
            http1=False,
            http2=True,
            max_connections=max_connections,
        )
        self._headers = [
            (b"apns-topic", self.topic.encode()),
            (b"apns-priority", b"5"),
            (b"content-type", b"application/json"),
        ]
        self._extensions = {
            "timeout": {
                "connect": timeout_seconds,
                "read": timeout_seconds,
                "write": timeout_seconds,
                "pool": timeout_seconds,
            }
        }

    async def push(self, push_token: str) -> PushResult:
        """One push to one device token; never raises for network or HTTP failures."""
        if not push_token.isalnum() or not push_token.isascii():
            return PushResult(PushOutcome.UNREGISTERED, None, "BadDeviceToken")
        try:
            async with asyncio.timeout(self.timeout_seconds):
                response = await self._pool.request(
                    b"POST",
                    self._base + b"/3/device/" + push_token.encode(),
                    headers=self._headers,
                    content=PAYLOAD,
                    extensions=self._extensions,
                )
        except TimeoutError:
            return PushResult(PushOutcome.RETRY, None, f"timeout after {self.timeout_seconds:g} s")
        except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as error:
            return PushResult(PushOutcome.RETRY, None, f"{type(error).__name__}: {error}"[:MAX_REASON])
        return classify(response.status, response.content)

    async def aclose(self) -> None:
        await self._pool.aclose()


class LoggedPushes:
    """Development without APNs: each push is a log line (and counted), never sent."""

    def __init__(self) -> None:
        self.pushed: list[str] = []

    async def push(self, push_token: str) -> PushResult:
        self.pushed.append(push_token)
        log.info("APNs not configured: pass update push to %s… logged, not sent", push_token[:8])
        return PushResult(PushOutcome.SENT, None, "")

    async def aclose(self) -> None:
        return None
