"""Our access tokens: short-lived ES256 JWTs with a `kid`, so signing keys can be rotated without signing anyone out.

Times come from the business clock (`loyalty.clock`), like every other expiry in klubb, so tests can move time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.auth.errors import InvalidToken, TokenExpired
from api.settings import Settings, UnsafeSettings
from loyalty import clock
from loyalty.private_files import write_once

MEMBER_AUDIENCE = "klubb-member"
STAFF_AUDIENCE = "klubb-staff"
ALGORITHM = "ES256"
# Tolerated clock difference between the process that issued a token and the one verifying it.
IAT_LEEWAY_SECONDS = 60
VERIFIED_TOKENS_KEPT = 4096  # payloads of recently verified tokens, per process (a few MB at most)
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]


@dataclass(frozen=True)
class IssuedToken:
    """A signed access token and when it stops being accepted."""

    token: str
    expires_at: datetime


@dataclass(frozen=True)
class Claims:
    """The verified claims of an access token."""

    subject: str
    audience: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    token_id: str
    session_id: str | None = None  # `sid`: the staff sign-in session the token belongs to


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A new EC P-256 signing key."""
    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (protect the file with permissions, as for any secret file)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_key_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM (for `KLUBB_JWT_PREVIOUS_PUBLIC_KEY_FILES` after a rotation)."""
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Write `key` to a new file readable only by its owner; refuses to overwrite an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private_key_pem(key))


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """Read a PEM private key and check that it is an EC P-256 key (the only kind ES256 allows)."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: not an EC P-256 private key")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """Read a PEM public key (or a private key, whose public half is used) and check that it is EC P-256."""
    data = path.read_bytes()
    key: Any
    if b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"{path}: not an EC P-256 public key")
    return key


def load_or_create_dev_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The development signing key at `path`, generated on first use so that tokens survive restarts."""
    if not path.exists():
        write_once(path, private_key_pem(generate_private_key()))  # several workers may start at once
    return load_private_key(path)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _ec_members(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }


def jwk_thumbprint(key: ec.EllipticCurvePublicKey) -> str:
    """The RFC 7638 SHA-256 thumbprint of the key: required members, sorted, no whitespace, base64url."""
    canonical = json.dumps(_ec_members(key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The key as a JWK for /.well-known/jwks.json."""
    return {**_ec_members(key), "kid": jwk_thumbprint(key), "use": "sig", "alg": ALGORITHM}


def signing_key_from_settings(settings: Settings) -> ec.EllipticCurvePrivateKey:
    """The configured key; outside production an auto-generated one kept at `settings.jwt_dev_key_file`."""
    if settings.jwt_private_key_file:
        return load_private_key(Path(settings.jwt_private_key_file))
    if settings.production:
        raise UnsafeSettings("KLUBB_JWT_PRIVATE_KEY_FILE is required in production")
    return load_or_create_dev_key(Path(settings.jwt_dev_key_file))


def _numeric_date(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    # bool is an int in Python; a JSON `true` is not a date.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken()
    return float(value)


class TokenService:
    """Issues and verifies access JWTs; verification accepts the current key and the configured previous keys."""

    def __init__(self, settings: Settings, *, signing_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = signing_key if signing_key is not None else signing_key_from_settings(settings)
        self._issuer = settings.jwt_issuer
        self._lifetime = timedelta(seconds=settings.access_token_seconds)
        self.kid = jwk_thumbprint(self._key.public_key())
        self._public_keys: dict[str, ec.EllipticCurvePublicKey] = {self.kid: self._key.public_key()}
        for name in settings.jwt_previous_public_key_files.split(","):
            if name.strip():
                previous = load_public_key(Path(name.strip()))
                self._public_keys.setdefault(jwk_thumbprint(previous), previous)
        self._verified_payload = lru_cache(maxsize=VERIFIED_TOKENS_KEPT)(self._check_signature)

    def issue(self, subject: str, audience: str, session_id: str | None = None) -> IssuedToken:
        """A signed token for `subject` (a member or staff id as a string) valid for `audience`, in the sign-in
        session `session_id` (the `sid` claim) if given."""
        issued_at = clock.now().replace(microsecond=0)
        expires_at = issued_at + self._lifetime
        payload = {
            "iss": self._issuer,
            "aud": audience,
            "sub": subject,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if session_id is not None:
            payload["sid"] = session_id
        token = jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return IssuedToken(token=token, expires_at=expires_at)

    def verify(self, token: str, audience: str, at: datetime | None = None) -> Claims:
        """The claims of a token we signed for `audience`, valid at `at` (default: now); `InvalidToken` or
        `TokenExpired` otherwise."""
        payload = self._verified_payload(token, audience)
        now = (at or clock.now()).timestamp()
        expires = _numeric_date(payload, "exp")
        issued = _numeric_date(payload, "iat")
        subject, token_id, session_id = payload.get("sub"), payload.get("jti"), payload.get("sid")
        if not isinstance(subject, str) or not subject or not isinstance(token_id, str):
            raise InvalidToken()
        if session_id is not None and not isinstance(session_id, str):
            raise InvalidToken()
        if issued > now + IAT_LEEWAY_SECONDS:
            raise InvalidToken()
        if expires <= now:
            raise TokenExpired()
        return Claims(
            subject=subject,
            audience=audience,
            issuer=self._issuer,
            issued_at=datetime.fromtimestamp(issued, UTC),
            expires_at=datetime.fromtimestamp(expires, UTC),
            token_id=token_id,
            session_id=session_id,
        )

    def _check_signature(self, token: str, audience: str) -> dict[str, Any]:
        # The signature, issuer and audience of a token never change, so a verified token's payload is kept
        # (`_verified_payload`): the app sends the same token for its whole lifetime, and an ES256 check is about
        # a tenth of the CPU of a home-screen request. Failures are not cached; the time checks run every time.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken() from None
        kid = header.get("kid")
        key = self._public_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken()
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],  # pinned: the header's `alg` never chooses the algorithm
                audience=audience,
                issuer=self._issuer,
                # Time checks are done in `verify` against the business clock; pyjwt only knows the wall clock.
                options={
                    "require": _REQUIRED_CLAIMS,
                    "strict_aud": True,
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidTokenError:
            raise InvalidToken() from None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys (current first) as a JWK Set, for `/.well-known/jwks.json`."""
        return {"keys": [public_jwk(key) for key in self._public_keys.values()]}
