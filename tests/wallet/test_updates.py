"""Pass updates: the consumer moves the tag on content changes and pushes each registered device once over HTTP/2
to the APNs fake (client certificate required); 410 forgets the device; failures back off and retry. The end-to-end
test: earn → tag moves → serial listed → the new pass shows the new balance → exactly one push."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.wallet_setup import AppleWalletParts
from loyalty.clock import FrozenClock
from loyalty.members import ProfileChanges, enroll_member, update_profile
from loyalty.models import Member, Program, WalletPush, WalletRegistration
from tests.conftest import app_settings
from tests.loyalty.ledger_helpers import give_available, purchase
from tests.wallet.apns_fake import ApnsFake
from tests.wallet.verify import check_pkpass
from wallet.apns import ApnsClient, PushOutcome, PushResult
from wallet.credentials import AppleCredentials
from wallet.updates import AppleUpdates, backoff
from worker.runner import drain_once

PASS_TYPE = "pass.dev.klubb.member"
PHONE = "ab" * 32
WATCH = "cd" * 32


@pytest.fixture
async def apns_client(apns: ApnsFake, credentials: AppleCredentials) -> AsyncIterator[ApnsClient]:
    client = ApnsClient(apns.url, credentials, ca_file=apns.ca_file, timeout_seconds=5)
    yield client
    await client.aclose()


async def test_a_push_is_http2_with_the_pass_certificate_and_topic(apns: ApnsFake, apns_client: ApnsClient) -> None:
    apns.answers = {WATCH: 410, "ee" * 32: 500}
    assert (await apns_client.push(PHONE)).outcome is PushOutcome.SENT
    dead = await apns_client.push(WATCH)
    assert (dead.outcome, dead.status_code, dead.reason) == (PushOutcome.UNREGISTERED, 410, "Unregistered")
    failing = await apns_client.push("ee" * 32)
    assert (failing.outcome, failing.status_code, failing.reason) == (PushOutcome.RETRY, 500, "InternalServerError")
    first = apns.pushes[0]
    assert (first.token, first.topic, first.body, first.http_version) == (PHONE, PASS_TYPE, b"{}", "2")
    assert first.headers["apns-priority"] == "5"


async def test_the_fake_refuses_a_client_without_the_pass_certificate(apns: ApnsFake) -> None:
    context = ssl.create_default_context(cafile=apns.ca_file)
    async with httpx.AsyncClient(http2=True, verify=context, trust_env=False) as anonymous:
        with pytest.raises(httpx.HTTPError):
            await anonymous.post(f"{apns.url}/3/device/{PHONE}", content=b"{}")
    assert apns.pushes == []


async def test_an_unreachable_apns_is_retried(credentials: AppleCredentials, apns: ApnsFake) -> None:
    client = ApnsClient("https://127.0.0.1:9", credentials, ca_file=apns.ca_file, timeout_seconds=2)
    try:
        result = await client.push(PHONE)
    finally:
        await client.aclose()
    assert (result.outcome, result.status_code) == (PushOutcome.RETRY, None)
    assert result.reason.startswith("ConnectError")


@pytest.fixture
async def app_http(
    db: str, tmp_path: Path, program: Program
) -> AsyncIterator[tuple[AppleWalletParts, httpx.AsyncClient]]:
    app = create_app(app_settings(db, tmp_path))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://klubb.example.com") as http:
        yield app.state.wallet, http


async def _installed(
    parts: AppleWalletParts, http: httpx.AsyncClient, uid: str, devices: dict[str, str]
) -> tuple[Member, str, dict[str, str]]:
    member, _ = await enroll_member(uid, email=f"{uid}@example.com", display_name="Anna")
    wallet_pass = await parts.apple.member_pass(member.id)
    auth = {"authorization": f"ApplePass {parts.apple.pass_token(wallet_pass.serial_number)}"}
    for device, token in devices.items():
        url = f"/passkit/v1/devices/{device}/registrations/{PASS_TYPE}/{wallet_pass.serial_number}"
        assert (await http.post(url, json={"pushToken": token}, headers=auth)).status_code == 201
    return member, wallet_pass.serial_number, auth


async def test_earning_updates_the_pass_and_pushes_once(
    app_http: tuple[AppleWalletParts, httpx.AsyncClient],
    apns: ApnsFake,
    apns_client: ApnsClient,
    clock: FrozenClock,
    tmp_path: Path,
    wallet_dev_directory: Path,
) -> None:
    parts, http = app_http
    updates = AppleUpdates(apns_client)
    # given Anna's pass on her phone, the device up to date
    anna, serial, auth = await _installed(parts, http, "uid-anna", {"phone": PHONE})
    await drain_once([updates])  # the install's events change nothing the pass shows: no push
    apns.pushes.clear()
    listed = (await http.get(f"/passkit/v1/devices/phone/registrations/{PASS_TYPE}")).json()
    tag = listed["lastUpdated"]
    before = check_pkpass(
        (await http.get(f"/passkit/v1/passes/{PASS_TYPE}/{serial}", headers=auth)).content,
        wallet_dev_directory / "root-ca.pem",
        tmp_path / "a",
    )
    assert before.pass_json["storeCard"]["headerFields"][0]["value"] == 0

    # when she earns points, twice in a burst, and the worker drains the outbox
    clock.advance(timedelta(seconds=2))
    await give_available(anna.id, 150, key="burst-1")
    await give_available(anna.id, 50, key="burst-2")
    await drain_once([updates])

    # then the tag moved, the device's list has the serial, the new pass shows 200 points, one push was sent
    listed = await http.get(f"/passkit/v1/devices/phone/registrations/{PASS_TYPE}", params={"passesUpdatedSince": tag})
    assert listed.status_code == 200
    assert listed.json()["serialNumbers"] == [serial]
    assert int(listed.json()["lastUpdated"]) > int(tag)
    latest = await http.get(
        f"/passkit/v1/passes/{PASS_TYPE}/{serial}",
        headers={**auth, "if-modified-since": "Mon, 02 Mar 2026 12:00:00 GMT"},
    )
    assert latest.status_code == 200
    after = check_pkpass(latest.content, wallet_dev_directory / "root-ca.pem", tmp_path / "b")
    assert after.pass_json["storeCard"]["headerFields"][0]["value"] == 200
    assert [(p.token, p.topic) for p in apns.pushes] == [(PHONE, PASS_TYPE)]
    assert await WalletPush.all().values_list("push_token", "sent", "wanted") == [(PHONE, 1, 1)]

    # and draining again pushes nothing more
    await drain_once([updates])
    assert len(apns.pushes) == 1


async def test_one_push_per_device_and_only_for_changes(
    app_http: tuple[AppleWalletParts, httpx.AsyncClient], apns: ApnsFake, apns_client: ApnsClient, clock: FrozenClock
) -> None:
    parts, http = app_http
    updates = AppleUpdates(apns_client)
    anna, _, _ = await _installed(parts, http, "uid-anna", {"phone": PHONE, "watch": WATCH})
    bo, _, _ = await _installed(parts, http, "uid-bo", {"phone": PHONE})  # a second pass on the same phone
    await drain_once([updates])
    apns.pushes.clear()

    # when both members' points change in one batch
    await give_available(anna.id, 10, key="a")
    await give_available(bo.id, 10, key="b")
    await purchase(anna.id, "r-1", 5000, clock.now())
    await drain_once([updates])

    # then each device token got one push
    assert sorted(p.token for p in apns.pushes) == [PHONE, WATCH]

    # when something the pass does not show changes (marketing consent), nothing is pushed
    apns.pushes.clear()
    await update_profile(anna.id, ProfileChanges(marketing_consent=True))
    await drain_once([updates])
    assert apns.pushes == []
    # but a new name is
    await update_profile(anna.id, ProfileChanges(display_name="Anna A"))
    await drain_once([updates])
    assert sorted(p.token for p in apns.pushes) == [PHONE, WATCH]


async def test_410_forgets_the_device_and_failures_back_off(
    app_http: tuple[AppleWalletParts, httpx.AsyncClient], apns: ApnsFake, apns_client: ApnsClient, clock: FrozenClock
) -> None:
    parts, http = app_http
    updates = AppleUpdates(apns_client, retry_hours=1)
    anna, _, _ = await _installed(parts, http, "uid-anna", {"phone": PHONE, "watch": WATCH})
    await drain_once([updates])
    apns.pushes.clear()
    apns.answers = {WATCH: 410, PHONE: 500}

    # when the pass changes and APNs says the watch is gone and fails for the phone
    await give_available(anna.id, 10, key="a")
    await drain_once([updates])

    # then the watch's registration is deleted, the phone's push waits for its backoff
    assert await WalletRegistration.all().values_list("device_library_id", flat=True) == ["phone"]
    row = await WalletPush.get(push_token=PHONE)
    assert (row.attempts, row.last_status_code, row.last_error, row.sent < row.wanted) == (
        1,
        500,
        "InternalServerError",
        True,
    )
    assert row.next_attempt_at == clock.now() + backoff(1)
    assert not await WalletPush.filter(push_token=WATCH).exists()
    assert sorted(p.token for p in apns.pushes) == [PHONE, WATCH]
    assert await drain_once([updates]) == 0  # not due yet

    # when the backoff is over and APNs recovers
    apns.answers = {}
    clock.advance(backoff(1))
    assert await drain_once([updates]) == 1
    row = await WalletPush.get(push_token=PHONE)
    assert (row.attempts, row.sent, row.wanted, row.last_error) == (0, 1, 1, "")
    assert [p.token for p in apns.pushes].count(PHONE) == 2


async def test_a_push_is_given_up_after_the_retry_horizon(
    app_http: tuple[AppleWalletParts, httpx.AsyncClient], apns: ApnsFake, apns_client: ApnsClient, clock: FrozenClock
) -> None:
    parts, http = app_http
    updates = AppleUpdates(apns_client, retry_hours=1)
    anna, _, _ = await _installed(parts, http, "uid-anna", {"phone": PHONE})
    apns.answers = {PHONE: 503}
    await give_available(anna.id, 10, key="a")
    await drain_once([updates])
    for _ in range(8):
        clock.advance(timedelta(hours=1))
        await drain_once([updates])
    row = await WalletPush.get(push_token=PHONE)
    assert (row.sent == row.wanted, row.attempts, row.last_status_code) == (True, 0, 503)
    assert await WalletRegistration.all().count() == 1


class CountingPushes:
    def __init__(self) -> None:
        self.pushed: list[str] = []

    async def push(self, push_token: str) -> PushResult:
        await asyncio.sleep(0.001)
        self.pushed.append(push_token)
        return PushResult(PushOutcome.SENT, 200, "")

    async def aclose(self) -> None:
        return None


@pytest.mark.postgres_only
async def test_concurrent_workers_push_each_device_once(db: str, program: Program, clock: FrozenClock) -> None:
    # given 300 devices owed a push
    now = clock.now()
    await WalletPush.bulk_create(
        [WalletPush(push_token=f"{n:064x}", wanted=1, sent=0, next_attempt_at=now, created_at=now) for n in range(300)]
    )
    pushes = CountingPushes()

    # when three workers deliver at once, in small batches
    workers = [AppleUpdates(pushes, batch_size=20) for _ in range(3)]
    attempts = await asyncio.gather(*(w.deliver_due(None) for w in workers))

    # then every device got exactly one push
    assert sum(attempts) == 300
    assert sorted(pushes.pushed) == [f"{n:064x}" for n in range(300)]
    assert await WalletPush.filter(sent=1).count() == 300
