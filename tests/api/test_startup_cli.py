"""`klubb serve` and `klubb worker` refuse to start in production with unsafe settings: one line per problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api import cli
from api.settings import Settings, UnsafeSettings
from push.config import DEVELOPMENT_FAKE_URL, CredentialSource, FcmConfig


@pytest.fixture
def no_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)


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
        prefix + "KLUBB_DEVICE_HASH_SECRET is not set to at least 32 characters",
        prefix + "live updates (memberUpdated) need KLUBB_REDIS_URL when the outbox worker runs outside the API "
        "process (KLUBB_EMBEDDED_WORKER=false or KLUBB_WORKERS > 1); or set KLUBB_LIVE_UPDATES_ENABLED=false",
        prefix + "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_CERTIFICATE_FILE is not set",
        prefix + "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_KEY_FILE is not set",
        prefix + "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_WWDR_CERTIFICATE_FILE is not set",
        prefix + "Apple Wallet is enabled but KLUBB_WALLET_SECRET is not set to at least 32 characters",
        prefix + "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_ISSUER_ID is not set",
        prefix + "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE is not set",
        prefix + "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE is not set",
        prefix + "App push is enabled (KLUBB_PUSH_ENABLED) but neither KLUBB_PUSH_FCM_SERVICE_ACCOUNT_FILE nor "
        "GOOGLE_APPLICATION_CREDENTIALS is set",
    ]


def test_an_unreadable_signing_key_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    missing = str(tmp_path / "nope.pem")
    settings = Settings(
        environment="production",
        jwt_private_key_file=missing,
        public_url="https://x.example",
        device_hash_secret="device-hash-secret-for-the-tests!",
        wallet_enabled=False,
        google_wallet_enabled=False,
        push_enabled=False,
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
        device_hash_secret="device-hash-secret-for-the-tests!",
        database_url="postgres://u@db/klubb",
        workers=4,
        redis_url="redis://cache:6379/0",
        wallet_enabled=False,
        google_wallet_enabled=False,
        push_enabled=False,
    )

    assert settings.unsafe_problems() == []
    settings.check_safe()


def test_check_safe_lists_the_problems(no_emulator: None) -> None:
    with pytest.raises(UnsafeSettings) as refused:
        Settings(
            environment="production",
            public_url="https://x.example",
            device_hash_secret="device-hash-secret-for-the-tests!",
            wallet_enabled=False,
            google_wallet_enabled=False,
            push_enabled=False,
        ).check_safe()

    assert refused.value.problems == ("KLUBB_JWT_PRIVATE_KEY_FILE is not set",)
    assert str(refused.value) == "refusing to start in production: KLUBB_JWT_PRIVATE_KEY_FILE is not set"


def test_development_has_no_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    assert Settings(public_url="http://127.0.0.1:8000").unsafe_problems() == []


APPLE_MISSING = [
    "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_CERTIFICATE_FILE is not set",
    "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_PASS_KEY_FILE is not set",
    "Apple Wallet is enabled (KLUBB_WALLET_ENABLED) but KLUBB_APPLE_WWDR_CERTIFICATE_FILE is not set",
    "Apple Wallet is enabled but KLUBB_WALLET_SECRET is not set to at least 32 characters",
]
GOOGLE_MISSING = [
    "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_ISSUER_ID is not set",
    "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_SERVICE_ACCOUNT_FILE is not set",
    "Google Wallet is enabled but KLUBB_GOOGLE_WALLET_CALLBACK_KEYS_FILE is not set",
]


def _wallet_credentials(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Readable files for each platform's credentials (their contents are checked when the platform starts)."""
    files = {}
    for name in ("pass.pem", "pass-key.pem", "wwdr.pem", "service-account.json", "google-keys.json"):
        (tmp_path / name).write_text("{}")
        files[name] = str(tmp_path / name)
    return {
        "apple": {
            "apple_pass_certificate_file": files["pass.pem"],
            "apple_pass_key_file": files["pass-key.pem"],
            "apple_wwdr_certificate_file": files["wwdr.pem"],
            "wallet_secret": "s" * 32,
        },
        "google": {
            "google_wallet_issuer_id": "3388000000012345678",
            "google_wallet_service_account_file": files["service-account.json"],
            "google_wallet_callback_keys_file": files["google-keys.json"],
        },
    }


