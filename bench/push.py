"""FCM fan-out: pushes per second through `push.fcm.FcmSender` (firebase-admin's `send_each_async`, the real SDK)
to the fake FCM (`push.fake`) running in its own process.

    .venv/bin/python -m bench.push [--pushes 20000] [--batch 100] [--concurrency 1] [--http2] [--profile]

`--http2` serves the fake over TLS with HTTP/2 (a throwaway certificate the SDK's httpx client trusts through
SSL_CERT_FILE), as FCM is reached in production; without it, plain HTTP/1.1 (the development path). Reports the
wall rate (messages/s), the client's CPU per message (this process) and the fake's (its process), checks the fake's
own count against the pushes reported sent, and lists what was not sent. `--profile` runs the send under
pyinstrument (if installed; cProfile otherwise). Issue 11's target: >= 8,000 messages/s on one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import httpx

from bench.procs import tree_cpu
from push.config import CredentialSource, FcmConfig
from push.fake import self_signed_certificate
from push.fcm import FcmSender, Outcome, Push

PROJECT = "klubb-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stats(url: str, context: ssl.SSLContext | None) -> dict[str, int]:
    if context is not None:  # HTTP/2 only: ask with httpx (urllib speaks HTTP/1.1)
        with httpx.Client(http2=True, http1=False, verify=context) as client:
            return dict(client.get(f"{url}/_fake/stats").json())
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=5) as answer:  # noqa: S310 (our own fake)
        return dict(json.loads(answer.read()))


def _start_fake(port: int, tls: tuple[Path, Path] | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "push.fake", "--port", str(port), "--project", PROJECT, "--no-record"]
    if tls is not None:
        command += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
    fake = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return fake
        except OSError:
            time.sleep(0.05)
    fake.kill()
    raise RuntimeError("the fake FCM did not start")


def _pushes(count: int) -> list[Push]:
    return [
        Push(
            token=f"bench-device-{i:07d}-" + "x" * 120,  # FCM tokens are ~150 characters
            title="Double points this weekend",
            body="Your offer is waiting in the app.",
            data={"message_id": str(i), "offer_id": "offer-42", "deep_link": "klubb://offers/42"},
            collapse_key="offer-42",
            ttl_seconds=86400,
            analytics_label="bench",
        )
        for i in range(count)
    ]


class _CProfile:
    """cProfile behind pyinstrument's start/stop/report, for a checkout without pyinstrument."""

    def __init__(self) -> None:
        self.profile = cProfile.Profile()

    def start(self) -> None:
        self.profile.enable()

    def stop(self) -> None:
        self.profile.disable()

    def report(self) -> None:
        pstats.Stats(self.profile).sort_stats("cumulative").print_stats(40)


class _Pyinstrument:
    def __init__(self) -> None:
        import pyinstrument

        self.profiler = pyinstrument.Profiler(async_mode="disabled")

    def start(self) -> None:
        self.profiler.start()

    def stop(self) -> None:
        self.profiler.stop()

    def report(self) -> None:
        print(self.profiler.output_text(unicode=True, show_all=False, timeline=False, color=False, flat=True))


def _profiler() -> _CProfile | _Pyinstrument:
    try:
        return _Pyinstrument()
    except ImportError:
        return _CProfile()


async def _run(
    url: str, context: ssl.SSLContext | None, count: int, batch: int, concurrency: int, profile: bool
) -> tuple[float, float, int, Counter[str]]:
    config = FcmConfig(PROJECT, CredentialSource.DEVELOPMENT, fake_url=url, batch_size=batch, concurrency=concurrency)
    async with FcmSender(config) as sender:
        await sender.send(_pushes(min(count, 1000)))  # warm-up: connections, imports
        before = (await asyncio.to_thread(_stats, url, context))["sent"]
        pushes = _pushes(count)
        profiler = _profiler() if profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.start()
        results = await sender.send(pushes)
        if profiler is not None:
            profiler.stop()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    received = (await asyncio.to_thread(_stats, url, context))["sent"] - before
    outcomes = Counter(str(r.error or r.outcome) for r in results if r.outcome is not Outcome.SENT)
    if profiler is not None:
        profiler.report()
    return wall, cpu, received, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--http2", action="store_true", help="HTTP/2 over TLS to the fake, as to FCM in production")
    args = parser.parse_args()
    port = _free_port()
    directory = tempfile.TemporaryDirectory()
    tls = self_signed_certificate(Path(directory.name)) if args.http2 else None
    context = ssl.create_default_context(cafile=str(tls[0])) if tls else None
    if tls is not None:
        os.environ["SSL_CERT_FILE"] = str(tls[0])  # httpx (the SDK's client) trusts it; nothing else is changed
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    fake = _start_fake(port, tls)
    try:
        fake_cpu = tree_cpu(fake.pid)
        wall, cpu, received, failed = asyncio.run(
            _run(url, context, args.pushes, args.batch, args.concurrency, args.profile)
        )
        fake_used = sum(tree_cpu(fake.pid).values()) - sum(fake_cpu.values())
    finally:
        fake.terminate()
        fake.wait(5)
        directory.cleanup()
    warm = min(args.pushes, 1000)
    sent = args.pushes - sum(failed.values())
    assert received == sent, f"the fake counted {received} of {sent} sent"
    print(
        f"push fan-out: {args.pushes} messages in {wall:.2f} s = {args.pushes / wall:,.0f} msg/s "
        f"({'HTTP/2 over TLS' if tls else 'HTTP/1.1'}, batch {args.batch}, {args.concurrency} batches in flight); "
        f"client CPU {cpu / args.pushes * 1e6:.0f} µs/msg, "
        f"fake CPU {fake_used / (args.pushes + warm) * 1e6:.0f} µs/msg; fake counted {received}"
    )
    for error, count in failed.items():
        print(f"  not sent: {count} x {error}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
