"""`klubb serve` and `klubb worker` refuse to start in production with unsafe settings: one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from api.settings import Settings, UnsafeSettings


@pytest.fixture
def no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_every_unsafe_setting_is_one_line_and_exit_2(
    command: str, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    # given production with the emulator on, no signing key, SQLite shared by workers, a plain-http URL, and the
    # wallet on (the default) without its credentials
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    settings = Settings(environment="production", workers=4, public_url="http://shop.example")
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    # when the command starts
    result = CliRunner().invoke(cli.app, [command])

    # then it exits 2 with exactly one line per problem on stderr, no traceback, and nothing on stdout
    prefix = f"klubb {command}: refusing to start in production: "
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        prefix + "FIREBASE_AUTH_EMULATOR_HOST is set (accepts unsigned Firebase tokens)",
        prefix + "KLUBB_JWT_PRIVATE_KEY_FILE is not set",
        prefix + "SQLite cannot be shared by several worker processes",
        prefix + "KLUBB_PUBLIC_URL must be https",
        prefix + "the wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_CERTIFICATE_FILE is not set",
        prefix + "the wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_KEY_FILE is not set",
        prefix + "the wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_WWDR_CERTIFICATE_FILE is not set",
        prefix + "the wallet is enabled but KLUBB_WALLET_SECRET is not set to at least 32 characters",
    ]


def test_an_unreadable_signing_key_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    missing = str(tmp_path / "nope.pem")
    settings = Settings(
        environment="production", jwt_private_key_file=missing, public_url="https://x.example", wallet_enabled=False
    )
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    result = CliRunner().invoke(cli.app, ["serve"])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"klubb serve: refusing to start in production: KLUBB_JWT_PRIVATE_KEY_FILE {missing!r} is not a readable file"
    ]


def test_invalid_settings_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    # given two environment variables that do not parse
    monkeypatch.setenv("KLUBB_PORT", "eighty")
    monkeypatch.setenv("KLUBB_ACCESS_TOKEN_SECONDS", "5")
    monkeypatch.setattr(cli, "get_settings", lambda: Settings())

    result = CliRunner().invoke(cli.app, ["worker"])

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "klubb worker: KLUBB_PORT: Input should be a valid integer, unable to parse string as an integer",
        "klubb worker: KLUBB_ACCESS_TOKEN_SECONDS: Input should be greater than or equal to 60",
    ]


def test_safe_production_settings_have_no_problems(tmp_path: Path, no_emulator: None) -> None:
    key = tmp_path / "signing.pem"
    key.write_text("not checked here: TokenService loads it")
    settings = Settings(
        environment="production",
        jwt_private_key_file=str(key),
        public_url="https://loyalty.example",
        database_url="postgres://u@db/klubb",
        workers=4,
        wallet_enabled=False,
    )

    assert settings.unsafe_problems() == []
    settings.check_safe()


def test_check_safe_lists_the_problems(no_emulator: None) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        Settings(environment="production", public_url="https://x.example", wallet_enabled=False).check_safe()

    assert refused.value.problems == ("KLUBB_JWT_PRIVATE_KEY_FILE is not set",)
    assert str(refused.value) == "refusing to start in production: KLUBB_JWT_PRIVATE_KEY_FILE is not set"


def test_development_has_no_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert Settings(public_url="http://127.0.0.1:8000").unsafe_problems() == []
