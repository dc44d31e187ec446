"""`klubb dev-token` and `klubb jwt-keygen`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from api.auth.firebase import FirebaseIdentity, FirebaseVerifier
from api.auth.tokens import MEMBER_AUDIENCE, TokenService, jwk_thumbprint, load_private_key, load_public_key
from api.settings import Settings
from loyalty.clock import FrozenClock


async def test_dev_token_prints_only_a_token_for_the_demo_member(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, verifier: FirebaseVerifier
) -> None:
    # given development settings
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    # when a token is asked for a mixed-case address
    result = CliRunner().invoke(cli.app, ["dev-token", "Anna@Example.com"])

    # then stdout is exactly one line: a token the emulator-mode verifier accepts for uid demo:<lower-case email>
    assert result.exit_code == 0
    token = result.stdout.removesuffix("\n")
    assert "\n" not in token
    identity = await verifier.verify(token)
    assert identity == FirebaseIdentity(uid="demo:anna@example.com", email="anna@example.com", name="")


async def test_dev_token_is_refused_in_production(monkeypatch: pytest.MonkeyPatch, clock: FrozenClock) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(environment="production"))

    result = CliRunner().invoke(cli.app, ["dev-token", "anna@example.com"])

    assert (result.exit_code, result.stdout) == (1, "")
    assert "refused in production" in result.stderr


async def test_jwt_keygen_writes_a_usable_owner_only_key(tmp_path: Path, clock: FrozenClock) -> None:
    # when a key is generated with its public half
    result = CliRunner().invoke(
        cli.app, ["jwt-keygen", str(tmp_path / "k" / "signing.pem"), "--public-out", str(tmp_path / "signing.pub")]
    )

    # then the private key is owner-only, its public half matches, and a TokenService signs with it
    assert result.exit_code == 0
    key = load_private_key(tmp_path / "k" / "signing.pem")
    kid = jwk_thumbprint(key.public_key())
    assert result.stdout == f"wrote {tmp_path / 'k' / 'signing.pem'} (kid {kid})\n"
    assert stat.S_IMODE((tmp_path / "k" / "signing.pem").stat().st_mode) == 0o600
    assert jwk_thumbprint(load_public_key(tmp_path / "signing.pub")) == kid
    tokens = TokenService(Settings(jwt_private_key_file=str(tmp_path / "k" / "signing.pem")))
    assert tokens.verify(tokens.issue("1", MEMBER_AUDIENCE).token, MEMBER_AUDIENCE).subject == "1"


async def test_jwt_keygen_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "signing.pem").write_text("existing")

    result = CliRunner().invoke(cli.app, ["jwt-keygen", str(tmp_path / "signing.pem")])

    assert result.exit_code == 1
    assert (tmp_path / "signing.pem").read_text() == "existing"
    assert "refusing to overwrite" in result.stderr
