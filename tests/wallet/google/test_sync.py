"""Google Wallet sync and save links on the database (SQLite and PostgreSQL) against the REST fake."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import timedelta
from typing import Any

import jwt
import pytest

from loyalty import card
from loyalty.clock import FrozenClock
from loyalty.lookup import find_member
from loyalty.members import enroll_member
from loyalty.models import GoogleWalletObject, Member, Program
from loyalty.wallet import pass_content
from tests.loyalty import ledger_helpers
from tests.wallet.google.conftest import ISSUER, Sleeps
from wallet.google import objects
from wallet.google.client import GoogleWalletClient
from wallet.google.config import GoogleWalletConfig
from wallet.google.fake import FakeGoogleWallet
from wallet.google.links import google_save_url
from wallet.google.sync import GoogleWalletSync, card_content
from worker.dispatch import dispatch_pending

OBJECT_ID = f"{ISSUER}.member-{{}}"


def _claims(url: str, config: GoogleWalletConfig) -> dict[str, object]:
    token = url.removeprefix(config.save_base)
    return jwt.decode(token, config.account.public_key_pem(), algorithms=["RS256"], audience="google")


async def _earn(member: Member, receipt: str, total: int, clock: FrozenClock) -> None:
    await ledger_helpers.earn_for_purchase(
        member.id, store_code="S1", receipt_id=receipt, occurred_at=clock.now(), currency="EUR", total=total
    )


async def _drain(sync: GoogleWalletSync) -> int:
    await dispatch_pending([sync])
    return await sync.deliver_due(None)


async def test_the_save_link_inlines_the_object_and_verifies(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    clock: FrozenClock,
) -> None:
    url = await google_save_url(google_config, google_client, anna.id, clock.now())

    assert url is not None
    claims = _claims(url, google_config)
    assert claims["typ"] == "savetowallet"
    assert claims["iss"] == "wallet@klubb-test.iam.gserviceaccount.com"
    assert claims["origins"] == ["https://klubb.example.com"]
    [resource] = claims["payload"]["loyaltyObjects"]  # type: ignore[index]
    assert resource["id"] == OBJECT_ID.format(anna.member_number)
    assert resource["accountId"] == anna.member_number
    assert resource["rotatingBarcode"]["totpDetails"]["parameters"] == [
        {"key": anna.card_secret.upper(), "valueLength": 6}
    ]
    # only the class went to Google (named after the program, coloured as the pass design says); the object waits
    # for the member to save the link
    assert [(r.method, r.path) for r in fake_google.api_requests()] == [("POST", "/walletobjects/v1/loyaltyClass")]
    [inserted] = fake_google.classes.values()
    assert (inserted["programName"], inserted["issuerName"], inserted["hexBackgroundColor"]) == (
        "Test Club",
        "Test Club",
        "#202124",
    )
    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.object_id, row.inserted, row.wanted, row.synced) == (OBJECT_ID.format(anna.member_number), False, 0, 0)


async def test_a_link_too_long_inserts_the_object_first_and_links_by_id(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    clock: FrozenClock,
) -> None:
    short = dataclasses.replace(google_config, max_save_url_length=1000)

    url = await google_save_url(short, google_client, anna.id, clock.now())

    assert url is not None
    object_id = OBJECT_ID.format(anna.member_number)
    assert _claims(url, short)["payload"] == {"loyaltyObjects": [{"id": object_id, "classId": f"{ISSUER}.klubb"}]}
    assert len(url) < 1000
    assert fake_google.objects[object_id]["loyaltyPoints"] == {"label": "Points", "balance": {"int": 0}}
    assert (await GoogleWalletObject.get(member_id=anna.id)).inserted is True

    # asked again: the object exists (409) and is brought up to date instead
    assert await google_save_url(short, google_client, anna.id, clock.now()) is not None
    assert [(r.method, r.path) for r in fake_google.api_requests()][-2:] == [
        ("POST", "/walletobjects/v1/loyaltyObject"),
        ("PATCH", f"/walletobjects/v1/loyaltyObject/{object_id}"),
    ]


async def test_an_earn_patches_the_saved_object_once(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    google_sync: GoogleWalletSync,
    clock: FrozenClock,
) -> None:
    # given the member saved their card (the object is at Google)
    object_id = OBJECT_ID.format(anna.member_number)
    short = dataclasses.replace(google_config, max_save_url_length=1000)
    await google_save_url(short, google_client, anna.id, clock.now())
    before = len(fake_google.api_requests())

    # when two purchases earn points (a burst: one sync)
    await _earn(anna, "R1", 60_000, clock)
    await _earn(anna, "R2", 8_000, clock)
    assert await _drain(google_sync) == 1

    # then one PATCH carried the new state, and told the holder
    [patch] = fake_google.api_requests()[before:]
    assert (patch.method, patch.path) == ("PATCH", f"/walletobjects/v1/loyaltyObject/{object_id}")
    assert patch.body["secondaryLoyaltyPoints"] == {"label": "Pending", "balance": {"int": 700}}  # 600 + 80 at Silver
    assert patch.body["textModulesData"][0] == {"id": "tier", "header": "Tier", "body": "Silver"}
    assert patch.body["notifyPreference"] == "NOTIFY_ON_UPDATE"
    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.wanted, row.synced, row.attempts, row.notify_count, row.locked_until) == (1, 1, 0, 1, None)
    # and nothing more is due
    assert await _drain(google_sync) == 0


async def test_a_link_never_saved_costs_one_404_and_is_not_inserted(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    google_sync: GoogleWalletSync,
    clock: FrozenClock,
) -> None:
    await google_save_url(google_config, google_client, anna.id, clock.now())  # inline: nothing inserted

    await _earn(anna, "R1", 5_000, clock)
    assert await _drain(google_sync) == 1

    assert [(r.method, r.path) for r in fake_google.api_requests()][-1] == (
        "PATCH",
        f"/walletobjects/v1/loyaltyObject/{OBJECT_ID.format(anna.member_number)}",
    )
    assert fake_google.objects == {}
    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.inserted, row.synced, row.content_digest, row.last_status_code) == (False, 1, "", None)


async def test_429_is_retried_by_the_client_and_the_sync_succeeds(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    google_sync: GoogleWalletSync,
    clock: FrozenClock,
    sleeps: Sleeps,
) -> None:
    short = dataclasses.replace(google_config, max_save_url_length=1000)
    await google_save_url(short, google_client, anna.id, clock.now())
    await _earn(anna, "R1", 5_000, clock)
    fake_google.failures.extend([429, 429])

    assert await _drain(google_sync) == 1

    assert len(sleeps.delays) == 2
    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.synced, row.attempts, row.last_status_code) == (1, 0, 200)
    assert fake_google.objects[row.object_id]["secondaryLoyaltyPoints"]["balance"] == {"int": 50}


async def test_a_google_outage_backs_off_and_the_sync_is_retried_later(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    google_sync: GoogleWalletSync,
    clock: FrozenClock,
) -> None:
    short = dataclasses.replace(google_config, max_save_url_length=1000)
    await google_save_url(short, google_client, anna.id, clock.now())
    await _earn(anna, "R1", 5_000, clock)
    fake_google.failures.extend([500] * 5)  # every attempt of the client

    assert await _drain(google_sync) == 1

    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.synced, row.attempts, row.last_status_code, row.locked_until) == (0, 1, 500, None)
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert await google_sync.deliver_due(None) == 0  # not due yet

    clock.advance(timedelta(seconds=30))
    assert await google_sync.deliver_due(None) == 1
    row = await GoogleWalletObject.get(member_id=anna.id)
    assert (row.synced, row.attempts, row.last_status_code) == (1, 0, 200)
    assert fake_google.objects[row.object_id]["secondaryLoyaltyPoints"]["balance"] == {"int": 50}


async def test_at_most_three_notifications_per_pass_per_day(
    anna: Member,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    google_sync: GoogleWalletSync,
    clock: FrozenClock,
) -> None:
    short = dataclasses.replace(google_config, max_save_url_length=1000)
    await google_save_url(short, google_client, anna.id, clock.now())
    object_id = OBJECT_ID.format(anna.member_number)

    # five balance changes within a day, each synced
    for n in range(5):
        await _earn(anna, f"R{n}", 1_000, clock)
        clock.advance(timedelta(hours=1))
        await _drain(google_sync)

    patches = [r for r in fake_google.api_requests() if r.method == "PATCH"]
    assert len(patches) == 5
    assert [("notifyPreference" in p.body) for p in patches] == [True, True, True, False, False]
    assert fake_google.notifications == {object_id: 3}

    # a day after the first notification the allowance is back
    clock.advance(timedelta(hours=20))
    await _earn(anna, "R9", 1_000, clock)
    await _drain(google_sync)
    assert fake_google.notifications == {object_id: 4}


def _googles_code(resource: dict[str, Any], unix_seconds: int) -> str:
    """What Google's app shows for the rotating barcode: RFC 6238 from the object's own totpDetails."""
    barcode = resource["rotatingBarcode"]
    details = barcode["totpDetails"]
    assert details["algorithm"] == "TOTP_SHA1"
    [parameters] = details["parameters"]
    step = unix_seconds * 1000 // int(details["periodMillis"])
    value = card.hotp(bytes.fromhex(parameters["key"]), step, parameters["valueLength"])
    return str(barcode["valuePattern"]).replace("{totp_value_0}", value)


async def test_the_passs_rotating_barcode_opens_the_member_at_the_till_once(
    anna: Member,
    program: Program,
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    clock: FrozenClock,
) -> None:
    # given the object a save link carries
    url = await google_save_url(google_config, google_client, anna.id, clock.now())
    assert url is not None
    [resource] = _claims(url, google_config)["payload"]["loyaltyObjects"]  # type: ignore[index]

    # when the till scans what the phone shows now
    scanned = _googles_code(resource, int(clock.now().timestamp()))

    # then it is the app's code, it finds the member, and only once
    assert scanned == card.card_code(anna, clock.now(), program.card_code_seconds).barcode_value
    found = await find_member(scanned, program, clock.now())
    assert found is not None
    assert found.id == anna.id
    assert await find_member(scanned, program, clock.now()) is None
    # a phone whose clock is a minute ahead shows the next window's code: still accepted
    ahead = _googles_code(resource, int(clock.now().timestamp()) + program.card_code_seconds)
    assert (await find_member(ahead, program, clock.now())) is not None


@pytest.mark.postgres_only
async def test_two_workers_sync_each_object_once(
    google_config: GoogleWalletConfig,
    google_client: GoogleWalletClient,
    fake_google: FakeGoogleWallet,
    program: Program,
    clock: FrozenClock,
) -> None:
    # given twelve saved cards, each with a change to sync
    short = dataclasses.replace(google_config, max_save_url_length=1000)
    members = [(await enroll_member(f"uid-{n}", display_name=f"M{n}"))[0] for n in range(12)]
    for member in members:
        await google_save_url(short, google_client, member.id, clock.now())
    for n, member in enumerate(members):
        await _earn(member, f"R{n}", 1_000, clock)
    await dispatch_pending([GoogleWalletSync(google_config, google_client)])

    # when two consumers drain at once, in small batches
    first = GoogleWalletSync(google_config, google_client, batch_size=3)
    second = GoogleWalletSync(google_config, google_client, batch_size=3)
    attempts = await asyncio.gather(first.deliver_due(None), second.deliver_due(None))

    # then every object was synced exactly once
    assert sum(attempts) == 12
    patched = Counter(r.path for r in fake_google.api_requests() if r.method == "PATCH")
    assert len(patched) == 12
    assert set(patched.values()) == {1}
    assert await GoogleWalletObject.filter(synced=1, wanted=1).count() == 12


async def test_the_card_shows_what_the_apple_pass_shows_expiring_points_too(
    anna: Member, program: Program, clock: FrozenClock
) -> None:
    # given 120 available points, a year less three weeks later (inside the 30-day warning window)
    await ledger_helpers.give_available(anna.id, 120)
    expires = clock.now() + timedelta(days=365)
    clock.advance(timedelta(days=365 - 21))
    member = await Member.get(id=anna.id)

    # when the card is built
    content = await card_content(member, program, clock.now())

    # then it carries the one shared pass content (Apple's), the code's key and period
    assert content.shown == await pass_content(member, program, clock.now())
    assert (content.shown.expiring_points, content.shown.expiring_at) == (120, expires)
    assert (content.totp_key_base16, content.code_seconds) == (card.totp_key_base16(member), program.card_code_seconds)
    assert objects.mutable_fields(content)["textModulesData"][-1] == {
        "id": "expiring",
        "header": "Expiring soon",
        "body": f"120 points expire on {expires.date().isoformat()}",
    }
