"""Apple Wallet, assembled: credentials, the pass builder, the PassKit web service, download links and the updates
consumer, from the settings (`KLUBB_WALLET_*`, `KLUBB_APPLE_*`, `KLUBB_APNS_*`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount

from api.settings import Settings
from api.wallet_links import WalletLinkSigner, download_route
from wallet.apns import ApnsClient, LoggedPushes, Pushes
from wallet.config import AppleWalletConfig
from wallet.credentials import apple_credentials
from wallet.passkit import PassKitService
from wallet.service import AppleWallet
from wallet.updates import AppleUpdates
from worker.consumers import Consumer

if TYPE_CHECKING:
    from api.google_wallet_setup import GoogleWallet


@dataclass(frozen=True)
class AppleWalletParts:
    config: AppleWalletConfig
    apple: AppleWallet
    links: WalletLinkSigner

    def routes(self) -> list[BaseRoute]:
        """The PassKit web service (at the passes' webServiceURL) and the download route."""
        return [Mount("/passkit", PassKitService(self.apple).router()), download_route(self.links, self.apple)]

    def pushes(self) -> Pushes:
        if self.config.apns_url is None:
            return LoggedPushes()
        return ApnsClient(
            self.config.apns_url,
            self.apple.credentials,
            timeout_seconds=self.config.apns_timeout_seconds,
            ca_file=self.config.apns_ca_file,
        )

    @contextlib.asynccontextmanager
    async def updates(self) -> AsyncIterator[AppleUpdates]:
        """The updates consumer with its APNs connection, closed on exit."""
        pushes = self.pushes()
        try:
            yield AppleUpdates(
                pushes, lease_seconds=self.config.lease_seconds, retry_hours=self.config.apns_retry_hours
            )
        finally:
            await pushes.aclose()


def apple_wallet(settings: Settings) -> AppleWalletParts | None:
    """The Apple Wallet parts, or None when the wallet is off (`KLUBB_WALLET_ENABLED=false`)."""
    if not settings.wallet_enabled:
        return None
    config = settings.wallet_config()
    branding = Path(config.branding_directory) if config.branding_directory else None
    apple = AppleWallet(config, apple_credentials(config), branding)
    return AppleWalletParts(
        config=config, apple=apple, links=WalletLinkSigner(config.secret, settings.public_url, config.link_seconds)
    )


async def wallet_consumers(
    stack: contextlib.AsyncExitStack[bool | None], apple: AppleWalletParts | None, google: GoogleWallet | None
) -> list[Consumer]:
    """The outbox consumers of the wallets that are on (Apple's pass updates, Google's sync), open until `stack`
    closes: the same for the embedded worker and `klubb worker`."""
    consumers: list[Consumer] = []
    if apple is not None:
        consumers.append(await stack.enter_async_context(apple.updates()))
    if google is not None:
        consumers.append(await stack.enter_async_context(google.sync()))
    return consumers
