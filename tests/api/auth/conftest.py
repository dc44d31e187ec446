"""Fixtures for the auth tests: settings with a throwaway signing key, and the Firebase emulator mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.auth.firebase import FirebaseVerifier
from api.auth.tokens import TokenService
from api.settings import Settings
from loyalty.clock import FrozenClock

EMULATOR_HOST = "127.0.0.1:9099"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Development settings whose auto-generated signing key lives in the test's temporary directory."""
    return Settings(jwt_dev_key_file=str(tmp_path / "keys" / "dev-jwt-key.pem"), firebase_project_id="klubb-test")


@pytest.fixture
def tokens(settings: Settings, clock: FrozenClock) -> TokenService:
    return TokenService(settings)


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> str:
    """Auth emulator mode: firebase-admin accepts unsigned tokens (no emulator needs to run for verification)."""
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", EMULATOR_HOST)
    return EMULATOR_HOST


@pytest.fixture
def verifier(settings: Settings, emulator: str, clock: FrozenClock) -> FirebaseVerifier:
    return FirebaseVerifier(settings)
