"""Google Wallet's save and delete callbacks: `POST /wallet/google/callback` (the class's `callbackOptions.url`).

Google signs each callback with its ECv2SigningOnly scheme (what Tink's `PaymentMethodTokenRecipient` verifies;
sender "GooglePayPasses", recipient our issuer id):

    {"protocolVersion": "ECv2SigningOnly", "signature": b64(ECDSA-SHA256 DER),
     "intermediateSigningKey": {"signedKey": "{\"keyValue\": b64(DER SPKI P-256), \"keyExpiration\": \"<ms>\"}",
                                "signatures": [b64(ECDSA-SHA256 DER), …]},
     "signedMessage": "{\"classId\", \"objectId\", \"expTimeMillis\", \"eventType\": \"save\"|\"del\", \"nonce\"}"}

- the intermediate key is signed by one of Google's root signing keys over LV("GooglePayPasses", protocol,
  signedKey) and must not have expired;
- the message is signed by the intermediate key over LV("GooglePayPasses", issuerId, protocol, signedMessage)
  and must not have expired (`expTimeMillis`);
- LV(…) is each part's UTF-8 bytes preceded by its length as 4 bytes little-endian.

The root keys are configuration (`KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE`: the JSON Google serves at
https://pay.google.com/gp/m/issuer/keys; klubb does not fetch it at run time). A callback that fails any check,
names another class or an object we never made answers 4xx and writes nothing. A valid one records its nonce
(Google may deliver twice) and becomes the shared install/remove state (`loyalty.wallet.set_installed`: the
`wallet.added` / `wallet.removed` events and their once-per-member engagement reward); a save also marks the object
as Google's and asks for a sync, so the saved card shows the current state.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from loyalty.models import GoogleWalletCallback, GoogleWalletObject, WalletPlatform
from loyalty.wallet import ensure_pass, set_installed
from wallet.google.sync import request_sync

SENDER_ID = "GooglePayPasses"
PROTOCOL = "ECv2SigningOnly"
EVENT_TYPES = frozenset({"save", "del"})
MAX_BODY_BYTES = 16 * 1024
MAX_NONCE = 128


class CallbackRefused(Exception):
    """A callback we do not act on; `status` is the HTTP answer (400 malformed, 401 bad signature, 404 unknown)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CallbackMessage:
    class_id: str
    object_id: str
    event_type: str  # "save" or "del"
    nonce: str
    expires_at_ms: int


def length_value(*parts: str) -> bytes:
    """Tink's signed-string encoding: each part's UTF-8 bytes after its length (4 bytes, little-endian)."""
    out = bytearray()
    for part in parts:
        data = part.encode()
        out += len(data).to_bytes(4, "little") + data
    return bytes(out)


