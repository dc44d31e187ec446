"""`me.wallet.applePassUrl`: a short-lived, single-use signed link to the member's own pass."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.settings import Environment
from api.wallet_links import WalletLinkSigner
from loyalty import clock
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, Program, WalletLinkUse, WalletPass
from tests.conftest import WALLET_TEST_SECRET, app_settings
from tests.wallet.verify import check_pkpass

QUERY = (Path(__file__).parents[2] / "mobile-client-mock" / "operations" / "Wallet.graphql").read_text()
BASE = "https://klubb.example.com"


@pytest.fixture
def frozen(clock: FrozenClock) -> FrozenClock:
    return clock


@pytest.fixture
async def app_client(
    db: str, tmp_path: Path, program: Program
) -> AsyncIterator[tuple[httpx.AsyncClient, TokenService]]:
    app = create_app(app_settings(db, tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield http, app.state.tokens


async def _link(http: httpx.AsyncClient, tokens: TokenService, member: Member) -> str:
    token = tokens.issue(str(member.id), MEMBER_AUDIENCE).token
    response = await http.post("/graphql", json={"query": QUERY}, headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    url: str = response.json()["data"]["me"]["wallet"]["applePassUrl"]
    return url


async def test_the_link_downloads_the_members_pass_once(
    app_client: tuple[httpx.AsyncClient, TokenService], tmp_path: Path, wallet_dev_directory: Path
) -> None:
    http, tokens = app_client
    anna, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")

    # when Anna asks for her link and opens it
    url = await _link(http, tokens, anna)
    assert url.startswith(f"{BASE}/wallet/apple/v1.{anna.id}.")
    downloaded = await http.get(url.removeprefix(BASE))

    # then it is her signed pass
    assert downloaded.status_code == 200
    assert downloaded.headers["content-type"] == "application/vnd.apple.pkpass"
    assert downloaded.headers["content-disposition"] == 'attachment; filename="card.pkpass"'
    checked = check_pkpass(downloaded.content, wallet_dev_directory / "root-ca.pem", tmp_path)
    wallet_pass = await WalletPass.get(member_id=anna.id)
    assert checked.pass_json["serialNumber"] == wallet_pass.serial_number
    assert checked.pass_json["storeCard"]["primaryFields"][0]["value"] == "Anna"
    assert checked.pass_json["barcodes"][0]["message"] == anna.member_number

    # and opened again it is refused
    replayed = await http.get(url.removeprefix(BASE))
    assert replayed.status_code == 410
    assert replayed.json() == {"error": "this link was already used: ask the app for a new one"}
    assert await WalletLinkUse.all().count() == 1
    # a new link works, and the pass is the same one
    second = await http.get((await _link(http, tokens, anna)).removeprefix(BASE))
    assert second.status_code == 200
    assert await WalletPass.filter(member_id=anna.id).count() == 1


async def test_an_expired_link_is_410(app_client: tuple[httpx.AsyncClient, TokenService], frozen: FrozenClock) -> None:
    http, tokens = app_client
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    url = await _link(http, tokens, anna)
    frozen.advance(timedelta(seconds=300))
    expired = await http.get(url.removeprefix(BASE))
    assert (expired.status_code, expired.json()) == (410, {"error": "this link has expired: ask the app for a new one"})
    assert await WalletLinkUse.all().count() == 0
    assert await WalletPass.all().count() == 0


async def test_a_tampered_link_is_404(app_client: tuple[httpx.AsyncClient, TokenService]) -> None:
    http, tokens = app_client
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    bo, _ = await enroll_member("uid-bo", email="bo@example.com")
    url = (await _link(http, tokens, anna)).removeprefix(BASE)
    version, member, expires, nonce, signature = url.removeprefix("/wallet/apple/").split(".")
    other_signer = WalletLinkSigner(b"another secret of at least 32 bytes!", BASE, 300)
    tampered = [
        f"/wallet/apple/{version}.{bo.id}.{expires}.{nonce}.{signature}",  # Bo's pass with Anna's signature
        f"/wallet/apple/{version}.{member}.{int(expires) + 3600}.{nonce}.{signature}",  # a longer life
        f"/wallet/apple/{version}.{member}.{expires}.{nonce}.{signature[:-1]}",
        f"/wallet/apple/v2.{member}.{expires}.{nonce}.{signature}",
        f"/wallet/apple/{version}.{member}.{expires}.{nonce}",
        "/wallet/apple/" + "x" * 300,
        "/wallet/apple/%C3%A9.1.2.3.4",
        "/wallet/apple/" + other_signer.token(bo.id, clock.now()),  # signed with another secret
    ]
    for path in tampered:
        response = await http.get(path)
        assert (response.status_code, response.json()) == (404, {"error": "no such link"}), path
    assert await WalletLinkUse.all().count() == 0
    assert await WalletPass.all().count() == 0


async def test_a_link_for_a_deleted_member_is_404(app_client: tuple[httpx.AsyncClient, TokenService]) -> None:
    http, _ = app_client
    signer = WalletLinkSigner(WALLET_TEST_SECRET.encode(), BASE, 300)
    response = await http.get(f"/wallet/apple/{signer.token(999999, clock.now())}")
    assert (response.status_code, response.json()) == (404, {"error": "no such link"})


async def test_without_the_wallet_the_link_is_null(db: str, tmp_path: Path, program: Program) -> None:
    settings = app_settings(db, tmp_path).model_copy(update={"wallet_enabled": False})
    app = create_app(settings)
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        assert await _link(http, app.state.tokens, anna) is None
        assert (await http.get("/wallet/apple/v1.1.2.3.4")).status_code == 404
        assert (await http.get("/passkit/v1/devices/d/registrations/pass.dev.klubb.member")).status_code == 404


async def test_the_app_gets_its_link_in_production(
    db: str, tmp_path: Path, program: Program, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given production (trusted documents only): the app's Wallet operation is one of them
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    app = create_app(app_settings(db, tmp_path, Environment.PRODUCTION))
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        url = await _link(http, app.state.tokens, anna)
        assert (await http.get(url.removeprefix(BASE))).status_code == 200
