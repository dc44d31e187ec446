"""Google Wallet in the service: its configuration from the settings, the REST client, the sync consumer, the
members' save links (the schema's `GoogleWalletLinks` port), the callback route and, in development, the fake.

Without credentials outside production, the client talks to the local fake in process (no network) and the save
links open the same fake at `/dev/google-wallet/save/…` on this server; production refuses to start without
credentials (`Settings.unsafe_problems`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from api.settings import Settings
from loyalty import clock
from wallet.google.callbacks import MAX_BODY_BYTES, CallbackRefused, handle_callback, root_keys
from wallet.google.client import GoogleWalletClient
from wallet.google.config import FAKE_PREFIX, GoogleWalletConfig, development_config, production_config
from wallet.google.fake import FakeGoogleWallet
from wallet.google.links import google_save_url
from wallet.google.signer import GoogleSigner
from wallet.google.sync import GoogleWalletSync
from wallet.http import read_body

log = logging.getLogger("klubb.wallet.google")

CALLBACK_PATH = "/wallet/google/callback"


def google_wallet_config(settings: Settings) -> GoogleWalletConfig | None:
    """The configuration the settings ask for: None when disabled; the fake's without credentials."""
    if not settings.google_wallet_on:
        return None
    if settings.google_wallet_issuer_id and settings.google_wallet_service_account_file:
        config = production_config(
            settings.google_wallet_issuer_id,
            settings.google_wallet_service_account_file,
            public_url=settings.public_url,
            callback_keys_file=settings.google_wallet_callback_keys_file,
        )
    else:
        config = development_config(settings.public_url, settings.google_wallet_dev_key_file)
    return dataclasses.replace(config, logo_url=settings.google_wallet_logo_url)


@dataclass
class GoogleWallet:
    config: GoogleWalletConfig
    fake: FakeGoogleWallet | None  # development: the stand-in every call and link goes to
    client: GoogleWalletClient

    @classmethod
    def build(cls, config: GoogleWalletConfig) -> GoogleWallet:
        if not config.development:
            return cls(config, None, cls._client(config, None))
        # Development: the fake's save and remove pages call back as Google would, signed with a key trusted here.
        signer = GoogleSigner()
        config = dataclasses.replace(config, callback_keys_json=signer.keys_json())
        fake = FakeGoogleWallet(
            public_key_pem=config.account.public_key_pem(),
            signer=signer,
            issuer_id=config.issuer_id,
            class_id=config.class_id,
        )
        wallet = cls(config, fake, cls._client(config, fake))
        fake.deliver_callback = wallet.apply_callback
        return wallet

    @staticmethod
    def _client(config: GoogleWalletConfig, fake: FakeGoogleWallet | None) -> GoogleWalletClient:
        if fake is None:
            return GoogleWalletClient(config)
        # In process: the API's base URL is this server's, but no request leaves the process.
        app = Starlette(routes=[Mount(FAKE_PREFIX, fake.app())])
        return GoogleWalletClient(config, transport=httpx.ASGITransport(app=app))

    # -- the schema's GoogleWalletLinks port

    async def google_save_url(self, member_id: int, now: datetime) -> str | None:
        return await google_save_url(self.config, self.client, member_id, now)

    # -- the worker's consumer

    @contextlib.asynccontextmanager
    async def sync(self) -> AsyncIterator[GoogleWalletSync]:
        """The sync consumer over a client of its own (closed on exit)."""
        client = self._client(self.config, self.fake)
        try:
            yield GoogleWalletSync(self.config, client)
        finally:
            await client.aclose()

    # -- HTTP

    async def apply_callback(self, body: bytes) -> int:
        """Verify and apply one callback body; the HTTP status it answers."""
        return (await self._apply(body)).status_code

    async def _apply(self, body: bytes) -> JSONResponse:
        now = clock.now()
        keys = self.config.callback_keys_json
        try:
            if keys is None:
                raise CallbackRefused(401, "no Google callback keys are configured")
            outcome = await handle_callback(
                body,
                issuer_id=self.config.issuer_id,
                class_id=self.config.class_id,
                roots=root_keys(keys, now),
                now=now,
            )
        except CallbackRefused as refused:
            log.info("Google Wallet callback refused (%d): %s", refused.status, refused.reason)
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        log.info("Google Wallet callback: %s %s (changed: %s)", outcome.event_type, outcome.object_id, outcome.changed)
        return JSONResponse({"status": "ok"})

    async def callback(self, request: Request) -> Response:
        body = await read_body(request, MAX_BODY_BYTES)  # bounded: a callback is a few kilobytes
        if body is None:
            return JSONResponse({"error": "callback body too large"}, status_code=413)
        return await self._apply(body)

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [Route(CALLBACK_PATH, self.callback, methods=["POST"])]
        if self.fake is not None:
            routes.append(Mount(FAKE_PREFIX, self.fake.app()))
        return routes

    async def aclose(self) -> None:
        await self.client.aclose()


def google_wallet(settings: Settings) -> GoogleWallet | None:
    config = google_wallet_config(settings)
    return GoogleWallet.build(config) if config is not None else None
