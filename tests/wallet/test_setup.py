"""Apple Wallet assembled from the settings: logged pushes without APNs, and the embedded worker pushing updates."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from api.app import create_app, run_embedded_worker
from api.wallet_setup import apple_wallet
from loyalty.members import enroll_member
from loyalty.models import Program
from tests.conftest import app_settings
from tests.loyalty.ledger_helpers import give_available
from tests.wallet.apns_fake import ApnsFake
from wallet.apns import ApnsClient, LoggedPushes

PASS_TYPE = "pass.dev.klubb.member"


def test_without_apns_pushes_are_logged(tmp_path: Path) -> None:
    settings = app_settings("sqlite://:memory:", tmp_path).model_copy(update={"apns_url": None})
    parts = apple_wallet(
        settings.model_copy(
            update={
                "apple_pass_certificate_file": None,
                "apple_pass_key_file": None,
                "apple_wwdr_certificate_file": None,
            }
        )
    )
    assert parts is not None
    assert isinstance(parts.pushes(), LoggedPushes)
    assert parts.config.web_service_url == "https://klubb.example.com/passkit"
    assert apple_wallet(settings.model_copy(update={"wallet_enabled": False})) is None


async def test_the_embedded_worker_pushes_pass_updates(
    db: str, tmp_path: Path, program: Program, apns: ApnsFake
) -> None:
    # given an app whose embedded worker pushes to the APNs fake, and Anna's pass on her phone
    settings = app_settings(db, tmp_path).model_copy(
        update={"embedded_worker": True, "apns_url": apns.url, "apns_ca_file": apns.ca_file}
    )
    app = create_app(settings)
    parts = app.state.wallet
    assert isinstance(parts.pushes(), ApnsClient)
    anna, _ = await enroll_member("uid-anna", email="anna@example.com")
    wallet_pass = await parts.apple.member_pass(anna.id)
    auth = {"authorization": f"ApplePass {parts.apple.pass_token(wallet_pass.serial_number)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://klubb.example.com") as http:
        url = f"/passkit/v1/devices/phone/registrations/{PASS_TYPE}/{wallet_pass.serial_number}"
        assert (await http.post(url, json={"pushToken": "ab" * 32}, headers=auth)).status_code == 201

    # when the worker runs and Anna earns points
    stop = asyncio.Event()
    worker = asyncio.create_task(run_embedded_worker(settings, stop, None, parts))
    try:
        await give_available(anna.id, 100)
        for _ in range(100):
            if apns.pushes:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)

    # then the phone got one push for the pass's type
    assert [(p.token, p.topic) for p in apns.pushes] == [("ab" * 32, PASS_TYPE)]