def _b64(value: object) -> bytes:
    if not isinstance(value, str):
        raise CallbackRefused(400, "a base64 field is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CallbackRefused(400, "a base64 field does not decode") from None


def _ec_key(der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(der)
    except ValueError:
        raise CallbackRefused(400, "a signing key is not a DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise CallbackRefused(400, "a signing key is not ECDSA P-256")
    return key


def _verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _json_object(text: object, what: str) -> dict[str, Any]:
    if not isinstance(text, str):
        raise CallbackRefused(400, f"{what} is not a string")
    try:
        value = json.loads(text)
    except ValueError:
        raise CallbackRefused(400, f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise CallbackRefused(400, f"{what} is not a JSON object")
    return value


def _millis(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise CallbackRefused(400, f"{what} is not a time in milliseconds")
    return int(value)


def root_keys(keys_json: str, now: datetime) -> list[ec.EllipticCurvePublicKey]:
    """Google's unexpired ECv2SigningOnly root keys from the JSON it serves (`{"keys": [{"keyValue", …}]}`)."""
    document = _json_object(keys_json, "the root keys document")
    keys = []
    for entry in document.get("keys", []):
        if not isinstance(entry, dict) or entry.get("protocolVersion") != PROTOCOL:
            continue
        expiration = entry.get("keyExpiration")
        if expiration is not None and _millis(expiration, "keyExpiration") <= now.timestamp() * 1000:
            continue
        keys.append(_ec_key(_b64(entry.get("keyValue"))))
    return keys


def verify_callback(
    body: bytes, *, issuer_id: str, roots: list[ec.EllipticCurvePublicKey], now: datetime
) -> CallbackMessage:
    """The verified message of a callback body, or `CallbackRefused`."""
    if len(body) > MAX_BODY_BYTES:
        raise CallbackRefused(413, "callback body too large")
    try:
        envelope = json.loads(body)
    except ValueError:
        raise CallbackRefused(400, "callback body is not JSON") from None
    if not isinstance(envelope, dict):
        raise CallbackRefused(400, "callback body is not a JSON object")
    if envelope.get("protocolVersion") != PROTOCOL:
        raise CallbackRefused(400, "unsupported protocolVersion")
    intermediate = envelope.get("intermediateSigningKey")
    if not isinstance(intermediate, dict):
        raise CallbackRefused(400, "intermediateSigningKey missing")
    signed_key = intermediate.get("signedKey")
    signatures = intermediate.get("signatures")
    signed_message = envelope.get("signedMessage")
    if not isinstance(signed_key, str) or not isinstance(signed_message, str):
        raise CallbackRefused(400, "signedKey or signedMessage missing")
    if not isinstance(signatures, list) or not signatures:
        raise CallbackRefused(400, "intermediateSigningKey.signatures missing")
    key_data = length_value(SENDER_ID, PROTOCOL, signed_key)
    decoded = [_b64(s) for s in signatures]
    if not any(_verifies(root, sig, key_data) for root in roots for sig in decoded):
        raise CallbackRefused(401, "the intermediate signing key is not signed by a Google root key")
    key_document = _json_object(signed_key, "signedKey")
    if _millis(key_document.get("keyExpiration"), "keyExpiration") <= now.timestamp() * 1000:
        raise CallbackRefused(401, "the intermediate signing key has expired")
    intermediate_key = _ec_key(_b64(key_document.get("keyValue")))
    message_data = length_value(SENDER_ID, issuer_id, PROTOCOL, signed_message)
    if not _verifies(intermediate_key, _b64(envelope.get("signature")), message_data):
        raise CallbackRefused(401, "the message signature does not verify")
    message = _json_object(signed_message, "signedMessage")
    expires = _millis(message.get("expTimeMillis"), "expTimeMillis")
    if expires <= now.timestamp() * 1000:
        raise CallbackRefused(401, "the message has expired")
    fields = [message.get(k) for k in ("classId", "objectId", "eventType", "nonce")]
    if not all(isinstance(f, str) and f for f in fields):
        raise CallbackRefused(400, "classId, objectId, eventType and nonce are required")
    class_id, object_id, event_type, nonce = (str(f) for f in fields)
    if event_type not in EVENT_TYPES:
        raise CallbackRefused(400, "unknown eventType")
    if len(nonce) > MAX_NONCE or len(object_id) > 200:
        raise CallbackRefused(400, "nonce or objectId too long")
    return CallbackMessage(class_id, object_id, event_type, nonce, expires)


@dataclass(frozen=True)
class CallbackOutcome:
    object_id: str
    event_type: str
    changed: bool  # the install state moved (False: a duplicate, or already in that state)


async def handle_callback(
    body: bytes, *, issuer_id: str, class_id: str, roots: list[ec.EllipticCurvePublicKey], now: datetime
) -> CallbackOutcome:
    """Verify and apply one callback; `CallbackRefused` (nothing written) for anything we do not act on."""
    message = verify_callback(body, issuer_id=issuer_id, roots=roots, now=now)
    if message.class_id != class_id:
        raise CallbackRefused(404, "not our class")
    row = await GoogleWalletObject.get_or_none(object_id=message.object_id)
    if row is None:
        raise CallbackRefused(404, "unknown object")
    if await GoogleWalletCallback.exists(nonce=message.nonce):
        return CallbackOutcome(message.object_id, message.event_type, changed=False)
    saved = message.event_type == "save"
    wallet_pass = await ensure_pass(row.member_id, WalletPlatform.GOOGLE)
    changed = await set_installed(wallet_pass, saved)
    try:
        async with in_transaction() as conn:
            await GoogleWalletCallback.create(
                nonce=message.nonce,
                object_id=message.object_id,
                event_type=message.event_type,
                received_at=now,
                using_db=conn,
            )
            if saved:
                await GoogleWalletObject.filter(id=row.id).using_db(conn).update(inserted=True)
                await request_sync(conn, [row.member_id], now)
    except IntegrityError:  # the same callback delivered twice at once: the other delivery recorded it
        pass
    return CallbackOutcome(message.object_id, message.event_type, changed=changed)
