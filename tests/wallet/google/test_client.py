"""The Google Wallet REST client against the fake: OAuth, resources, backoff on 429/5xx, the rate cap; the save JWT
verified with the service account's public key; the class and object JSON."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.routing import Mount

from loyalty.wallet import PassContent
from tests.wallet.google.conftest import ISSUER, Sleeps
from wallet.google import objects, save_link
from wallet.google.client import GoogleWalletClient, GoogleWalletRejected, GoogleWalletUnavailable, RateLimiter
from wallet.google.config import FAKE_PREFIX, GoogleWalletConfig, GoogleWalletCredentialsError, ServiceAccount
from wallet.google.fake import FakeGoogleWallet

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LOOK = objects.ClassLook.of("Test Club", "", "rgb(31, 41, 55)")
SHOWN = PassContent(
    member_id=9,
    member_number="1000000009",
    display_name="Anna",
    points_available=600,
    points_pending=100,
    tier_name="Silver",
    next_tier_name="Gold",
    remaining_to_next=1320,
    progress=0.3,
    expiring_points=0,
    expiring_at=None,
)
CONTENT = objects.CardContent(SHOWN, totp_key_base16="3132333435363738393031323334353637383930", code_seconds=60)


def test_the_loyalty_object_carries_account_points_tier_and_the_rotating_barcode(
    google_config: GoogleWalletConfig,
) -> None:
    assert objects.loyalty_object(google_config, CONTENT) == {
        "id": f"{ISSUER}.member-1000000009",
        "classId": f"{ISSUER}.klubb",
        "state": "ACTIVE",
        "accountId": "1000000009",
        "accountName": "Anna",
        "loyaltyPoints": {"label": "Points", "balance": {"int": 600}},
        "secondaryLoyaltyPoints": {"label": "Pending", "balance": {"int": 100}},
        "textModulesData": [
            {"id": "tier", "header": "Tier", "body": "Silver"},
            {"id": "progress", "header": "Next tier", "body": "1,320 points to Gold"},
        ],
        "rotatingBarcode": {
            "type": "QR_CODE",
            "valuePattern": "1000000009{totp_value_0}",
            "alternateText": "1000000009",
            "totpDetails": {
                "periodMillis": "60000",
                "algorithm": "TOTP_SHA1",
                "parameters": [{"key": "3132333435363738393031323334353637383930", "valueLength": 6}],
            },
        },
    }


def test_the_loyalty_class_names_the_program_and_the_callback(google_config: GoogleWalletConfig) -> None:
    assert objects.loyalty_class(google_config, LOOK) == {
        "id": f"{ISSUER}.klubb",
        "issuerName": "Test Club",
        "programName": "Test Club",
        "reviewStatus": "UNDER_REVIEW",
        "hexBackgroundColor": "#1f2937",
        "multipleDevicesAndHoldersAllowedStatus": "ONE_USER_ALL_DEVICES",
        "callbackOptions": {"url": "https://klubb.example.com/wallet/google/callback"},
    }


def test_the_class_look_comes_from_the_program_and_the_pass_design() -> None:
    assert objects.ClassLook.of("Test Club", "Test AB", "rgb(255, 0, 16)") == objects.ClassLook(
        "Test Club", "Test AB", "#ff0010"
    )
    assert objects.hex_color("#A0B1C2") == "#a0b1c2"
    for bad in ("rgb(256, 0, 0)", "rgb(1, 2)", "red", "rgb(a, b, c)"):
        assert objects.hex_color(bad) == "#202124"


def test_the_top_tier_says_so() -> None:
    shown = dataclasses.replace(SHOWN, tier_name="Gold", next_tier_name=None, remaining_to_next=None, progress=1.0)
    top = objects.CardContent(shown, "AA", 60)

    assert top.progress_text == "Top tier reached"


def test_points_expiring_soon_add_a_text_module_with_the_amount_and_the_day() -> None:
    shown = dataclasses.replace(SHOWN, expiring_points=1200, expiring_at=datetime(2026, 3, 31, 23, 30, tzinfo=UTC))

    fields = objects.mutable_fields(objects.CardContent(shown, "AA", 60))

    assert fields["textModulesData"] == [
        {"id": "tier", "header": "Tier", "body": "Silver"},
        {"id": "progress", "header": "Next tier", "body": "1,320 points to Gold"},
        {"id": "expiring", "header": "Expiring soon", "body": "1,200 points expire on 2026-03-31"},
    ]
    # nothing expiring (or no expiry known): no module
    for quiet in (dataclasses.replace(shown, expiring_points=0), dataclasses.replace(shown, expiring_at=None)):
        assert objects.CardContent(quiet, "AA", 60).expiring_text is None


def test_the_save_jwt_verifies_with_the_service_accounts_public_key(google_config: GoogleWalletConfig) -> None:
    resource = objects.loyalty_object(google_config, CONTENT)

    url = save_link.save_url(google_config, save_link.inline_payload(resource), NOW)

    token = url.removeprefix(google_config.save_base)
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT", "kid": "test-key-1"}
    claims = jwt.decode(token, google_config.account.public_key_pem(), algorithms=["RS256"], audience="google")
    assert claims == {
        "iss": "wallet@klubb-test.iam.gserviceaccount.com",
        "aud": "google",
        "typ": "savetowallet",
        "iat": int(NOW.timestamp()),
        "origins": ["https://klubb.example.com"],
        "payload": {"loyaltyObjects": [resource]},
    }


def test_a_save_jwt_does_not_verify_with_another_key(google_config: GoogleWalletConfig) -> None:
    other = GoogleWalletConfig(issuer_id=ISSUER, account=ServiceAccount.from_json(_other_account()))
    token = save_link.save_jwt(other, save_link.link_payload_by_id("x.y", "x.z"), NOW)

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, google_config.account.public_key_pem(), algorithms=["RS256"], audience="google")


def _other_account() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return json.dumps({"client_email": "other@example.com", "private_key": pem.decode()})


def test_an_inline_link_that_is_too_long_is_not_made(google_config: GoogleWalletConfig) -> None:
    resource = objects.loyalty_object(google_config, CONTENT)
    short = GoogleWalletConfig(issuer_id=ISSUER, account=google_config.account, max_save_url_length=500)

    assert save_link.inline_save_url(short, resource, NOW) is None
    inline = save_link.save_url(google_config, save_link.inline_payload(resource), NOW)
    assert save_link.inline_save_url(google_config, resource, NOW) == inline
    assert len(inline) < google_config.max_save_url_length


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not a service account key file: JSONDecodeError"),
        ("{}", "not a service account key file: KeyError"),
        (
            '{"client_email": "a@b", "private_key": "nope"}',
            "the service account's private_key is not a PEM private key",
        ),
        ('{"client_email": "", "private_key": "x"}', "a service account key file needs client_email, private_key"),
    ],
)
def test_bad_service_account_files_are_refused(text: str, message: str) -> None:
    with pytest.raises(GoogleWalletCredentialsError) as refused:
        ServiceAccount.from_json(text)

    assert str(refused.value) == message


async def test_the_client_authenticates_and_inserts_then_patches(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig
) -> None:
    resource = objects.loyalty_object(google_config, CONTENT)

    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))
    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))  # once per client
    assert await google_client.insert_object(resource) is True
    assert await google_client.insert_object(resource) is False  # 409: already there
    assert await google_client.patch_object(resource["id"], {"loyaltyPoints": {"balance": {"int": 700}}}) is True
    assert await google_client.patch_object(f"{ISSUER}.unknown", {}) is False

    assert [(r.method, r.path) for r in fake_google.requests] == [
        ("POST", "/token"),
        ("POST", "/walletobjects/v1/loyaltyClass"),
        ("POST", "/walletobjects/v1/loyaltyObject"),
        ("POST", "/walletobjects/v1/loyaltyObject"),
        ("PATCH", f"/walletobjects/v1/loyaltyObject/{ISSUER}.member-1000000009"),
        ("PATCH", f"/walletobjects/v1/loyaltyObject/{ISSUER}.unknown"),
    ]
    assert fake_google.objects[resource["id"]]["loyaltyPoints"] == {"balance": {"int": 700}}
    assert fake_google.objects[resource["id"]]["version"] == "2"


async def test_429_and_500_are_retried_with_growing_backoff(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig, sleeps: Sleeps
) -> None:
    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))
    fake_google.failures.extend([429, 500, 503])

    assert await google_client.insert_object(objects.loyalty_object(google_config, CONTENT)) is True

    assert [r.path for r in fake_google.requests[-4:]] == ["/walletobjects/v1/loyaltyObject"] * 4
    assert len(sleeps.delays) == 3
    # jittered exponential backoff: attempt n waits between half and all of 0.5 s * 2**n
    for attempt, delay in enumerate(sleeps.delays):
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


async def test_retry_after_is_honoured_up_to_the_cap(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig, sleeps: Sleeps
) -> None:
    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))

    fake_google.failures.append(429)
    fake_google.retry_after = "120"

    assert await google_client.insert_object(objects.loyalty_object(google_config, CONTENT)) is True

    assert sleeps.delays == [30.0]  # 120 s asked, capped at max_delay


async def test_after_every_attempt_failed_the_client_gives_up(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig, sleeps: Sleeps
) -> None:
    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))
    fake_google.failures.extend([500] * 5)

    with pytest.raises(GoogleWalletUnavailable) as failed:
        await google_client.patch_object(f"{ISSUER}.member-1000000009", {})

    assert failed.value.status == 500
    assert len(sleeps.delays) == 4
    assert fake_google.objects == {}


async def test_a_4xx_is_not_retried(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig, sleeps: Sleeps
) -> None:
    await google_client.ensure_class(objects.loyalty_class(google_config, LOOK))
    fake_google.failures.append(400)

    with pytest.raises(GoogleWalletRejected) as rejected:
        await google_client.insert_object(objects.loyalty_object(google_config, CONTENT))

    assert rejected.value.status == 400
    assert sleeps.delays == []


async def test_the_rate_limiter_spaces_requests_to_twenty_a_second() -> None:
    clock = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 6))

    limiter = RateLimiter(20.0, monotonic=lambda: clock[0], sleep=sleep)

    for _ in range(5):
        await limiter.acquire()

    assert waits == [0.05, 0.1, 0.15, 0.2]  # the first goes at once, then one slot every 50 ms
    clock[0] += 1.0  # a second later the backlog has drained
    await limiter.acquire()
    assert waits == [0.05, 0.1, 0.15, 0.2]


async def test_the_client_under_load_stays_under_twenty_requests_a_second(
    google_config: GoogleWalletConfig, fake_google: FakeGoogleWallet
) -> None:
    transport = httpx.ASGITransport(app=Starlette(routes=[Mount(FAKE_PREFIX, fake_google.app())]))
    client = GoogleWalletClient(google_config, transport=transport)  # the real limiter and sleep
    try:
        await client.ensure_class(objects.loyalty_class(google_config, LOOK))
        started = time.monotonic()
        await asyncio.gather(*(client.patch_object(f"{ISSUER}.o{i}", {}) for i in range(10)))
        elapsed = time.monotonic() - started
    finally:
        await client.aclose()

    assert len(fake_google.api_requests()) == 11
    assert elapsed >= 9 * 0.05 - 0.01  # ten requests need nine 50 ms gaps at least


async def test_concurrent_callers_insert_the_class_once(
    google_client: GoogleWalletClient, fake_google: FakeGoogleWallet, google_config: GoogleWalletConfig
) -> None:
    await asyncio.gather(*(google_client.ensure_class(objects.loyalty_class(google_config, LOOK)) for _ in range(5)))

    assert [(r.method, r.path) for r in fake_google.requests] == [
        ("POST", "/token"),
        ("POST", "/walletobjects/v1/loyaltyClass"),
    ]


def test_the_service_account_key_is_loaded_once(google_config: GoogleWalletConfig) -> None:
    assert google_config.account.private_key is google_config.account.private_key
