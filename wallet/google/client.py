"""The Google Wallet REST client (httpx): OAuth with the service account, a request rate cap, retries with backoff.

- Authentication: Google's service-account flow — an RS256 assertion (`iss` the account, `scope` wallet_object.
  issuer, `aud` the token URI) exchanged at the token URI for a bearer token, cached until a minute before it ends.
- Rate: every attempt waits for a slot of the shared `RateLimiter` (≤ 20 requests/s by default, one process).
- Retries: 429 and 5xx answers and transport errors are retried with exponential backoff (jittered, capped; a
  `Retry-After` in seconds is honoured up to the cap); after `max_attempts` `GoogleWalletUnavailable`. Other 4xx
  answers are not retried: `GoogleWalletRejected` (404 and 409 are answers the callers expect, returned as such).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from wallet.google.config import WALLET_SCOPE, GoogleWalletConfig
from wallet.google.objects import JSON

log = logging.getLogger("klubb.wallet.google")

RETRYABLE = frozenset({429, 500, 502, 503, 504})
EXPECTED = frozenset({200, 404, 409})


class GoogleWalletUnavailable(Exception):
    """Google did not answer successfully after every retry (429/5xx/transport); retry the work later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class GoogleWalletRejected(Exception):
    """Google refused the request (a 4xx other than 404/409 and 429): retrying the same request will not help."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"Google Wallet answered {status}: {body[:300]}")
        self.status = status


class RateLimiter:
    """At most `rate` acquisitions per second, spaced evenly (shared by every request of the process's client)."""

    def __init__(
        self,
        rate: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = self._monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            await self._sleep(slot - now)


class GoogleWalletClient:
    def __init__(
        self,
        config: GoogleWalletConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        timeout: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config
        self.limiter = limiter or RateLimiter(config.requests_per_second)
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout)
        self._token: tuple[str, float] | None = None
        self._token_lock = asyncio.Lock()
        self._class_ready = False
        self._class_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- authentication

    def _assertion(self, now: float) -> str:
        account = self.config.account
        claims = {
            "iss": account.email,
            "scope": WALLET_SCOPE,
            "aud": account.token_uri,
            "iat": int(now),
            "exp": int(now) + 3600,
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        return jwt.encode(claims, account.private_key, algorithm="RS256", headers=headers)

    async def _bearer(self) -> str:
        async with self._token_lock:
            now = time.time()
            if self._token is not None and self._token[1] - 60 > now:
                return self._token[0]
            response = await self._send(
                "POST",
                self.config.account.token_uri,
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": self._assertion(now)},
            )
            if response.status_code != 200:
                raise GoogleWalletRejected(response.status_code, response.text)
            body = response.json()
            self._token = (str(body["access_token"]), now + float(body.get("expires_in", 3600)))
            return self._token[0]

    # -- transport

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None and retry_after.isdigit():
            return min(float(retry_after), self.max_delay)
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff / 2 + random.uniform(0, backoff / 2)  # noqa: S311 (jitter, not a secret)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request, retried on 429/5xx and transport errors with backoff, each attempt rate-limited."""
        status: int | None = None
        for attempt in range(self.max_attempts):
            await self.limiter.acquire()
            response: httpx.Response | None = None
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.TransportError as error:
                log.info("Google Wallet %s %s: %s (attempt %d)", method, url, type(error).__name__, attempt + 1)
            else:
                if response.status_code not in RETRYABLE:
                    return response
                status = response.status_code
                log.info("Google Wallet %s %s: %d (attempt %d)", method, url, status, attempt + 1)
            if attempt + 1 < self.max_attempts:
                await self._sleep(self._delay(attempt, response))
        raise GoogleWalletUnavailable(f"{method} {url} failed {self.max_attempts} times", status)

    async def _call(self, method: str, path: str, body: JSON | None = None) -> httpx.Response:
        token = await self._bearer()
        response = await self._send(
            method, self.config.api_base + path, json=body, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code not in EXPECTED:
            raise GoogleWalletRejected(response.status_code, response.text)
        return response

    # -- resources

    @property
    def class_ready(self) -> bool:
        """Whether this client has made sure the programme's class exists."""
        return self._class_ready

    async def ensure_class(self, resource: JSON) -> None:
        """Insert the programme's loyalty class unless it exists (once per client)."""
        async with self._class_lock:  # concurrent syncs: one insert, the others wait for it
            if self._class_ready:
                return
            response = await self._call("POST", "/loyaltyClass", resource)
            if response.status_code == 404:
                raise GoogleWalletRejected(404, response.text)
            self._class_ready = True  # 200 inserted, 409 already there

    async def insert_object(self, resource: JSON) -> bool:
        """Insert a loyalty object; False if it already existed (409)."""
        response = await self._call("POST", "/loyaltyObject", resource)
        if response.status_code == 404:
            raise GoogleWalletRejected(404, response.text)
        return response.status_code == 200

    async def patch_object(self, object_id: str, body: JSON) -> bool:
        """PATCH a loyalty object; False if Google does not know it (404)."""
        response = await self._call("PATCH", f"/loyaltyObject/{quote(object_id, safe='')}", body)
        if response.status_code == 409:
            raise GoogleWalletRejected(409, response.text)
        return response.status_code == 200

    async def get_object(self, object_id: str) -> JSON | None:
        response = await self._call("GET", f"/loyaltyObject/{quote(object_id, safe='')}")
        if response.status_code != 200:
            return None
        found: JSON = response.json()
        return found
