"""Google Wallet's configuration: the issuer, the service account that signs and calls, where the API is.

Production reads the issuer id and the service account's JSON key file (as Google's console downloads it) from the
environment (`api.settings`: `KLUBB_GOOGLE_WALLET_ISSUER_ID`, `KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE`). Without
them (the embedded default) `development_config` generates a throwaway RSA key in `var/` and points every URL at the
local fake (`wallet.google.fake`, mounted by the app at `/dev/google-wallet`): real Google Wallet refuses these
links, which is said in the log and on the fake's save page.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from loyalty.private_files import write_once

log = logging.getLogger("klubb.wallet.google")

GOOGLE_API_BASE = "https://walletobjects.googleapis.com/walletobjects/v1"
GOOGLE_SAVE_BASE = "https://pay.google.com/gp/v/save/"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL, not a secret)
WALLET_SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
FAKE_PREFIX = "/dev/google-wallet"
DEV_ISSUER_ID = "3388000000000000000"  # any digits: the fake accepts every issuer
# Google's limits: notifications on field updates per pass per 24 hours; our own cap on REST calls per second.
NOTIFICATIONS_PER_DAY = 3
REQUESTS_PER_SECOND = 20.0
# Longer save links are not opened by every browser: above this the object is inserted first and linked by id.
MAX_SAVE_URL_LENGTH = 1800


class GoogleWalletCredentialsError(ValueError):
    """The service account key or the issuer id is missing or unreadable."""


@dataclass(frozen=True)
class ServiceAccount:
    email: str
    private_key_pem: bytes = field(repr=False)
    private_key_id: str | None
    token_uri: str

    @classmethod
    def from_json(cls, text: str) -> ServiceAccount:
        """A service account from the JSON key file Google's console downloads."""
        try:
            data: Any = json.loads(text)
            email, key, token_uri = data["client_email"], data["private_key"], data.get("token_uri", GOOGLE_TOKEN_URI)
        except (ValueError, KeyError, TypeError) as error:
            raise GoogleWalletCredentialsError(f"not a service account key file: {type(error).__name__}") from None
        if not all(isinstance(v, str) and v for v in (email, key, token_uri)):
            raise GoogleWalletCredentialsError("a service account key file needs client_email, private_key")
        try:
            loaded = serialization.load_pem_private_key(key.encode(), password=None)
        except ValueError:
            raise GoogleWalletCredentialsError("the service account's private_key is not a PEM private key") from None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise GoogleWalletCredentialsError("the service account's private_key is not an RSA key")
        key_id = data.get("private_key_id")
        return cls(email, key.encode(), key_id if isinstance(key_id, str) and key_id else None, token_uri)

    @functools.cached_property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The loaded key (loading checks the key, ~30 ms for RSA: once per account, not once per signature)."""
        key = serialization.load_pem_private_key(self.private_key_pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)  # from_json checked it
        return key

    def public_key_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class GoogleWalletConfig:
    issuer_id: str
    account: ServiceAccount
    api_base: str = GOOGLE_API_BASE
    save_base: str = GOOGLE_SAVE_BASE
    origins: tuple[str, ...] = ()
    class_suffix: str = "klubb"
    # Google's callback signing root keys (ECv2SigningOnly; the JSON Google serves at pay.google.com/gp/m/issuer/keys)
    callback_keys_json: str | None = None
    callback_url: str | None = None
    development: bool = False
    requests_per_second: float = REQUESTS_PER_SECOND
    notifications_per_day: int = NOTIFICATIONS_PER_DAY
    max_save_url_length: int = MAX_SAVE_URL_LENGTH
    logo_url: str | None = None

    @property
    def class_id(self) -> str:
        return f"{self.issuer_id}.{self.class_suffix}"

    def object_id(self, suffix: str) -> str:
        """`<issuerId>.<suffix>`: Google's object id (the suffix: letters, digits, `.`, `_`, `-`)."""
        return f"{self.issuer_id}.{suffix}"


def check_issuer_id(issuer_id: str) -> str:
    if not (issuer_id.isascii() and issuer_id.isdigit() and 1 <= len(issuer_id) <= 30):
        raise GoogleWalletCredentialsError("KLUBB_GOOGLE_WALLET_ISSUER_ID must be the issuer's numeric id")
    return issuer_id


def production_config(
    issuer_id: str, service_account_file: str, *, public_url: str, callback_keys_file: str | None = None
) -> GoogleWalletConfig:
    """The configuration with real credentials (raises `GoogleWalletCredentialsError` when they are unusable)."""
    try:
        account = ServiceAccount.from_json(Path(service_account_file).read_text())
    except OSError as error:
        raise GoogleWalletCredentialsError(f"cannot read the service account key file: {error.strerror}") from None
    keys = None
    if callback_keys_file:
        try:
            keys = Path(callback_keys_file).read_text()
        except OSError as error:
            raise GoogleWalletCredentialsError(f"cannot read the callback keys file: {error.strerror}") from None
    return GoogleWalletConfig(
        issuer_id=check_issuer_id(issuer_id),
        account=account,
        origins=(public_url.rstrip("/"),),
        callback_keys_json=keys,
        callback_url=f"{public_url.rstrip('/')}/wallet/google/callback",
    )


def _dev_account(key_file: Path, token_uri: str) -> ServiceAccount:
    if key_file.exists():
        return ServiceAccount.from_json(key_file.read_text())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    document = {
        "type": "service_account",
        "private_key_id": "klubb-dev",
        "private_key": pem,
        "client_email": "klubb-dev@klubb-dev.iam.gserviceaccount.com",
        "token_uri": token_uri,
    }
    # several workers may start at once: the first key written is everyone's
    return ServiceAccount.from_json(write_once(key_file, json.dumps(document).encode()).decode())


def development_config(
    public_url: str, key_file: str = "var/google-wallet-dev-service-account.json"
) -> GoogleWalletConfig:
    """A throwaway service account (kept in `key_file` so links survive restarts) and the local fake's URLs."""
    base = public_url.rstrip("/") + FAKE_PREFIX
    account = _dev_account(Path(key_file), f"{base}/token")
    log.warning(
        "Google Wallet: no credentials configured; save links point at the local fake (%s) and real Google "
        "Wallet will refuse them",
        base,
    )
    return GoogleWalletConfig(
        issuer_id=DEV_ISSUER_ID,
        account=account,
        api_base=f"{base}/walletobjects/v1",
        save_base=f"{base}/save/",
        origins=(public_url.rstrip("/"),),
        callback_url=f"{public_url.rstrip('/')}/wallet/google/callback",
        development=True,
    )
