"""Google Wallet fixtures: a throwaway service account, its config, the REST fake served in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.routing import Mount

from loyalty.members import enroll_member
from loyalty.models import Member, Program
from wallet.google.client import GoogleWalletClient, RateLimiter
from wallet.google.config import FAKE_PREFIX, GoogleWalletConfig, ServiceAccount
from wallet.google.fake import FakeGoogleWallet
from wallet.google.sync import GoogleWalletSync

BASE = "http://google.test" + FAKE_PREFIX
ISSUER = "3388000000012345678"


def new_service_account_json(token_uri: str = f"{BASE}/token") -> str:
    """A throwaway service account key file, as Google's console downloads it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps(
        {
            "type": "service_account",
            "private_key_id": "test-key-1",
            "private_key": pem.decode(),
            "client_email": "wallet@klubb-test.iam.gserviceaccount.com",
            "token_uri": token_uri,
        }
    )


@pytest.fixture(scope="session")
def service_account_json() -> str:
    return new_service_account_json()


@pytest.fixture
def google_config(service_account_json: str) -> GoogleWalletConfig:
    return GoogleWalletConfig(
        issuer_id=ISSUER,
        account=ServiceAccount.from_json(service_account_json),
        api_base=f"{BASE}/walletobjects/v1",
        save_base=f"{BASE}/save/",
        origins=("https://klubb.example.com",),
        callback_url="https://klubb.example.com/wallet/google/callback",
    )


@pytest.fixture
def fake_google(google_config: GoogleWalletConfig) -> FakeGoogleWallet:
    return FakeGoogleWallet(public_key_pem=google_config.account.public_key_pem())


class Sleeps:
    """A sleep that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def google_client(
    google_config: GoogleWalletConfig, fake_google: FakeGoogleWallet, sleeps: Sleeps
) -> AsyncIterator[GoogleWalletClient]:
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount(FAKE_PREFIX, fake_google.app())]))
    client = GoogleWalletClient(
        google_config, transport=transport, limiter=RateLimiter(1000.0, sleep=Sleeps()), sleep=sleeps
    )
    yield client
    await client.aclose()


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    return member


@pytest.fixture
def google_sync(google_config: GoogleWalletConfig, google_client: GoogleWalletClient) -> GoogleWalletSync:
    return GoogleWalletSync(google_config, google_client)