@pytest.mark.parametrize(
    ("apple", "google", "problems"),
    [
        (True, True, APPLE_MISSING + GOOGLE_MISSING),
        (True, False, APPLE_MISSING),
        (False, True, GOOGLE_MISSING),
        (False, False, []),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker"])
def test_each_wallet_is_refused_without_its_own_credentials_only(
    command: str,
    apple: bool,
    google: bool,
    problems: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_emulator: None,
) -> None:
    # given production, safe but for the wallets: Apple and Google each on or off, neither with credentials
    key = tmp_path / "signing.pem"
    key.write_text("not checked here")
    base = {
        "environment": "production",
        "jwt_private_key_file": str(key),
        "public_url": "https://x.example",
        "device_hash_secret": "device-hash-secret-for-the-tests!",
        "push_enabled": False,
    }
    settings = Settings(**base, wallet_enabled=apple, google_wallet_enabled=google)
    assert settings.unsafe_problems() == problems
    if not problems:
        settings.check_safe()  # (a command would start: not run here)
        return
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    # when the command starts
    result = CliRunner().invoke(cli.app, [command])

    # then it refuses for the platforms that are on (one line each), and only for them
    prefix = f"klubb {command}: refusing to start in production: "
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [prefix + problem for problem in problems]


@pytest.mark.parametrize(
    ("apple", "google"), [(True, False), (False, True), (True, True)], ids=["apple-only", "google-only", "both"]
)
def test_each_wallet_runs_with_its_own_credentials_without_the_others(
    apple: bool, google: bool, tmp_path: Path, no_emulator: None
) -> None:
    # given production with one platform's credentials (or both), the other platform off
    key = tmp_path / "signing.pem"
    key.write_text("not checked here")
    credentials = _wallet_credentials(tmp_path)
    settings = Settings(
        environment="production",
        jwt_private_key_file=str(key),
        public_url="https://x.example",
        device_hash_secret="device-hash-secret-for-the-tests!",
        wallet_enabled=apple,
        google_wallet_enabled=google,
        push_enabled=False,
        **(credentials["apple"] if apple else {}),
        **(credentials["google"] if google else {}),
    )

    # then nothing is refused, and Google runs on its own switch
    assert settings.unsafe_problems() == []
    assert settings.google_wallet_on is google

    # and a platform switched off is refused nothing even if the other's credentials are partial
    half = settings.model_copy(update={"google_wallet_issuer_id": None, "wallet_secret": None})
    expected = [p for p in APPLE_MISSING if apple and "SECRET" in p] + [
        p for p in GOOGLE_MISSING if google and "ISSUER" in p
    ]
    assert half.unsafe_problems() == expected


@pytest.mark.parametrize(
    ("overrides", "refused"),
    [
        ({"workers": 2}, True),  # several processes: the worker's notices cannot reach the others
        ({"embedded_worker": False}, True),  # `klubb worker` publishes from another process
        ({"workers": 2, "redis_url": "redis://cache:6379/0"}, False),
        ({"embedded_worker": False, "live_updates_enabled": False}, False),
        ({}, False),  # one process draining its own outbox: the in-process broker reaches every socket
    ],
)
def test_production_refuses_live_updates_that_could_not_cross_processes(
    tmp_path: Path, no_emulator: None, overrides: dict[str, object], refused: bool
) -> None:
    key = tmp_path / "signing.pem"
    key.write_text("not checked here")
    settings = Settings(
        environment="production",
        jwt_private_key_file=str(key),
        public_url="https://loyalty.example",
        device_hash_secret="device-hash-secret-for-the-tests!",
        database_url="postgres://u@db/klubb",
        wallet_enabled=False,
        google_wallet_enabled=False,
        push_enabled=False,
        **overrides,  # type: ignore[arg-type]
    )

    problem = (
        "live updates (memberUpdated) need KLUBB_REDIS_URL when the outbox worker runs outside the API process "
        "(KLUBB_EMBEDDED_WORKER=false or KLUBB_WORKERS > 1); or set KLUBB_LIVE_UPDATES_ENABLED=false"
    )
    assert settings.unsafe_problems() == ([problem] if refused else [])


@pytest.mark.parametrize("url", ["http://cache:6379", "cache:6379", "postgres://cache"])
def test_a_redis_url_must_be_redis(url: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="redis_url"):
        Settings(redis_url=url)


@pytest.mark.parametrize(
    ("redis_url", "warned"), [(None, True), ("redis://cache:6379/0", False)]
)  # fmt: skip
def test_serve_warns_when_live_updates_could_not_reach_other_processes(
    redis_url: str | None, warned: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given development settings on PostgreSQL, with or without Redis, and uvicorn not really started
    import uvicorn

    started: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(options))
    monkeypatch.setattr(
        cli, "get_settings", lambda: Settings(database_url="postgres://u@db/klubb", redis_url=redis_url)
    )
    monkeypatch.setenv("KLUBB_EMBEDDED_WORKER", "false")  # serve sets it for uvicorn's workers: restored after

    # when two server processes are asked for
    result = CliRunner().invoke(cli.app, ["serve", "--workers", "2"])

    # then it starts, warning once when nothing would carry the worker's notices to the servers
    warning = (
        "klubb serve: warning: live updates (memberUpdated) reach no socket without KLUBB_REDIS_URL when the outbox "
        "worker runs outside the server process"
    )
    assert result.exit_code == 0
    assert result.stderr.splitlines() == ([warning] if warned else [])
    # and uvicorn buffers no websocket message far past the live limit (16 KiB by default; UTF-8 up to 4 bytes a
    # character, since the limit counts characters)
    assert (started["workers"], started["ws_max_size"]) == (2, 16 * 1024 * 4 + 1024)


PUSH_MISSING = (
    "App push is enabled (KLUBB_PUSH_ENABLED) but neither KLUBB_PUSH_FCM_SERVICE_ACCOUNT_FILE nor "
    "GOOGLE_APPLICATION_CREDENTIALS is set"
)


def _production_but_push(tmp_path: Path, **push: object) -> Settings:
    key = tmp_path / "signing.pem"
    key.write_text("not checked here")
    return Settings(
        environment="production",
        jwt_private_key_file=str(key),
        public_url="https://x.example",
        device_hash_secret="device-hash-secret-for-the-tests!",
        wallet_enabled=False,
        google_wallet_enabled=False,
        **push,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_push_without_credentials_refuses_to_start(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    # given production, safe but for push: on (the default) with neither a key file nor the environment's credentials
    settings = _production_but_push(tmp_path)
    monkeypatch.setattr(cli, "get_settings", lambda: settings)

    # when the command starts
    result = CliRunner().invoke(cli.app, [command])

    # then it refuses, one line
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"klubb {command}: refusing to start in production: {PUSH_MISSING}"]


def test_push_credentials_must_be_readable_and_never_a_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    missing = str(tmp_path / "nope.json")
    # a key file that is not there, a fake URL in production, an environment credential that is not there
    assert _production_but_push(tmp_path, push_fcm_service_account_file=missing).unsafe_problems() == [
        f"KLUBB_PUSH_FCM_SERVICE_ACCOUNT_FILE {missing!r} is not a readable file"
    ]
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", missing)
    assert _production_but_push(tmp_path, push_fcm_fake_url="http://127.0.0.1:9098").unsafe_problems() == [
        f"GOOGLE_APPLICATION_CREDENTIALS {missing!r} is not a readable file",
        "KLUBB_PUSH_FCM_FAKE_URL is set (pushes would go to a fake FCM)",
    ]


def test_push_runs_with_a_key_file_or_the_environments_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_emulator: None
) -> None:
    account = tmp_path / "fcm.json"
    account.write_text("{}")  # read when the sender starts, not here
    # given a key file: production sends as that service account, to FCM itself
    with_file = _production_but_push(tmp_path, push_fcm_service_account_file=str(account), push_fcm_project_id="p")
    assert with_file.unsafe_problems() == []
    assert with_file.push_config() == FcmConfig(
        "p", CredentialSource.SERVICE_ACCOUNT_FILE, service_account_file=str(account)
    )
    # given GOOGLE_APPLICATION_CREDENTIALS instead: application default credentials, the Firebase project
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(account))
    with_environment = _production_but_push(tmp_path, firebase_project_id="klubb-prod")
    assert with_environment.unsafe_problems() == []
    assert with_environment.push_config() == FcmConfig("klubb-prod", CredentialSource.APPLICATION_DEFAULT)
    # and push off needs nothing
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    assert _production_but_push(tmp_path, push_enabled=False).unsafe_problems() == []


def test_development_pushes_go_to_the_fake() -> None:
    assert Settings().push_config() == FcmConfig(
        "klubb-dev", CredentialSource.DEVELOPMENT, fake_url=DEVELOPMENT_FAKE_URL
    )
    configured = Settings(push_fcm_fake_url="http://127.0.0.1:1", push_fcm_concurrency=3, push_fcm_batch_size=50)
    assert configured.push_config() == FcmConfig(
        "klubb-dev", CredentialSource.DEVELOPMENT, fake_url="http://127.0.0.1:1", concurrency=3, batch_size=50
    )
