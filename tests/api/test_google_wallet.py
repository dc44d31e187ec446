"""Google Wallet in the service: production refuses to start without credentials; `me.wallet.googleSaveUrl` (the
development fake without credentials, real credentials from files); the callback route."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import GoogleWalletCallback, GoogleWalletObject, Member, Program
from loyalty.wallet import card_in_wallet
from schema.trusted_documents import OPERATIONS_DIR
from tests.conftest import app_settings
from tests.wallet.google.conftest import new_service_account_json
from wallet.google.config import DEV_ISSUER_ID
from wallet.google.signer import GoogleSigner

QUERY = (OPERATIONS_DIR / "GoogleWalletLink.graphql").read_text()  # the app's own, trusted and compiled
ISSUER = "3388000000099999999"


def _credentials(tmp_path: Path, service_account_json: str, signer: GoogleSigner) -> dict[str, Any]:
    account = tmp_path / "service-account.json"
    account.write_text(service_account_json)
    keys = tmp_path / "google-keys.json"
    keys.write_text(signer.keys_json())
    return {
        "google_wallet_enabled": True,
        "google_wallet_issuer_id": ISSUER,
        "google_wallet_service_account_file": str(account),
        "google_wallet_callback_keys_file": str(keys),
    }


def _with(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


@pytest.fixture(scope="module")
def service_account_json() -> str:
    return new_service_account_json()


@pytest.fixture
def signer() -> GoogleSigner:
    return GoogleSigner()


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    return member


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)  # no lifespan: the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http
    if app.state.google_wallet is not None:
        await app.state.google_wallet.aclose()


def _token(settings: Settings, member: Member) -> dict[str, str]:
    return {"authorization": f"Bearer {TokenService(settings).issue(str(member.id), MEMBER_AUDIENCE).token}"}


def test_production_refuses_google_wallet_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = _with(app_settings("sqlite://x", tmp_path, Environment.PRODUCTION), google_wallet_enabled=True)

    assert settings.unsafe_problems() == [
        "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_ISSUER_ID is not set",
        "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE is not set",
        "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE is not set",
    ]
    missing = _with(
        settings,
        google_wallet_issuer_id=ISSUER,
        google_wallet_service_account_file=str(tmp_path / "nope.json"),
        google_wallet_callback_keys_file=str(tmp_path / "nope-keys.json"),
    )
    assert missing.unsafe_problems() == [
        f"KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE {str(tmp_path / 'nope.json')!r} is not a readable file",
        f"KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE {str(tmp_path / 'nope-keys.json')!r} is not a readable file",
    ]
    assert _with(settings, google_wallet_enabled=False).unsafe_problems() == []


def test_production_starts_with_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_account_json: str, signer: GoogleSigner
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = _with(
        app_settings("sqlite://x", tmp_path, Environment.PRODUCTION),
        **_credentials(tmp_path, service_account_json, signer),
    )

    assert settings.unsafe_problems() == []
    app = create_app(settings)
    assert app.state.google_wallet.config.issuer_id == ISSUER
    assert app.state.google_wallet.fake is None  # no fake routes in production
    assert app.state.google_wallet.config.save_base == "https://pay.google.com/gp/v/save/"


async def test_without_credentials_the_link_opens_the_local_fake(
    db: str, tmp_path: Path, anna: Member, clock: FrozenClock
) -> None:
    settings = _with(
        app_settings(db, tmp_path),
        google_wallet_enabled=True,
        google_wallet_dev_key_file=str(tmp_path / "var" / "google-dev.json"),
    )
    async for http in _client(settings):
        response = await http.post("/graphql", json={"query": QUERY}, headers=_token(settings, anna))
        url = response.json()["data"]["me"]["wallet"]["googleSaveUrl"]

        assert url.startswith("https://klubb.example.com/dev/google-wallet/save/")
        dev_key = json.loads((tmp_path / "var" / "google-dev.json").read_text())
        claims = jwt.decode(
            url.rsplit("/", 1)[1],
            _public_pem(dev_key["private_key"]),
            algorithms=["RS256"],
            audience="google",
        )
        assert claims["payload"]["loyaltyObjects"][0]["id"] == f"{DEV_ISSUER_ID}.member-{anna.member_number}"

        # opening it saves the card in the fake, which calls back as Google would: the card is in the wallet
        page = await http.get(url.removeprefix("https://klubb.example.com"))
        assert page.status_code == 200
        assert "local development fake" in page.text
        assert "Anna" in page.text
        assert (await card_in_wallet(anna.id)).google is True
        assert (await GoogleWalletObject.get(member_id=anna.id)).inserted is True

        # and its "remove from wallet" link takes it out again
        removed = await http.get(f"/dev/google-wallet/remove/{DEV_ISSUER_ID}.member-{anna.member_number}")
        assert removed.status_code == 200
        assert (await card_in_wallet(anna.id)).google is False
        assert await GoogleWalletCallback.all().count() == 2


def _public_pem(private_pem: str) -> bytes:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


async def test_google_wallet_off_gives_a_null_link(db: str, tmp_path: Path, anna: Member) -> None:
    settings = app_settings(db, tmp_path)
    async for http in _client(settings):
        response = await http.post("/graphql", json={"query": QUERY}, headers=_token(settings, anna))

        assert response.json() == {"data": {"me": {"wallet": {"googleSaveUrl": None}}}}


async def test_the_callback_route_records_a_save_and_refuses_bad_bodies(
    db: str, tmp_path: Path, anna: Member, clock: FrozenClock, service_account_json: str, signer: GoogleSigner
) -> None:
    settings = _with(app_settings(db, tmp_path), **_credentials(tmp_path, service_account_json, signer))
    object_id = f"{ISSUER}.member-{anna.member_number}"
    await GoogleWalletObject.create(
        member_id=anna.id, object_id=object_id, next_attempt_at=clock.now(), created_at=clock.now()
    )
    body = signer.callback(
        issuer_id=ISSUER,
        class_id=f"{ISSUER}.klubb",
        object_id=object_id,
        event_type="save",
        nonce="nonce-1",
        now=clock.now(),
    )
    async for http in _client(settings):
        bad = await http.post("/wallet/google/callback", content=b"{}")
        forged = await http.post(
            "/wallet/google/callback",
            content=GoogleSigner().callback(
                issuer_id=ISSUER,
                class_id=f"{ISSUER}.klubb",
                object_id=object_id,
                event_type="save",
                nonce="nonce-2",
                now=clock.now(),
            ),
        )
        assert (bad.status_code, bad.json()) == (400, {"error": "unsupported protocolVersion"})
        assert forged.status_code == 401
        assert await GoogleWalletCallback.all().count() == 0
        assert (await card_in_wallet(anna.id)).google is False

        ok = await http.post("/wallet/google/callback", content=body)

        assert (ok.status_code, ok.json()) == (200, {"status": "ok"})
        assert (await card_in_wallet(anna.id)).google is True
        assert await GoogleWalletCallback.filter(nonce="nonce-1").count() == 1


async def test_an_oversized_callback_is_413_before_it_is_read_whole(
    db: str, tmp_path: Path, service_account_json: str, signer: GoogleSigner
) -> None:
    settings = _with(app_settings(db, tmp_path), **_credentials(tmp_path, service_account_json, signer))
    async for http in _client(settings):
        response = await http.post("/wallet/google/callback", content=b"{" + b" " * 20_000 + b"}")

        assert (response.status_code, response.json()) == (413, {"error": "callback body too large"})
        assert await GoogleWalletCallback.all().count() == 0


def test_production_runs_google_wallet_without_apple_wallet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, service_account_json: str, signer: GoogleSigner
) -> None:
    # given production with Google's credentials, Apple Wallet off and none of its credentials
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    settings = _with(
        app_settings("sqlite://x", tmp_path, Environment.PRODUCTION),
        wallet_enabled=False,
        apple_pass_certificate_file=None,
        apple_pass_key_file=None,
        apple_wwdr_certificate_file=None,
        wallet_secret=None,
        **_credentials(tmp_path, service_account_json, signer),
    )

    # then it starts with Google Wallet and without the PassKit web service
    assert settings.unsafe_problems() == []
    app = create_app(settings)
    assert (app.state.wallet, app.state.google_wallet.config.issuer_id) == (None, ISSUER)
    assert app.state.google_wallet.fake is None
