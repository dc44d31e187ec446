"""The "save to Google Wallet" link: `https://pay.google.com/gp/v/save/<jwt>`.

The JWT is RS256, signed with the service account's key (`kid`: its key id), with `iss` the service account's
email, `aud` "google", `typ` "savetowallet", `iat`, `origins` (the web origins the button may appear on) and the
payload: the member's loyalty object inlined, or, when the link would be longer than Google's browsers take, only
its id (the object inserted over the REST API first: `link_payload_by_id`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jwt

from wallet.google.config import GoogleWalletConfig
from wallet.google.objects import JSON

AUDIENCE = "google"
TYPE = "savetowallet"


def save_jwt(config: GoogleWalletConfig, payload: JSON, now: datetime) -> str:
    claims: dict[str, Any] = {
        "iss": config.account.email,
        "aud": AUDIENCE,
        "typ": TYPE,
        "iat": int(now.timestamp()),
        "origins": list(config.origins),
        "payload": payload,
    }
    headers = {"kid": config.account.private_key_id} if config.account.private_key_id else None
    return jwt.encode(claims, config.account.private_key, algorithm="RS256", headers=headers)


def save_url(config: GoogleWalletConfig, payload: JSON, now: datetime) -> str:
    return config.save_base + save_jwt(config, payload, now)


def inline_payload(loyalty_object: JSON) -> JSON:
    return {"loyaltyObjects": [loyalty_object]}


def link_payload_by_id(object_id: str, class_id: str) -> JSON:
    return {"loyaltyObjects": [{"id": object_id, "classId": class_id}]}


def inline_save_url(config: GoogleWalletConfig, loyalty_object: JSON, now: datetime) -> str | None:
    """The link with the object inlined, or None when it is too long (then insert the object and link by id)."""
    url = save_url(config, inline_payload(loyalty_object), now)
    return url if len(url) <= config.max_save_url_length else None
