"""Google's save/delete callbacks: verified (ECv2SigningOnly), deduplicated by nonce, turned into the shared
install/remove state; anything else is a 4xx with nothing written. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from loyalty import wallet
from loyalty.clock import FrozenClock
from loyalty.models import EngagementRule, GoogleWalletCallback, GoogleWalletObject, Member, OutboxEvent, WalletPass
from loyalty.wallet import card_in_wallet
from tests.loyalty.ledger_helpers import balances
from tests.wallet.google.conftest import ISSUER
from wallet.google.callbacks import CallbackRefused, handle_callback, length_value, root_keys
from wallet.google.config import GoogleWalletConfig
from wallet.google.signer import GoogleSigner
from wallet.google.sync import ensure_object

CLASS_ID = f"{ISSUER}.klubb"


@pytest.fixture
def signer() -> GoogleSigner:
    return GoogleSigner()


@pytest.fixture
async def anna_object(anna: Member, google_config: GoogleWalletConfig, clock: FrozenClock) -> GoogleWalletObject:
    return await ensure_object(google_config, anna, clock.now())


async def _handle(body: bytes, signer: GoogleSigner, clock: FrozenClock):  # type: ignore[no-untyped-def]
    return await handle_callback(
        body, issuer_id=ISSUER, class_id=CLASS_ID, roots=root_keys(signer.keys_json(), clock.now()), now=clock.now()
    )


def _body(
    signer: GoogleSigner, clock: FrozenClock, object_id: str, event: str = "save", nonce: str = "n1", **kw: object
) -> bytes:
    return signer.callback(
        issuer_id=ISSUER,
        class_id=CLASS_ID,
        object_id=object_id,
        event_type=event,
        nonce=nonce,
        now=clock.now(),
        **kw,  # type: ignore[arg-type]
    )


def test_length_value_is_little_endian_length_then_bytes() -> None:
    assert length_value("ab", "") == b"\x02\x00\x00\x00ab\x00\x00\x00\x00"


async def test_a_save_marks_the_card_in_wallet_once_and_a_delete_removes_it(
    anna: Member, anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    outcome = await _handle(_body(signer, clock, anna_object.object_id), signer, clock)

    assert (outcome.event_type, outcome.changed) == ("save", True)
    assert (await card_in_wallet(anna.id)).google is True
    row = await GoogleWalletObject.get(id=anna_object.id)
    assert (row.inserted, row.wanted) == (True, 1)  # Google has it; a sync brings it up to date
    # Google delivers the same callback again: nothing more happens
    again = await _handle(_body(signer, clock, anna_object.object_id), signer, clock)
    assert again.changed is False
    assert await OutboxEvent.filter(type="wallet.added").count() == 1

    removed = await _handle(_body(signer, clock, anna_object.object_id, "del", "n2"), signer, clock)

    assert (removed.event_type, removed.changed) == ("del", True)
    assert (await card_in_wallet(anna.id)).google is False
    assert await OutboxEvent.filter(type="wallet.removed").count() == 1
    assert sorted(await GoogleWalletCallback.all().values_list("nonce", flat=True)) == ["n1", "n2"]


async def _refused(body: bytes, signer: GoogleSigner, clock: FrozenClock) -> tuple[int, str]:
    with pytest.raises(CallbackRefused) as refused:
        await _handle(body, signer, clock)
    # nothing written
    assert await GoogleWalletCallback.all().count() == 0
    assert await WalletPass.all().count() == 0
    assert await OutboxEvent.filter(type__in=["wallet.added", "wallet.removed"]).count() == 0
    return refused.value.status, refused.value.reason


async def test_a_message_signed_by_another_key_is_refused(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    impostor = ec.generate_private_key(ec.SECP256R1())
    body = _body(signer, clock, anna_object.object_id, root=impostor)

    assert await _refused(body, signer, clock) == (
        401,
        "the intermediate signing key is not signed by a Google root key",
    )


async def test_a_message_for_another_issuer_is_refused(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    body = _body(signer, clock, anna_object.object_id, recipient="999")

    assert await _refused(body, signer, clock) == (401, "the message signature does not verify")


async def test_a_tampered_message_is_refused(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    envelope = json.loads(_body(signer, clock, anna_object.object_id))
    envelope["signedMessage"] = envelope["signedMessage"].replace('"save"', '"del"')

    assert await _refused(json.dumps(envelope).encode(), signer, clock) == (
        401,
        "the message signature does not verify",
    )


async def test_expired_messages_and_keys_are_refused(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    old_message = _body(signer, clock, anna_object.object_id, message_ttl=timedelta(seconds=-1))
    old_key = _body(signer, clock, anna_object.object_id, key_ttl=timedelta(seconds=-1))

    assert await _refused(old_message, signer, clock) == (401, "the message has expired")
    assert await _refused(old_key, signer, clock) == (401, "the intermediate signing key has expired")


async def test_unknown_objects_and_other_classes_are_404(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    unknown = _body(signer, clock, f"{ISSUER}.member-0000000000")
    other_class = signer.callback(
        issuer_id=ISSUER,
        class_id=f"{ISSUER}.other",
        object_id=anna_object.object_id,
        event_type="save",
        nonce="n1",
        now=clock.now(),
    )

    assert await _refused(unknown, signer, clock) == (404, "unknown object")
    assert await _refused(other_class, signer, clock) == (404, "not our class")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", (400, "callback body is not JSON")),
        (b"[]", (400, "callback body is not a JSON object")),
        (b'{"protocolVersion": "ECv2"}', (400, "unsupported protocolVersion")),
        (b'{"protocolVersion": "ECv2SigningOnly"}', (400, "intermediateSigningKey missing")),
        (
            b'{"protocolVersion": "ECv2SigningOnly", "intermediateSigningKey": {"signedKey": "{}", "signatures": []},'
            b' "signedMessage": "{}", "signature": "AA=="}',
            (400, "intermediateSigningKey.signatures missing"),
        ),
        (
            b'{"protocolVersion": "ECv2SigningOnly", "intermediateSigningKey": {"signedKey": "{}",'
            b' "signatures": ["%%%"]}, "signedMessage": "{}", "signature": "AA=="}',
            (400, "a base64 field does not decode"),
        ),
        (b"x" * 20_000, (413, "callback body too large")),
    ],
)
async def test_malformed_bodies_are_400(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock, body: bytes, expected: tuple[int, str]
) -> None:
    assert await _refused(body, signer, clock) == expected


async def test_a_bad_event_type_is_refused_even_when_signed(
    anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    body = _body(signer, clock, anna_object.object_id, event="update")

    assert await _refused(body, signer, clock) == (400, "unknown eventType")


def test_expired_root_keys_and_other_protocols_are_not_trusted(signer: GoogleSigner, clock: FrozenClock) -> None:
    assert root_keys(signer.keys_json(expires=clock.now() - timedelta(seconds=1)), clock.now()) == []
    assert len(root_keys(signer.keys_json(expires=clock.now() + timedelta(days=1)), clock.now())) == 1
    assert root_keys(json.dumps({"keys": [{"keyValue": "AA==", "protocolVersion": "ECv1"}]}), clock.now()) == []


async def test_saving_is_rewarded_once_by_the_programs_engagement_rule(
    anna: Member, anna_object: GoogleWalletObject, signer: GoogleSigner, clock: FrozenClock
) -> None:
    # given a program rewarding a card added to a wallet
    await EngagementRule.create(event_type=wallet.ADDED_ENGAGEMENT, points=50)

    # when the member saves the card, deletes it, and saves it again
    for nonce, event in (("n1", "save"), ("n2", "del"), ("n3", "save")):
        await _handle(_body(signer, clock, anna_object.object_id, event, nonce), signer, clock)

    # then the points came once, and the events say which wallet
    assert await balances(anna.id) == (50, 0, 50)
    added = await OutboxEvent.filter(type="wallet.added").values_list("payload", flat=True)
    assert [(p["platform"], p["member_id"]) for p in added] == [("google", anna.id), ("google", anna.id)]
    assert await wallet.card_in_wallet(anna.id) == wallet.CardInWallet(apple=False, google=True)
