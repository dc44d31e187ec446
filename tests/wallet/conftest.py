"""Wallet fixtures: the session's development signing chain, an Apple wallet on it, the APNs fake."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import WALLET_TEST_SECRET
from tests.wallet.apns_fake import ApnsFake, client_ca_bundle, running_fake
from wallet.config import AppleWalletConfig
from wallet.credentials import AppleCredentials, development_credentials
from wallet.service import AppleWallet

WEB_SERVICE_URL = "https://klubb.example.com/passkit"


@pytest.fixture
def credentials(wallet_dev_directory: Path) -> AppleCredentials:
    return development_credentials(wallet_dev_directory)


def wallet_config(directory: Path, **overrides: object) -> AppleWalletConfig:
    values: dict[str, object] = {
        "certificate_file": None,
        "key_file": None,
        "wwdr_file": None,
        "key_password": None,
        "dev_directory": str(directory),
        "secret": WALLET_TEST_SECRET.encode(),
        "web_service_url": WEB_SERVICE_URL,
        "apns_url": None,
    }
    values.update(overrides)
    return AppleWalletConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def apple(wallet_dev_directory: Path, credentials: AppleCredentials) -> AppleWallet:
    return AppleWallet(wallet_config(wallet_dev_directory), credentials)


@pytest.fixture
async def apns(tmp_path: Path, wallet_dev_directory: Path) -> AsyncIterator[ApnsFake]:
    bundle = client_ca_bundle(wallet_dev_directory, tmp_path / "client-ca.pem")
    async with running_fake(tmp_path / "apns", bundle) as fake:
        yield fake
