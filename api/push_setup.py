"""App push, assembled: the push outbox consumer (`push.consumer.PushSending`) with its FCM sender, from the
settings (`KLUBB_PUSH_*`), for the embedded worker and `klubb worker`.

- Push off (`KLUBB_PUSH_ENABLED=false`): the consumer still releases messages (the inbox) and logs each push
  (ids only) instead of sending it.
- Development and tests without a service account and without `KLUBB_PUSH_FCM_FAKE_URL`: a fake FCM
  (`push.fake.FakeFcm`, not recording) is started on this process's loop on a free port, so the embedded default
  and `make demo` need nothing else running; set `KLUBB_PUSH_FCM_FAKE_URL` to send to a fake of your own
  (`python -m push.fake`, whose `/_fake/stats` counts what arrived).
- Otherwise (production, or a service account file): the real FCM through firebase-admin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator

from api.settings import Settings
from push.config import CredentialSource
from push.consumer import LoggedSender, PushSending
from push.fake import FakeFcm
from push.fcm import FcmSender

log = logging.getLogger("klubb.push")


def lease_seconds(settings: Settings) -> float:
    """`KLUBB_PUSH_LEASE_SECONDS`, raised to what one batch can take at worst if set lower: the SDK's 5 tries of
    a 500/503, each up to the timeout, and its backoff between them (0.5 s doubling, under 8 s). A lease that ends
    while its batch is still sending lets another worker send it again."""
    floor = 5 * settings.push_fcm_timeout_seconds + 8.0
    if settings.push_lease_seconds < floor:
        log.warning(
            "KLUBB_PUSH_LEASE_SECONDS=%s is shorter than a batch can take (5 x KLUBB_PUSH_FCM_TIMEOUT_SECONDS + 8 s): "
            "using %s",
            settings.push_lease_seconds,
            floor,
        )
    return max(settings.push_lease_seconds, floor)


@contextlib.asynccontextmanager
async def push_consumer(settings: Settings) -> AsyncIterator[PushSending]:
    """The push consumer for these settings, its sender (and development's fake FCM) closed on exit."""
    lease, retry_hours, batch = lease_seconds(settings), settings.push_retry_hours, settings.push_batch_size
    if not settings.push_enabled:
        yield PushSending(LoggedSender(), lease_seconds=lease, retry_hours=retry_hours, batch_size=batch)
        return
    config = settings.push_config()
    async with contextlib.AsyncExitStack() as stack:
        if config.credentials is CredentialSource.DEVELOPMENT and settings.push_fcm_fake_url is None:
            fake = FakeFcm(project=config.project_id, token=config.development_token, record=False)
            url = await fake.start()
            stack.push_async_callback(fake.stop)
            config = dataclasses.replace(config, fake_url=url)
            log.info("app pushes go to an in-process fake FCM at %s (KLUBB_PUSH_FCM_FAKE_URL to choose one)", url)
        sender = await stack.enter_async_context(FcmSender(config))
        yield PushSending(sender, lease_seconds=lease, retry_hours=retry_hours, batch_size=batch)
