"""The push consumer as `api` builds it from the settings: push off logs instead of sending; development without a
fake URL starts its own fake FCM; the lease is never shorter than a batch can take."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from api.push_setup import lease_seconds, push_consumer
from loyalty.clock import FrozenClock
from loyalty.models import MessagePurpose, PushDelivery, PushPolicy
from push.consumer import LoggedSender
from push.fcm import FcmSender
from tests.conftest import START, app_settings
from tests.push.helpers import add_devices, new_member, outgoing, schedule


async def _owe_one() -> None:
    await PushPolicy.create(updated_at=START)
    member = await new_member()
    await add_devices(member, "tok-a")
    await schedule(outgoing(member, "points_earned:1", purpose=MessagePurpose.TRANSACTIONAL))


async def test_push_off_logs_the_push_and_keeps_the_inbox(
    db: str, clock: FrozenClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given push switched off and one push owed
    settings = app_settings(db, tmp_path).model_copy(update={"push_enabled": False})
    await _owe_one()
    # when the consumer runs
    with caplog.at_level(logging.INFO, logger="klubb.push.consumer"):
        async with push_consumer(settings) as consumer:
            assert isinstance(consumer.sender, LoggedSender)
            assert await consumer.deliver_due(None) == 1
    # then the push is logged (ids only) and counted as sent
    assert await PushDelivery.all().values_list("status", "fcm_message_id") == [("sent", "logged")]
    assert [r.getMessage() for r in caplog.records] == [
        "push (not sent, push is off) to tok-a…: {'message_id': 'SW5ib3hNZXNzYWdlOjE=', 'deep_link': 'klubb://home'}"
    ]


async def test_development_sends_to_a_fake_fcm_of_its_own(db: str, clock: FrozenClock, tmp_path: Path) -> None:
    # given development settings without a fake URL, and one push owed
    settings = app_settings(db, tmp_path).model_copy(update={"push_enabled": True, "push_fcm_fake_url": None})
    await _owe_one()
    before = os.environ.get("SSL_CERT_FILE")
    # when the consumer runs
    async with push_consumer(settings) as consumer:
        assert isinstance(consumer.sender, FcmSender)
        config = consumer.sender.config
        assert await consumer.deliver_due(None) == 1
    # then an in-process fake FCM accepted it through the SDK, over HTTP/2 with TLS (its own certificate trusted by
    # the sender alone: the process's environment is as it was)
    assert await PushDelivery.all().values_list("status", "fcm_message_id") == [
        ("sent", "projects/klubb-dev/messages/1")
    ]
    assert config.fake_url is not None
    assert config.fake_url.startswith("https://127.0.0.1:")
    assert config.fake_certificate is not None
    assert os.environ.get("SSL_CERT_FILE") == before


def test_the_lease_outlasts_a_batch(tmp_path: Path) -> None:
    settings = app_settings("sqlite://:memory:", tmp_path)
    # the default (120 s) is above the floor of one call of 100 with a 10 s timeout (5 x 10 + 8 = 58 s)
    assert lease_seconds(settings) == 120.0
    # a shorter one is raised to 5 x the timeout + 8 s per call the batch makes in a row
    short = settings.model_copy(update={"push_lease_seconds": 5.0, "push_fcm_timeout_seconds": 2.0})
    assert lease_seconds(short) == 18.0
    three_calls = short.model_copy(
        update={"push_batch_size": 500, "push_fcm_batch_size": 100, "push_fcm_concurrency": 2}
    )
    assert lease_seconds(three_calls) == 54.0
