"""Signing credentials: from the environment, checked; without them a development chain, said in the log;
production refuses the wallet without credentials."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from api.settings import Settings, UnsafeSettings
from tests.wallet.conftest import wallet_config
from wallet.credentials import (
    CredentialsError,
    apple_credentials,
    development_secret,
    load_apple_credentials,
    make_development_chain,
)


def test_without_credentials_a_development_chain_is_made_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # when no credentials are configured
    with caplog.at_level(logging.WARNING, logger="klubb.wallet"):
        credentials = apple_credentials(wallet_config(tmp_path / "dev"))

    # then a chain was made in the directory (beside the lock that lets one worker make it), and the log says real
    # devices refuse its passes
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == [
        ".lock",
        "pass-key.pem",
        "pass.pem",
        "root-ca.pem",
        "wwdr.pem",
    ]
    assert (credentials.development, credentials.pass_type_id, credentials.team_id) == (
        True,
        "pass.dev.klubb.member",
        "KLUBBDEV00",
    )
    assert ((tmp_path / "dev" / "pass-key.pem").stat().st_mode & 0o777) == 0o600
    assert "real devices will refuse them" in caplog.text
    # and the next start reuses it
    again = apple_credentials(wallet_config(tmp_path / "dev"))
    assert again.certificate == credentials.certificate


def test_configured_credentials_are_loaded_and_checked(tmp_path: Path) -> None:
    make_development_chain(tmp_path / "a", pass_type_id="pass.com.example.club", team_id="ABCDE12345")
    make_development_chain(tmp_path / "b")
    a, b = tmp_path / "a", tmp_path / "b"

    loaded = apple_credentials(
        wallet_config(
            tmp_path,
            certificate_file=str(a / "pass.pem"),
            key_file=str(a / "pass-key.pem"),
            wwdr_file=str(a / "wwdr.pem"),
        )
    )
    assert (loaded.development, loaded.pass_type_id, loaded.team_id) == (False, "pass.com.example.club", "ABCDE12345")

    with pytest.raises(CredentialsError, match="the pass key does not belong to the pass certificate"):
        load_apple_credentials(str(a / "pass.pem"), str(b / "pass-key.pem"), str(a / "wwdr.pem"))
    with pytest.raises(CredentialsError, match="not issued by the WWDR certificate"):
        load_apple_credentials(str(a / "pass.pem"), str(a / "pass-key.pem"), str(b / "wwdr.pem"))
    with pytest.raises(CredentialsError, match="cannot be read"):
        load_apple_credentials(str(a / "missing.pem"), str(a / "pass-key.pem"), str(a / "wwdr.pem"))
    with pytest.raises(CredentialsError, match="is not a PEM certificate"):
        load_apple_credentials(str(a / "pass-key.pem"), str(a / "pass-key.pem"), str(a / "wwdr.pem"))
    with pytest.raises(CredentialsError, match="or none of them"):
        apple_credentials(wallet_config(tmp_path, certificate_file=str(a / "pass.pem")))


def test_the_development_secret_is_kept(tmp_path: Path) -> None:
    first = development_secret(str(tmp_path))
    assert len(first) >= 32
    assert development_secret(str(tmp_path)) == first


def test_production_refuses_the_wallet_without_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    key = tmp_path / "jwt.pem"
    key.write_text("not read here")
    base = {
        "environment": "production",
        "jwt_private_key_file": str(key),
        "public_url": "https://x.example",
        "device_hash_secret": "device-hash-secret-for-the-tests!",
        "google_wallet_enabled": False,  # Google's own refusals: tests/api/test_google_wallet.py
        "push_enabled": False,  # push's own refusals: tests/api/test_startup_cli.py
    }

    with pytest.raises(UnsafeSettings) as refused:
        Settings(**base, apple_pass_certificate_file=str(tmp_path / "nope.pem"), wallet_secret="short").check_safe()
    assert refused.value.problems == (
        f"KLUBB_APPLE_PASS_CERTIFICATE_FILE {str(tmp_path / 'nope.pem')!r} is not a readable file",
        "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_KEY_FILE is not set",
        "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_WWDR_CERTIFICATE_FILE is not set",
        "Apple Wallet is enabled but KLUBB_WALLET_SECRET is not set to at least 32 characters",
    )

    make_development_chain(tmp_path / "c")
    complete = Settings(
        **base,
        apple_pass_certificate_file=str(tmp_path / "c" / "pass.pem"),
        apple_pass_key_file=str(tmp_path / "c" / "pass-key.pem"),
        apple_wwdr_certificate_file=str(tmp_path / "c" / "wwdr.pem"),
        wallet_secret="s" * 32,
    )
    assert complete.unsafe_problems() == []
    assert complete.wallet_config().apns_url == "https://api.push.apple.com"
    assert Settings(**base, wallet_enabled=False).unsafe_problems() == []
