"""Firebase ID token verification with firebase-admin.

With `FIREBASE_AUTH_EMULATOR_HOST` set (development and tests), firebase-admin accepts the Auth emulator's unsigned
tokens without any network access; otherwise it checks the RS256 signature against Google's published keys.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import firebase_admin
from firebase_admin import auth
from google.auth.credentials import AnonymousCredentials

from api.auth.errors import AuthUnavailable, InvalidFirebaseToken
from api.settings import Settings, UnsafeSettings, get_settings
from loyalty import clock
from loyalty.checks import MAX_EMAIL

EMULATOR_HOST_ENV = "FIREBASE_AUTH_EMULATOR_HOST"
ISSUER_PREFIX = "https://securetoken.google.com/"
# Tolerated difference between Google's clock (or the emulator's) and ours for `iat`.
IAT_LEEWAY_SECONDS = 60
MAX_TOKEN_LENGTH = 8192
# How long fetching Google's signing certificates may take (firebase-admin's default is 120 s, which would hold a
# sign-in and a worker thread for two minutes while Google is unreachable).
CERT_FETCH_TIMEOUT_SECONDS = 10.0
MAX_UID_LENGTH = 128
_app_lock = threading.Lock()
log = logging.getLogger("klubb.auth")


@dataclass(frozen=True)
class FirebaseIdentity:
    """Who signed in: the Firebase uid, the email if Firebase verified it, and the display name (may be "")."""

    uid: str
    email: str | None
    name: str


class IdTokenVerifier(Protocol):
    """Anything that turns a Firebase ID token into an identity (tests may pass a fake)."""

    async def verify(self, id_token: str) -> FirebaseIdentity: ...


def emulator_enabled() -> bool:
    """True when firebase-admin will accept unsigned Auth emulator tokens."""
    return bool(os.environ.get(EMULATOR_HOST_ENV))


def firebase_app(project_id: str) -> firebase_admin.App:
    """This process's firebase-admin App for `project_id`, created once.

    Verifying ID tokens needs no Google credentials (the signing certificates are public), so the App gets
    `AnonymousCredentials`: firebase-admin 7 accepts any google-auth credential, and never looks for Application
    Default Credentials (which would probe the GCE metadata server). In emulator mode firebase-admin swaps in its own
    emulator credential anyway.
    """
    name = f"klubb-auth-{project_id}"
    with _app_lock:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            options = {"projectId": project_id, "httpTimeout": CERT_FETCH_TIMEOUT_SECONDS}
            return firebase_admin.initialize_app(AnonymousCredentials(), options, name=name)


def _claim_time(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidFirebaseToken()
    return float(value)


class FirebaseVerifier:
    """Verifies Firebase ID tokens for `settings.firebase_project_id`."""

    def __init__(self, settings: Settings) -> None:
        if settings.production and emulator_enabled():
            raise UnsafeSettings(f"{EMULATOR_HOST_ENV} is set: refusing unsigned Firebase tokens in production")
        self.project_id = settings.firebase_project_id
        self._app = firebase_app(self.project_id)

    async def verify(self, id_token: str) -> FirebaseIdentity:
        """The identity in a valid ID token, or `InvalidFirebaseToken` / `AuthUnavailable`.

        Runs in a thread: outside emulator mode firebase-admin may fetch Google's certificates (blocking I/O).
        """
        return await asyncio.to_thread(self.verify_sync, id_token)

    def verify_sync(self, id_token: str) -> FirebaseIdentity:
        """Blocking form of `verify`."""
        if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_TOKEN_LENGTH or not id_token.isascii():
            raise InvalidFirebaseToken()
        try:
            claims = auth.verify_id_token(id_token, app=self._app)
        except auth.CertificateFetchError as error:  # network error, timeout, non-200 from the certificate endpoint
            log.warning("Firebase signing keys could not be fetched: %s", error)
            raise AuthUnavailable() from None
        except auth.InvalidIdTokenError as error:
            # firebase-admin reports every ValueError of google-auth's verify_token as a bad token, including a
            # certificate response that is not JSON. The token itself was already decoded (firebase-admin parses it
            # before fetching), so an undecodable body here is Google's (or the network's) fault, not the member's.
            if isinstance(error.cause, UnicodeDecodeError | json.JSONDecodeError):
                log.warning("Firebase signing keys could not be read: %s", error.cause)
                raise AuthUnavailable() from None
            raise InvalidFirebaseToken() from None
        except ValueError:
            raise InvalidFirebaseToken() from None
        # firebase-admin skips every time check for emulator tokens, so check expiry ourselves (in both modes).
        now = clock.now().timestamp()
        if _claim_time(claims, "iat") > now + IAT_LEEWAY_SECONDS:
            raise InvalidFirebaseToken()
        if _claim_time(claims, "exp") <= now:
            raise InvalidFirebaseToken("Firebase ID token expired")
        uid = claims.get("uid")
        # Firebase uids are 1 to 128 printable characters; an emulator token can claim anything.
        if not isinstance(uid, str) or not uid or len(uid) > MAX_UID_LENGTH or not uid.isprintable():
            raise InvalidFirebaseToken()
        email = claims.get("email")
        # Only a verified address becomes the member's email: staff look members up by it. One that cannot be
        # stored (too long, control characters) is left out rather than refusing the sign-in.
        usable = isinstance(email, str) and len(email) <= MAX_EMAIL and email.isprintable()
        verified_email = email if usable and claims.get("email_verified") is True else None
        name = claims.get("name")
        return FirebaseIdentity(uid=uid, email=verified_email, name=name if isinstance(name, str) else "")


def _b64url_json(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_emulator_id_token(
    project_id: str,
    uid: str,
    email: str | None,
    name: str = "",
    *,
    settings: Settings | None = None,
    lifetime: timedelta = timedelta(hours=1),
) -> str:
    """An unsigned ID token shaped like the Auth emulator's (alg "none"), for development and tests.

    Only accepted by a verifier running with `FIREBASE_AUTH_EMULATOR_HOST` set. Refused in production mode.
    """
    if (settings or get_settings()).production:
        raise UnsafeSettings("emulator ID tokens are for development only")
    issued_at = int(clock.now().timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER_PREFIX + project_id,
        "aud": project_id,
        "auth_time": issued_at,
        "user_id": uid,
        "sub": uid,
        "iat": issued_at,
        "exp": issued_at + int(lifetime.total_seconds()),
        "firebase": {"identities": {}, "sign_in_provider": "custom"},
    }
    if email is not None:
        claims["email"] = email
        claims["email_verified"] = True
        claims["firebase"] = {"identities": {"email": [email]}, "sign_in_provider": "password"}
    if name:
        claims["name"] = name
    return f"{_b64url_json({'alg': 'none', 'typ': 'JWT'})}.{_b64url_json(claims)}."
