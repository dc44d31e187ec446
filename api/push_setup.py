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
import math
from collections.abc import AsyncIterator

from api.settings import Settings
from push.config import CredentialSource
from push.consumer import LoggedSender, PushSending
from push.fake import FakeFcm
from push.fcm import FcmSender

log = logging.getLogger("klubb.push")


def lease_seconds(settings: Settings) -> float:
    """`KLUBB_PUSH_LEASE_SECONDS`, raised to what one batch can take at worst if set lower: its
    `send_each_async` calls one after another (`KLUBB_PUSH_FCM_CONCURRENCY` at a time), each up to the SDK's 5 tries
    of a 500/503 with the timeout each and its backoff between them (0 + 1 + 2 + 4 s). A lease that ends while its
    batch is still sending lets another worker send it again."""
    calls = math.ceil(settings.push_batch_size / (settings.push_fcm_batch_size * settings.push_fcm_concurrency))
    floor = calls * (5 * settings.push_fcm_timeout_seconds + 8.0)
    if settings.push_lease_seconds < floor:
        log.warning(
            "KLUBB_PUSH_LEASE_SECONDS=%s is shorter than a batch of KLUBB_PUSH_BATCH_SIZE=%d can take: using %s",
            settings.push_lease_seconds,
            settings.push_batch_size,
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
            # A warning, as the wallets' development notices are: the demo prints it, and no phone gets these pushes.
            log.warning(
                "App push: no FCM credentials configured; pushes go to an in-process fake FCM at %s (real devices get "
                "nothing; KLUBB_PUSH_FCM_FAKE_URL chooses another fake)",
                url,
            )
        sender = await stack.enter_async_context(FcmSender(config))
        yield PushSending(sender, lease_seconds=lease, retry_hours=retry_hours, batch_size=batch)
