"""Bench: writing a push campaign's messages to 100,000 members on PostgreSQL (members/s), and its dry run.

    .venv/bin/python -m bench.push_campaign postgres://postgres@127.0.0.1:5432/klubb_bench_push --members 100000

WIPES the database it is given (schema dropped and migrated). Members are written in one `INSERT … SELECT FROM
generate_series` (half consenting, a quarter with a device, some Swedish); the campaign then runs through the real
`send-push-campaigns` job (`loyalty.campaigns.send_due_campaigns`: keyset batches, one transaction each with the
cursor's conditional update). Prints the dry run's time and counts, and the job's time, messages and members/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

from tortoise import connections

from loyalty import campaigns, clock
from loyalty.actors import SYSTEM
from loyalty.db import connect, disconnect, is_postgres, migrate
from loyalty.models import PushMessage
from loyalty.program import apply_program_config

PROGRAM = {
    "program": {"name": "Bench", "currency": "EUR", "earn_rate": 1},
    "tiers": [{"name": "Member", "threshold": 0}, {"name": "Gold", "threshold": 1000}],
}


async def _reset(url: str) -> None:
    await connect(url)
    await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    await disconnect()
    await migrate(url)
    await disconnect()


async def _members(count: int) -> None:
    conn = connections.get("default")
    now = clock.now()
    await conn.execute_query(
        'INSERT INTO "member" ("firebase_uid", "member_number", "card_secret", "tier_id", "interests",'
        ' "marketing_consent", "timezone", "points_available", "points_pending", "lifetime_earned",'
        ' "display_name", "created_at", "updated_at")'
        " SELECT 'bench-' || n, LPAD(n::text, 12, '0'), 'secret', (SELECT MIN(id) FROM tier), '[]'::jsonb,"
        " n % 2 = 0, 'Europe/Stockholm', 0, 0, 0, '', $2, $2 FROM generate_series(1, $1) AS n",
        [count, now],
    )
    await conn.execute_query(
        'INSERT INTO "device" ("member_id", "token", "platform", "app_version", "locale", "created_at",'
        ' "last_seen_at")'
        " SELECT id, 'token-' || id, 'android', '1.0', CASE WHEN id % 8 = 0 THEN 'sv-SE' ELSE 'en' END, $1, $1"
        ' FROM "member" WHERE id % 4 = 0',
        [now],
    )


async def main(url: str, count: int, batch_size: int) -> None:
    if not is_postgres(url):
        raise SystemExit("this bench runs on PostgreSQL")
    clock.use_clock(clock.FrozenClock(datetime.now(UTC)))
    await _reset(url)
    await connect(url)
    try:
        await apply_program_config(PROGRAM)
        started = time.perf_counter()
        await _members(count)
        print(f"members: {count} written in {time.perf_counter() - started:.1f} s")
        spec = campaigns.CampaignSpec(name="Bench", title={"en": "Hello", "sv": "Hej"}, body={"en": "Hi", "sv": "Hej"})
        campaign = await campaigns.create_campaign(SYSTEM, spec)
        await campaigns.schedule_campaign(SYSTEM, campaign.id)

        started = time.perf_counter()
        dry = await campaigns.dry_run(campaign)
        print(f"dry run: {dry} in {(time.perf_counter() - started) * 1000:.0f} ms")

        started = time.perf_counter()
        written = await campaigns.send_due_campaigns(batch_size=batch_size)
        elapsed = time.perf_counter() - started
        assert written == dry.consenting == await PushMessage.all().count()
        print(
            f"campaign: {written} messages for {count} members in {elapsed:.1f} s (batches of {batch_size}):"
            f" {written / elapsed:,.0f} messages/s, {count / elapsed:,.0f} audience members/s"
        )
    finally:
        await disconnect()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="a PostgreSQL database to WIPE and use")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=campaigns.BATCH_SIZE)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.members, args.batch_size))
