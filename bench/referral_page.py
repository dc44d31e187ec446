"""The referral landing page under load: requests/s and latency of `GET /r/<code>` against one klubb process.

    .venv/bin/python -m bench.referral_page [--database-url postgres://…] [--members 1000] [--seconds 10]
                                            [--connections 16]

The database is reset and seeded (the test program, a `[referrals]` policy with all three links, `--members` members
with codes); PostgreSQL: give it a database of its own (its public schema is dropped). Without `--database-url`, a
SQLite file in a temporary directory. klubb runs under uvicorn as `klubb serve` does (one process, no access log, no
embedded worker). The load is `--connections` keep-alive HTTP/1.1 connections, each sending its next request when the
previous answer is read (a closed loop), for `--seconds` after a 2 s warm-up, in a mix a shared link sees: 80 % members'
codes (English and Swedish browsers alike), 15 % unknown codes, 5 % malformed ones. The client is a few lines of
asyncio streams (not httpx: its per-request CPU would be what is measured); its own CPU is reported, since on a
small machine it competes with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from tortoise import connections

from loyalty.db import connect, disconnect, is_postgres, migrate
from loyalty.members import enroll_member
from loyalty.program import apply_program_config
from loyalty.referrals import apply_referral_config, code_of, new_code
from tests.conftest import TEST_PROGRAM
from tests.server import free_port

ROOT = Path(__file__).resolve().parents[1]
POLICY = {
    "referee_points": 200,
    "min_spend": 2000,
    "app_store_url": "https://apps.apple.com/app/id123",
    "play_store_url": "https://play.google.com/store/apps/details?id=com.example.klubb",
    "open_app_url": "https://app.example.com/invite/{code}",
}


async def seed(database_url: str, members: int) -> list[str]:
    """A fresh database with the program, the policy and `members` members; their codes."""
    if is_postgres(database_url):
        await connect(database_url)
        await connections.get("default").execute_script("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        await disconnect()
    await migrate(database_url)
    await disconnect()
    await connect(database_url)
    try:
        await apply_program_config(TEST_PROGRAM)
        await apply_referral_config(POLICY)
        codes = []
        for i in range(members):
            member, _ = await enroll_member(f"bench-{i}", email=f"bench{i}@example.com", display_name=f"Bench {i}")
            codes.append(await code_of(member.id))
        return codes
    finally:
        await disconnect()


def requests(codes: list[str], count: int) -> list[bytes]:
    """`count` requests in the mix (module docstring), shuffled with a fixed seed."""
    rng = random.Random(12)
    known = set(codes)
    unknown = [c for c in (new_code() for _ in range(200)) if c not in known]
    out = []
    for i in range(count):
        roll = rng.random()
        path = f"/r/{rng.choice(codes)}" if roll < 0.8 else f"/r/{rng.choice(unknown)}" if roll < 0.95 else "/r/%00x"
        language = "sv-SE,sv;q=0.9,en;q=0.5" if i % 2 else "en-GB,en;q=0.9"
        out.append(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept-Language: {language}\r\n\r\n".encode())
    return out


async def connection(port: int, mix: list[bytes], until: float, warm_until: float, latencies: list[float]) -> int:
    """One keep-alive connection sending `mix` round robin until `until`; latencies after `warm_until` recorded."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    try:
        while (now := time.perf_counter()) < until:
            writer.write(mix[sent % len(mix)])
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            if now >= warm_until:
                latencies.append(time.perf_counter() - now)
            sent += 1
    finally:
        writer.close()
    return sent


async def load(port: int, mix: list[bytes], seconds: float, connection_count: int) -> dict[str, Any]:
    latencies: list[float] = []
    start = time.perf_counter()
    warm_until = start + 2.0
    until = warm_until + seconds
    cpu = time.process_time()
    chunk = len(mix) // connection_count
    await asyncio.gather(
        *(
            connection(port, mix[i * chunk : (i + 1) * chunk], until, warm_until, latencies)
            for i in range(connection_count)
        )
    )
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "requests_per_second": round(len(ordered) / seconds),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "client_cpu_share": round((time.process_time() - cpu) / (seconds + 2.0), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="bench-referral-"))
    database_url = args.database_url or f"sqlite://{scratch / 'klubb.sqlite3'}"
    codes = asyncio.run(seed(database_url, args.members))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLUBB_")}
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    env.update(
        {
            "KLUBB_DATABASE_URL": database_url,
            "KLUBB_EMBEDDED_WORKER": "false",
            "KLUBB_PUBLIC_URL": "https://klubb.example.com",
            "KLUBB_JWT_DEV_KEY_FILE": str(scratch / "jwt.pem"),
            "KLUBB_WALLET_DEV_DIRECTORY": str(scratch / "wallet-dev"),
            "KLUBB_GOOGLE_WALLET_DEV_KEY_FILE": str(scratch / "google.json"),
            "KLUBB_PUSH_ENABLED": "false",
            "KLUBB_LIVE_UPDATES_ENABLED": "false",
        }
    )
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    command += ["--no-access-log", "--log-level", "warning"]
    log = (scratch / "server.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit((scratch / "server.log").read_text()) from None
                time.sleep(0.2)
        check = httpx.get(f"http://127.0.0.1:{port}/r/{codes[0]}")
        assert check.status_code == 200, check.text
        mix = requests(codes, 16_000)
        result = asyncio.run(load(port, mix, args.seconds, args.connections))
        engine = "postgres" if is_postgres(database_url) else "sqlite"
        print({"engine": engine, "members": args.members, "connections": args.connections, **result})
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
