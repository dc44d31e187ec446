"""Google's side of the save/delete callbacks, for the fake and the tests: a root key, an intermediate key it signs,
messages signed with that (ECv2SigningOnly, as Google signs them). Development trusts its root key; production
trusts only Google's (`KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wallet.google.callbacks import PROTOCOL, SENDER_ID, length_value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _millis(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass
class GoogleSigner:
    root: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    intermediate: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def keys_json(self, expires: datetime | None = None) -> str:
        entry: dict[str, object] = {"keyValue": _b64(_spki(self.root)), "protocolVersion": PROTOCOL}
        if expires is not None:
            entry["keyExpiration"] = str(_millis(expires))
        return json.dumps({"keys": [entry]})

    def callback(
        self,
        *,
        issuer_id: str,
        class_id: str,
        object_id: str,
        event_type: str,
        nonce: str,
        now: datetime,
        message_ttl: timedelta = timedelta(minutes=5),
        key_ttl: timedelta = timedelta(days=7),
        recipient: str | None = None,
        root: ec.EllipticCurvePrivateKey | None = None,
    ) -> bytes:
        signed_key = json.dumps(
            {"keyValue": _b64(_spki(self.intermediate)), "keyExpiration": str(_millis(now + key_ttl))}
        )
        key_signature = (root or self.root).sign(
            length_value(SENDER_ID, PROTOCOL, signed_key), ec.ECDSA(hashes.SHA256())
        )
        message = json.dumps(
            {
                "classId": class_id,
                "objectId": object_id,
                "expTimeMillis": _millis(now + message_ttl),
                "eventType": event_type,
                "nonce": nonce,
            }
        )
        signature = self.intermediate.sign(
            length_value(SENDER_ID, recipient or issuer_id, PROTOCOL, message), ec.ECDSA(hashes.SHA256())
        )
        return json.dumps(
            {
                "signature": _b64(signature),
                "intermediateSigningKey": {"signedKey": signed_key, "signatures": [_b64(key_signature)]},
                "protocolVersion": PROTOCOL,
                "signedMessage": message,
            }
        ).encode()
