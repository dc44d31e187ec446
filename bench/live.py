"""Live updates' fan-out latency: from a purchase's commit to its `memberUpdated` message on the member's sockets.

    .venv/bin/python -m bench.live [--database-url postgres://…] [--members 250] [--rounds 20] [--burst 50]
                                   [--worker-poll SECONDS]

Two API processes (uvicorn, as `klubb serve` runs them) share the database and a Redis channel of the run's own
(`--redis-url`, default redis://127.0.0.1:6379/0). Every member holds one socket on each process (`--members` x 2
sockets, real websockets over TCP, graphql-transport-ws). Each round records `--burst` purchases for distinct members
through `loyalty.purchases.record_purchase` (each commit timestamped), then the outbox is drained and published: by
default here, right after the burst (`drain_once` with the live consumer on Redis: the path from commit to socket
without the worker's idle polling), or with `--worker-poll P` by a `klubb worker --poll-seconds P` process (adds up
to P seconds: the worker sleeps when the outbox is empty). Latency = the message's arrival - its purchase's commit,
per socket: `--rounds` x `--burst` x 2 samples; p50/p90/p99/max reported, and every message is checked (its member's
own balance, never another's).

The database is reset (PostgreSQL: its public schema dropped and migrated) — give it one of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from api.auth.tokens import MEMBER_AUDIENCE, TokenService
from api.live import RedisBroker
from api.settings import Settings
from loyalty import purchases
from loyalty.actors import Actor
from loyalty.db import connect, disconnect, migrate
from loyalty.earning import LineInput
from loyalty.members import enroll_member
from loyalty.models import StaffRole
from loyalty.program import apply_program_config
from tests.api.live_client import Socket, member_socket
from tests.server import free_port
from worker.live import LiveConsumer
from worker.runner import drain_once

ROOT = Path(__file__).resolve().parents[1]
PROGRAM: dict[str, Any] = {
    "program": {"name": "Bench Club", "currency": "EUR", "earn_rate": 1, "pending_days": 14, "expiry_days": 365,
                "expiring_soon_days": 30, "tier_metric": "points", "tier_period": "calendar_year"},
    "tiers": [{"name": "Member", "threshold": 0, "multiplier": 1, "benefits": []},
              {"name": "Silver", "threshold": 500000, "multiplier": 1, "benefits": []}],
}  # fmt: skip
TILL = Actor(kind="api_key", id=1, role=StaffRole.CASHIER, name="bench till")


async def reset(url: str) -> None:
    if url.startswith("postgres"):
        await connect(url)
        from tortoise import connections

        await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await disconnect()
    await migrate(url)
    await disconnect()


def start_server(url: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return server, base.replace("http://", "ws://") + "/graphql"
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server did not start:\n{log.read_text()}")


async def run(args: argparse.Namespace, directory: Path) -> tuple[list[float], list[float]]:
    url = args.database_url or f"sqlite://{directory / 'live.sqlite3'}"
    await reset(url)
    await connect(url)
    await apply_program_config(PROGRAM)
    key = directory / "jwt.pem"
    tokens = TokenService(Settings(jwt_dev_key_file=str(key)))
    members = [(await enroll_member(f"bench-{n}", email=f"b{n}@example.com"))[0].id for n in range(args.members)]
    channel = f"klubb-bench:{uuid.uuid4()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLUBB_")}
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    env.update({"KLUBB_DATABASE_URL": url, "KLUBB_JWT_DEV_KEY_FILE": str(key), "KLUBB_REDIS_URL": args.redis_url,
                "KLUBB_REDIS_CHANNEL": channel, "KLUBB_EMBEDDED_WORKER": "false", "KLUBB_WALLET_ENABLED": "false",
                "KLUBB_GOOGLE_WALLET_ENABLED": "false", "KLUBB_LIVE_CONNECTIONS_PER_MEMBER": "2"})  # fmt: skip
    processes = [start_server(url, env, directory / f"server-{n}.log") for n in range(2)]
    worker = None
    if args.worker_poll is not None:
        command = [sys.executable, "-c", "from api.cli import app; app(prog_name='klubb')", "worker",
                   "--poll-seconds", str(args.worker_poll)]  # fmt: skip
        worker = subprocess.Popen(  # noqa: ASYNC220 -- started once, before the measurement
            command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    broker = RedisBroker(args.redis_url, channel=channel)
    latencies: list[float] = []
    fan_out: list[float] = []  # from the drain's start (dispatch, publish, Redis, fresh read, send)
    try:
        async with asyncio.TaskGroup() as group:
            sockets: dict[int, list[Socket]] = {}
            contexts = []
            for member_id in members:
                token = tokens.issue(str(member_id), MEMBER_AUDIENCE).token
                for _, ws_url in processes:
                    context = member_socket(ws_url, token)
                    contexts.append(context)
                    ws = await context.__aenter__()
                    await ws.subscribe()
                    sockets.setdefault(member_id, []).append(ws)
            print(f"{len(contexts)} sockets subscribed ({args.members} members x 2 API processes)")
            totals = dict.fromkeys(members, 0)
            receipt = 0
            for _ in range(args.rounds):
                chosen = random.sample(members, args.burst)
                committed: dict[int, float] = {}
                waits = []
                for member_id in chosen:
                    for ws in sockets[member_id]:
                        waits.append(group.create_task(arrival(ws, member_id)))
                for member_id in chosen:
                    receipt += 1
                    total = random.randint(1, 200) * 100
                    await purchases.record_purchase(TILL, purchases.PurchaseRequest(
                        member_id=member_id, store_code="S1", receipt_id=f"R{receipt}",
                        occurred_at=datetime.now(UTC), currency="EUR", total=total,
                        lines=(LineInput(sku="ITEM", category="", quantity=1, amount=total),)))  # fmt: skip
                    committed[member_id] = time.perf_counter()
                    totals[member_id] += total // 100
                drained = time.perf_counter()
                if worker is None:
                    await drain_once([LiveConsumer(broker)])
                for wait in waits:
                    member_id, arrived, pending = await wait
                    assert pending == totals[member_id], (member_id, pending, totals[member_id])
                    latencies.append(arrived - committed[member_id])
                    fan_out.append(arrived - drained)
            for context in contexts:
                await context.__aexit__(None, None, None)
    finally:
        await broker.aclose()
        for server, _ in processes:
            server.terminate()
            server.wait(timeout=20)
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=20)
        await disconnect()
    return latencies, fan_out


async def arrival(ws: Socket, member_id: int) -> tuple[int, float, int]:
    payload = await ws.next(seconds=30)
    arrived = time.perf_counter()
    return member_id, arrived, payload["data"]["memberUpdated"]["points"]["pending"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--members", type=int, default=250)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--burst", type=int, default=50, help="purchases per round, for distinct members")
    parser.add_argument("--worker-poll", type=float, default=None, help="publish from `klubb worker` polling so")
    args = parser.parse_args()
    if args.burst > args.members:
        parser.error("--burst must not exceed --members")
    with tempfile.TemporaryDirectory() as tmp:
        latencies, fan_out = asyncio.run(run(args, Path(tmp)))
    mode = f"klubb worker --poll-seconds {args.worker_poll}" if args.worker_poll is not None else "drained at once"
    print(f"memberUpdated, {len(latencies)} messages, bursts of {args.burst} purchases ({mode}):")
    report("commit -> socket", latencies)
    if args.worker_poll is None:
        report("drain start -> socket (the fan-out)", fan_out)


def report(label: str, seconds: list[float]) -> None:
    ms = sorted(x * 1000 for x in seconds)
    quantiles = statistics.quantiles(ms, n=100)
    print(
        f"  {label}: p50 {quantiles[49]:.1f} ms, p90 {quantiles[89]:.1f} ms, p99 {quantiles[98]:.1f} ms, "
        f"max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
