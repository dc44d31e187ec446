"""Push fan-out through the consumer: messages/s through `push.consumer.PushSending.deliver_due` on one worker —
release (consent, caps, quiet hours; the inbox; the deliveries), lease, build, send, record — to the fake FCM
(`push.fake`) in another process through the real SDK, or to a null sender (`--sender null`: what the database side
alone allows). The fake speaks HTTP/2 over TLS (a throwaway certificate the SDK trusts through SSL_CERT_FILE), as
FCM does and as the embedded development fake does; `--http1` measures plain HTTP/1.1 instead.

    .venv/bin/python -m bench.push_fanout [--messages 20000] [--sender fcm|null] [--http1] [--database-url URL]
                                          [--profile]

The database is made from scratch: a temporary SQLite file by default; a PostgreSQL URL must name a scratch
database (its public schema is dropped). Reports wall rate, this process's CPU per message and, with `--profile`,
the functions that dominate (cProfile, cumulative).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from tortoise import connections

from bench.push import PROJECT, _free_port, _start_fake, _stats
from loyalty.db import connect, disconnect, is_postgres, migrate
from loyalty.messages import Outgoing, schedule
from loyalty.models import Device, DevicePlatform, Member, MessagePurpose, PushDelivery, PushMessage, PushPolicy
from push.config import CredentialSource, FcmConfig
from push.consumer import PushSending, Sender
from push.fake import self_signed_certificate
from push.fcm import FcmSender, Outcome, Push, PushResult


class NullSender:
    """Every push accepted at once: the consumer's own cost, without HTTP."""

    async def send(self, pushes: Sequence[Push]) -> list[PushResult]:
        return [PushResult(push, Outcome.SENT, message_name=f"projects/{PROJECT}/messages/0") for push in pushes]


async def _fresh(url: str) -> None:
    if is_postgres(url):
        await connect(url)
        await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await disconnect()
    await migrate(url)
    await connect(url)


async def _seed(count: int, now: datetime) -> None:
    """`count` members with one device each, one transactional message each, due now; no caps."""
    await PushPolicy.create(transactional_per_day=None, updated_at=now)
    for start in range(0, count, 5000):
        numbers = range(start, min(count, start + 5000))
        await Member.bulk_create(
            [Member(firebase_uid=f"b{n}", member_number=f"B{n:09d}", card_secret="s" * 32, created_at=now,
                    updated_at=now) for n in numbers],
            batch_size=1000,
        )  # fmt: skip
    ids = cast(list[int], await Member.all().order_by("id").values_list("id", flat=True))
    await Device.bulk_create(
        [Device(member_id=i, token=f"bench-device-{i:07d}-" + "x" * 120, platform=DevicePlatform.ANDROID,
                created_at=now, last_seen_at=now) for i in ids],
        batch_size=1000,
    )  # fmt: skip
    for start in range(0, len(ids), 5000):
        owed = [
            Outgoing(i, "points_earned:1", MessagePurpose.TRANSACTIONAL, "Points earned", "You earned 12", now)
            for i in ids[start : start + 5000]
        ]
        await schedule(connections.get("default"), owed, now)


async def _run(args: argparse.Namespace, url: str | None) -> tuple[float, float, int]:
    now = datetime.now(UTC)
    await _seed(args.messages, now)
    sender: Sender
    if url is None:
        sender = NullSender()
        closer = None
    else:
        config = FcmConfig(
            PROJECT, CredentialSource.DEVELOPMENT, fake_url=url, concurrency=args.concurrency, batch_size=args.fcm_batch
        )
        fcm = FcmSender(config)
        sender, closer = fcm, fcm
    consumer = PushSending(sender, batch_size=args.batch, release_batch=args.release_batch)
    profiler = cProfile.Profile() if args.profile else None
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        attempts = await consumer.deliver_due(None)
        if profiler is not None:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        if closer is not None:
            await closer.aclose()
    sent = await PushDelivery.filter(status="sent").count()
    inbox = await PushMessage.filter(status="sent").count()
    if (attempts, sent, inbox) != (args.messages,) * 3:
        raise RuntimeError(f"attempts {attempts}, deliveries sent {sent}, inbox {inbox}: not {args.messages} each")
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return wall, cpu, attempts


async def _main(args: argparse.Namespace, fake_url: str | None) -> tuple[float, float, int]:
    database = args.database_url or f"sqlite://{tempfile.mkdtemp(prefix='klubb-push-bench-')}/bench.sqlite3"
    await _fresh(database)
    try:
        return await _run(args, fake_url)
    finally:
        await disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--sender", choices=("fcm", "null"), default="fcm")
    parser.add_argument("--batch", type=int, default=500, help="deliveries leased and recorded at a time")
    parser.add_argument("--fcm-batch", type=int, default=100, help="messages per send_each_async call")
    parser.add_argument("--release-batch", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--http1", action="store_true", help="plain HTTP/1.1 to the fake instead of HTTP/2 over TLS")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    fake = None
    url = None
    context: ssl.SSLContext | None = None
    directory = tempfile.TemporaryDirectory()
    if args.sender == "fcm":
        port = _free_port()
        tls = None if args.http1 else self_signed_certificate(Path(directory.name))
        if tls is not None:
            context = ssl.create_default_context(cafile=str(tls[0]))
            os.environ["SSL_CERT_FILE"] = str(tls[0])  # the SDK's httpx client trusts the fake (this process only)
        url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        fake = _start_fake(port, tls)
    try:
        wall, cpu, attempts = asyncio.run(_main(args, url))
        received = _stats(url, context)["sent"] if url is not None else attempts
    finally:
        if fake is not None:
            fake.terminate()
            fake.wait(5)
        directory.cleanup()
    transport = "" if url is None else (", HTTP/1.1" if args.http1 else ", HTTP/2 over TLS")
    engine = "PostgreSQL" if args.database_url and is_postgres(args.database_url) else "SQLite"
    print(
        f"push fan-out through deliver_due ({args.sender} sender{transport}, {engine}): {attempts} messages in "
        f"{wall:.2f} s = "
        f"{attempts / wall:,.0f} msg/s; worker CPU {cpu / attempts * 1e6:.0f} µs/msg; fake received {received}"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
