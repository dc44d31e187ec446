"""The PassKit web service, as Apple specifies it: register/unregister, serials since a tag, the latest pass, log;
authentication by `ApplePass <token>`; bad input is a clear 4xx with nothing written; per-device rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.wallet_setup import AppleWalletParts
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, OutboxEvent, Program, ThrottleCounter, WalletPass, WalletRegistration
from tests.conftest import app_settings
from tests.wallet.verify import check_pkpass
from wallet import passkit

PASS_TYPE = "pass.dev.klubb.member"
PUSH = "0a" * 32


@pytest.fixture
async def parts_and_client(
    db: str, tmp_path: Path, program: Program
) -> AsyncIterator[tuple[AppleWalletParts, httpx.AsyncClient]]:
    app = create_app(app_settings(db, tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://klubb.example.com") as http:
        yield app.state.wallet, http


@pytest.fixture
def http(parts_and_client: tuple[AppleWalletParts, httpx.AsyncClient]) -> httpx.AsyncClient:
    return parts_and_client[1]


@pytest.fixture
def parts(parts_and_client: tuple[AppleWalletParts, httpx.AsyncClient]) -> AppleWalletParts:
    return parts_and_client[0]


async def _member_pass(parts: AppleWalletParts, uid: str = "uid-anna") -> tuple[Member, WalletPass, dict[str, str]]:
    member, _ = await enroll_member(uid, email=f"{uid}@example.com", display_name="Anna")
    wallet_pass = await parts.apple.member_pass(member.id)
    return member, wallet_pass, {"authorization": f"ApplePass {parts.apple.pass_token(wallet_pass.serial_number)}"}


def _registration(device: str, serial: str, pass_type: str = PASS_TYPE) -> str:
    return f"/passkit/v1/devices/{device}/registrations/{pass_type}/{serial}"


async def _counts() -> tuple[int, int]:
    return await WalletRegistration.all().count(), await OutboxEvent.all().count()


async def test_register_list_fetch_unregister(
    http: httpx.AsyncClient, parts: AppleWalletParts, clock: FrozenClock, tmp_path: Path, wallet_dev_directory: Path
) -> None:
    # given Anna's pass
    _, wallet_pass, auth = await _member_pass(parts)
    url = _registration("device-1", wallet_pass.serial_number)

    # when the device registers, twice
    first = await http.post(url, json={"pushToken": PUSH}, headers=auth)
    second = await http.post(url, json={"pushToken": PUSH}, headers=auth)

    # then 201, then 200
    assert (first.status_code, second.status_code) == (201, 200)
    assert await WalletRegistration.all().values_list("device_library_id", "push_token") == [("device-1", PUSH)]

    # the device's serials: all, then none newer than the tag it got
    listed = await http.get(f"/passkit/v1/devices/device-1/registrations/{PASS_TYPE}")
    assert listed.status_code == 200
    body = listed.json()
    assert body == {"serialNumbers": [wallet_pass.serial_number], "lastUpdated": str(wallet_pass.update_tag)}
    newer = await http.get(
        f"/passkit/v1/devices/device-1/registrations/{PASS_TYPE}", params={"passesUpdatedSince": body["lastUpdated"]}
    )
    assert (newer.status_code, newer.content) == (204, b"")
    older = await http.get(
        f"/passkit/v1/devices/device-1/registrations/{PASS_TYPE}", params={"passesUpdatedSince": "0"}
    )
    assert older.json()["serialNumbers"] == [wallet_pass.serial_number]

    # the latest pass, then 304 once the device has it
    latest = await http.get(f"/passkit/v1/passes/{PASS_TYPE}/{wallet_pass.serial_number}", headers=auth)
    assert latest.status_code == 200
    assert latest.headers["content-type"] == "application/vnd.apple.pkpass"
    modified = latest.headers["last-modified"]
    assert modified == format_datetime(wallet_pass.last_updated.astimezone(UTC).replace(microsecond=0), usegmt=True)
    checked = check_pkpass(latest.content, wallet_dev_directory / "root-ca.pem", tmp_path)
    assert checked.pass_json["serialNumber"] == wallet_pass.serial_number
    assert checked.pass_json["authenticationToken"] == auth["authorization"].removeprefix("ApplePass ")
    assert checked.pass_json["webServiceURL"] == "https://klubb.example.com/passkit"
    again = await http.get(
        f"/passkit/v1/passes/{PASS_TYPE}/{wallet_pass.serial_number}", headers={**auth, "if-modified-since": modified}
    )
    assert (again.status_code, again.content) == (304, b"")
    garbled = await http.get(
        f"/passkit/v1/passes/{PASS_TYPE}/{wallet_pass.serial_number}",
        headers={**auth, "if-modified-since": "yesterday"},
    )
    assert garbled.status_code == 200

    # when it unregisters
    gone = await http.delete(url, headers=auth)
    assert gone.status_code == 200
    assert await WalletRegistration.all().count() == 0
    assert (await WalletPass.get(id=wallet_pass.id)).installed is False
    listed = await http.get(f"/passkit/v1/devices/device-1/registrations/{PASS_TYPE}")
    assert listed.status_code == 204


@pytest.mark.parametrize(
    "header",
    [
        None,
        "ApplePass ",
        "ApplePass wrong-token-wrong-token-wrong",
        "Bearer {token}",
        "applepass {token}",
        "ApplePass {token}x",
    ],
)
async def test_a_wrong_token_is_401_and_writes_nothing(
    http: httpx.AsyncClient, parts: AppleWalletParts, header: str | None
) -> None:
    _, wallet_pass, auth = await _member_pass(parts)
    token = auth["authorization"].removeprefix("ApplePass ")
    headers = {"authorization": header.format(token=token)} if header else {}
    before = await _counts()

    register = await http.post(
        _registration("device-1", wallet_pass.serial_number), json={"pushToken": PUSH}, headers=headers
    )
    unregister = await http.delete(_registration("device-1", wallet_pass.serial_number), headers=headers)
    latest = await http.get(f"/passkit/v1/passes/{PASS_TYPE}/{wallet_pass.serial_number}", headers=headers)

    assert (register.status_code, unregister.status_code, latest.status_code) == (401, 401, 401)
    assert await _counts() == before


async def test_another_pass_token_unknown_serial_and_pass_type_answer_alike(
    http: httpx.AsyncClient, parts: AppleWalletParts
) -> None:
    _, mine, _ = await _member_pass(parts)
    _, _, theirs = await _member_pass(parts, "uid-bo")
    before = await _counts()
    answers = [
        (
            await http.post(_registration("device-1", mine.serial_number), json={"pushToken": PUSH}, headers=theirs)
        ).status_code,
        (
            await http.post(_registration("device-1", "no-such-serial"), json={"pushToken": PUSH}, headers=theirs)
        ).status_code,
        (await http.get(f"/passkit/v1/passes/{PASS_TYPE}/{mine.serial_number}", headers=theirs)).status_code,
        (await http.get(f"/passkit/v1/passes/{PASS_TYPE}/no-such-serial", headers=theirs)).status_code,
    ]
    _, _, mine_auth = await _member_pass_again(parts, mine)
    answers.append(
        (await http.get(f"/passkit/v1/passes/pass.other.type/{mine.serial_number}", headers=mine_auth)).status_code
    )
    assert answers == [401, 401, 401, 401, 401]
    assert await _counts() == before


async def _member_pass_again(
    parts: AppleWalletParts, wallet_pass: WalletPass
) -> tuple[None, WalletPass, dict[str, str]]:
    return None, wallet_pass, {"authorization": f"ApplePass {parts.apple.pass_token(wallet_pass.serial_number)}"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"not json", "application/json"),
        (b"[]", "application/json"),
        (b"{}", "application/json"),
        (b'{"pushToken": 123}', "application/json"),
        (b'{"pushToken": ""}', "application/json"),
        (b'{"pushToken": "not hex!"}', "application/json"),
        (b'{"pushToken": "' + b"a" * 201 + b'"}', "application/json"),
        (b'{"pushToken": "' + b"a" * 20000 + b'"}', "application/json"),
    ],
)
async def test_malformed_registration_bodies_are_400_and_write_nothing(
    http: httpx.AsyncClient, parts: AppleWalletParts, body: bytes, content_type: str
) -> None:
    _, wallet_pass, auth = await _member_pass(parts)
    before = await _counts()
    response = await http.post(
        _registration("device-1", wallet_pass.serial_number),
        content=body,
        headers={**auth, "content-type": content_type},
    )
    assert response.status_code == (413 if len(body) > passkit.MAX_BODY_BYTES else 400)
    assert await _counts() == before


async def test_a_malformed_device_or_tag_is_400_and_an_unknown_device_has_nothing(
    http: httpx.AsyncClient, parts: AppleWalletParts
) -> None:
    _, wallet_pass, auth = await _member_pass(parts)
    long_device = "d" * 129
    response = await http.post(
        _registration(long_device, wallet_pass.serial_number), json={"pushToken": PUSH}, headers=auth
    )
    assert response.status_code == 400
    assert (await http.get(f"/passkit/v1/devices/unknown/registrations/{PASS_TYPE}")).status_code == 204
    assert (await http.get(f"/passkit/v1/devices/{long_device}/registrations/{PASS_TYPE}")).status_code == 204
    assert (await http.get("/passkit/v1/devices/device-1/registrations/pass.other.type")).status_code == 204
    for bad in ("abc", "-1", "1" * 21, "1.5"):
        listed = await http.get(
            f"/passkit/v1/devices/device-1/registrations/{PASS_TYPE}", params={"passesUpdatedSince": bad}
        )
        assert listed.status_code == 400, bad
    assert (
        await http.delete(_registration("unknown-device", wallet_pass.serial_number), headers=auth)
    ).status_code == 200
    assert await WalletRegistration.all().count() == 0


async def test_registrations_are_rate_limited_per_device(http: httpx.AsyncClient, parts: AppleWalletParts) -> None:
    _, wallet_pass, auth = await _member_pass(parts)
    url = _registration("device-1", wallet_pass.serial_number)
    statuses = [
        (await http.post(url, json={"pushToken": PUSH}, headers=auth)).status_code for _ in range(passkit.DEVICE_LIMIT)
    ]
    assert statuses == [201] + [200] * (passkit.DEVICE_LIMIT - 1)
    assert (await http.post(url, json={"pushToken": PUSH}, headers=auth)).status_code == 429
    assert (await http.delete(url, headers=auth)).status_code == 429
    # another device is not held back
    assert (
        await http.post(_registration("device-2", wallet_pass.serial_number), json={"pushToken": PUSH}, headers=auth)
    ).status_code == 201
    assert await ThrottleCounter.filter(scope="wallet_device").count() == 2


async def test_the_log_endpoint(http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO, logger="klubb.wallet.passkit"):
        ok = await http.post("/passkit/v1/log", json={"logs": ["Web service error for pass.x (https://…): bad\nline"]})
    assert ok.status_code == 200
    assert "device log: Web service error for pass.x (https://\\u2026): bad\\nline" in caplog.text
    bad: list[Any] = [{"logs": "x"}, {"logs": [1]}, [], {}]
    for body in bad:
        assert (await http.post("/passkit/v1/log", json=body)).status_code == 400
    assert (await http.post("/passkit/v1/log", content=b"{")).status_code == 400
