"""A push campaign end to end on PostgreSQL: the audience written, the campaign's messages written, released and
sent to the fake FCM (its own process, HTTP/2 over TLS) through the real SDK, stage by stage.

    .venv/bin/python -m bench.push_end_to_end postgres://postgres@127.0.0.1:5432/klubb_bench_push \\
        [--members 100000] [--batch 100] [--fcm-batch 100] [--fanout 5000] [--profile]

WIPES the database it is given (schema dropped and migrated). Stages, each timed (wall) with this process's CPU
(the worker's) and the database backends' CPU:
1. members: `--members` written in one `INSERT … SELECT FROM generate_series` — every other one consenting (with
   the consent record the sender re-checks), two in three with a device (150-character tokens);
2. campaign: the real `send-push-campaigns` job (`loyalty.campaigns.send_due_campaigns`) writes one message per
   consenting member (audience members/s, messages/s);
3. release: `loyalty.messages.release_due` until nothing is due (consent re-read, caps, the inbox, one
   `PushDelivery` per device: messages/s);
4. send: the push consumer (`push.consumer.PushSending.deliver_due`, batches of `--batch` as
   `KLUBB_PUSH_BATCH_SIZE`, `send_each_async` calls of `--fcm-batch`) to the fake until nothing is due
   (pushes/s, worker CPU per push); every delivery is checked SENT and the fake's count against it;
then the total, and the pure fan-out (`FcmSender.send` of `--fanout` pushes, no database: `bench/push.py`'s figure)
on the same fake. `--profile` profiles the send stage (pyinstrument if installed, else cProfile).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from tortoise import connections

from api.settings import Settings
from bench import push as fanout
from bench.procs import postgres_backends, tree_cpu, used_since
from loyalty import campaigns, clock, messages
from loyalty.actors import SYSTEM
from loyalty.db import connect, disconnect, is_postgres, migrate
from loyalty.models import PushDelivery, PushMessage
from loyalty.program import apply_program_config
from push.config import CredentialSource, FcmConfig
from push.consumer import PushSending
from push.fake import self_signed_certificate
from push.fcm import FcmSender

PROGRAM = {
    "program": {"name": "Bench", "currency": "EUR", "earn_rate": 1},
    "tiers": [{"name": "Member", "threshold": 0}, {"name": "Gold", "threshold": 1000}],
}
DEFAULT_BATCH = int(Settings.model_fields["push_batch_size"].default)  # KLUBB_PUSH_BATCH_SIZE's default

T = TypeVar("T")


@dataclass(frozen=True)
class Stage:
    name: str
    count: int  # what the stage's rate counts
    unit: str  # singular
    wall: float
    worker_cpu: float  # this process
    database_cpu: float  # the PostgreSQL backends of the bench's database

    @property
    def plural(self) -> str:
        return self.unit + ("es" if self.unit.endswith("sh") else "s")

    def line(self) -> str:
        per = f"{self.worker_cpu / self.count * 1e6:,.0f} µs" if self.count else "-"
        db = f"{self.database_cpu / self.count * 1e6:,.0f} µs" if self.count else "-"
        return (
            f"{self.name:<9} {self.count:>8,} {self.plural:<9} {self.wall:>7.2f} s {self.count / self.wall:>9,.0f}/s"
            f"   worker CPU {per:>9}/{self.unit}   database CPU {db:>8}/{self.unit}"
        )


async def _timed(name: str, unit: str, database: str, work: Callable[[], Awaitable[int]]) -> Stage:
    backends = postgres_backends(database)
    cpu, wall = time.process_time(), time.perf_counter()
    count = await work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return Stage(name, count, unit, wall, cpu, used_since(backends, postgres_backends(database)))


async def _reset(url: str) -> None:
    await connect(url)
    await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await disconnect()
    await migrate(url)
    await disconnect()


async def _members(count: int) -> int:
    """`count` members, every other one consenting (the cache and its record), two in three with a device."""
    conn = connections.get("default")
    now = clock.now()
    await conn.execute_query(
        'INSERT INTO "member" ("firebase_uid", "member_number", "card_secret", "tier_id", "interests",'
        ' "marketing_consent", "marketing_consent_at", "timezone", "points_available", "points_pending",'
        ' "lifetime_earned", "display_name", "created_at", "updated_at")'
        " SELECT 'bench-' || n, LPAD(n::text, 12, '0'), 'secret', (SELECT MIN(id) FROM tier), '[]'::jsonb,"
        " n % 2 = 0, CASE WHEN n % 2 = 0 THEN $2::timestamptz END, 'Europe/Stockholm', 0, 0, 0, '', $2, $2"
        " FROM generate_series(1, $1) AS n",
        [count, now],
    )
    await conn.execute_query(
        'INSERT INTO "consent" ("member_id", "channel", "purpose", "granted", "source", "changed_at")'
        " SELECT id, 'push', 'marketing', TRUE, 'import', $1 FROM \"member\" WHERE marketing_consent",
        [now],
    )
    await conn.execute_query(
        'INSERT INTO "device" ("member_id", "token", "platform", "app_version", "locale", "created_at",'
        ' "last_seen_at")'
        " SELECT id, 'bench-token-' || id || '-' || REPEAT('x', 120), 'android', '1.0',"
        " CASE WHEN id % 8 = 0 THEN 'sv-SE' ELSE 'en' END, $1, $1"
        ' FROM "member" WHERE id % 3 <> 0',
        [now],
    )
    return count


async def _release() -> int:
    released = 0
    while (batch := await messages.release_due(1000)).total:
        released += batch.total
    return released


def _profiler() -> fanout._CProfile | fanout._Pyinstrument:
    return fanout._profiler()


async def _run(args: argparse.Namespace, fake_url: str, certificate: str) -> list[Stage]:
    database = args.url.rsplit("/", 1)[1].split("?")[0]
    clock.use_clock(clock.FrozenClock(datetime.now(UTC)))
    await _reset(args.url)
    await connect(args.url)
    try:
        await apply_program_config(PROGRAM)
        stages = [await _timed("members", "member", database, lambda: _members(args.members))]
        spec = campaigns.CampaignSpec(name="Bench", title={"en": "Hello", "sv": "Hej"}, body={"en": "Hi", "sv": "Hej"})
        campaign = await campaigns.create_campaign(SYSTEM, spec)
        await campaigns.schedule_campaign(SYSTEM, campaign.id)

        async def dry_run() -> int:  # the staff API's "reaches N members now": one count over the members
            return (await campaigns.dry_run(campaign)).reach

        stages.append(await _timed("dry run", "member", database, dry_run))
        stages.append(await _timed("campaign", "message", database, campaigns.send_due_campaigns))
        stages.append(await _timed("release", "message", database, _release))
        config = FcmConfig(
            fanout.PROJECT,
            CredentialSource.DEVELOPMENT,
            fake_url=fake_url,
            fake_certificate=certificate,
            batch_size=args.fcm_batch,
        )
        async with FcmSender(config) as sender:
            consumer = PushSending(sender, batch_size=args.batch, lease_seconds=300)
            profiler = _profiler() if args.profile else None
            if profiler is not None:
                profiler.start()
            stages.append(await _timed("send", "push", database, lambda: consumer.deliver_due(None)))
            if profiler is not None:
                profiler.stop()
                profiler.report()
        deliveries = await PushDelivery.all().count()
        sent = await PushDelivery.filter(status="sent").count()
        inbox = await PushMessage.filter(status="sent").count()
        counts = {stage.name: stage.count for stage in stages}
        if not sent == deliveries == counts["send"] or inbox != counts["campaign"]:
            raise RuntimeError(f"{sent} of {deliveries} deliveries sent, {inbox} inbox rows: not all")
        return stages
    finally:
        await disconnect()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a PostgreSQL database to WIPE and use")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="deliveries leased and recorded at a time")
    parser.add_argument("--fcm-batch", type=int, default=100, help="messages per send_each_async call")
    parser.add_argument("--fanout", type=int, default=5000, help="pushes for the pure fan-out figure (0: none)")
    parser.add_argument("--profile", action="store_true", help="profile the send stage")
    args = parser.parse_args(argv)
    if not is_postgres(args.url):
        raise SystemExit("this bench runs on PostgreSQL")
    port = fanout._free_port()
    directory = tempfile.TemporaryDirectory()
    tls = self_signed_certificate(Path(directory.name))
    url = f"https://127.0.0.1:{port}"
    fake = fanout._start_fake(port, tls)
    try:
        fake_before = sum(tree_cpu(fake.pid).values())
        started = time.perf_counter()
        stages = asyncio.run(_run(args, url, str(tls[0])))
        total = time.perf_counter() - started
        fake_cpu = sum(tree_cpu(fake.pid).values()) - fake_before
        context = ssl.create_default_context(cafile=str(tls[0]))
        received = fanout._stats(url, context)["sent"]
        pure = None
        if args.fanout:
            os.environ["SSL_CERT_FILE"] = str(tls[0])  # bench.push's sender trusts the fake so (this process only)
            pure = asyncio.run(fanout._run(url, context, args.fanout, args.fcm_batch, 1, False))
    finally:
        fake.terminate()
        fake.wait(5)
        directory.cleanup()
    send = stages[-1]
    if received != send.count:
        raise RuntimeError(f"the fake counted {received} pushes, the consumer sent {send.count}")
    print(
        f"push campaign end to end (PostgreSQL, {args.members:,} members; consumer batch {args.batch}, "
        f"send_each_async calls of {args.fcm_batch}, HTTP/2 over TLS to the fake in its own process):"
    )
    for stage in stages:
        print("  " + stage.line())
    pipeline = [s for s in stages if s.name in ("campaign", "release", "send")]
    worker = sum(s.worker_cpu for s in pipeline)
    print(
        f"  total    {total:.2f} s wall (schema reset included); campaign → last push "
        f"{sum(s.wall for s in pipeline):.2f} s; worker CPU per push (campaign + release + send) "
        f"{worker / send.count * 1e6:,.0f} µs; fake CPU per push {fake_cpu / send.count * 1e6:,.0f} µs"
    )
    if pure is not None:
        wall, cpu, counted, failed = pure
        print(
            f"  fan-out  {args.fanout:>8,} pushes    {wall:>7.2f} s {args.fanout / wall:>9,.0f}/s   "
            f"client CPU {cpu / args.fanout * 1e6:,.0f} µs/push (FcmSender.send alone, no database; "
            f"fake counted {counted}{', not sent: ' + str(dict(failed)) if failed else ''})"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
