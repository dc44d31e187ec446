"""FCM fixtures: the fake FCM v1 server on the test's loop, and a sender pointed at it through the real SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from push.config import CredentialSource, FcmConfig
from push.fake import FakeFcm
from push.fcm import FcmSender

PROJECT = "klubb-test"


@pytest.fixture
async def fake() -> AsyncIterator[FakeFcm]:
    server = FakeFcm(project=PROJECT)
    await server.start()
    yield server
    await server.stop()


def config_for(fake: FakeFcm, **overrides: object) -> FcmConfig:
    values: dict[str, object] = {
        "project_id": PROJECT,
        "credentials": CredentialSource.DEVELOPMENT,
        "fake_url": fake.url,
    }
    values.update(overrides)
    return FcmConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def sender(fake: FakeFcm) -> AsyncIterator[FcmSender]:
    async with FcmSender(config_for(fake)) as client:
        yield client
