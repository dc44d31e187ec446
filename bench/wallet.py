"""Apple Wallet throughput, in one process: passes built and signed per second, and APNs pushes per second.

    .venv/bin/python -m bench.wallet [--seconds 5] [--pushes 20000] [--concurrency 200]

- passes: `wallet.pkpass.build_pass` (pass.json, images, en + sv strings, manifest, RSA-2048 CMS signature, zip) on
  the development chain, for `--seconds`;
- pushes: `wallet.apns.ApnsClient` (httpcore + h2, TLS with the pass certificate as client certificate) to the
  APNs fake of the tests (hypercorn, HTTP/2, client certificate required) running in its own process, `--pushes`
  pushes with `--concurrency` in flight, multiplexed over one connection. The fake's own count is checked, and the
  client's CPU per push is reported: on a shared machine the wall rate is bounded by the fake's own CPU.

No database: the consumer's claiming and recording are measured by the worker's benches, not here.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from loyalty.models import WalletBarcode
from loyalty.wallet import PassContent
from wallet.apns import ApnsClient, PushOutcome
from wallet.credentials import development_credentials
from wallet.pkpass import PassDesign, PassIdentity, build_pass, images

CONTENT = PassContent(
    7, "1000000017", "Anna Andersson", 1234, 56, "Silver", "Gold", 766, 0.49, 30, datetime(2027, 1, 1, tzinfo=UTC)
)
DESIGN = PassDesign("Klubb", "Klubb member card", "Klubb", "rgb(20, 61, 89)", "rgb(255, 255, 255)",
                    "rgb(173, 216, 230)", WalletBarcode.QR, "Terms apply.", ("en", "sv"))  # fmt: skip


def bench_passes(directory: Path, seconds: float) -> tuple[int, float]:
    credentials = development_credentials(directory)
    files = images()
    built = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        build_pass(
            CONTENT,
            DESIGN,
            PassIdentity(f"serial-{built}", "t" * 32, "https://x/passkit"),
            credentials,
            image_files=files,
        )
        built += 1
    return built, time.perf_counter() - started


async def bench_pushes(directory: Path, pushes: int, concurrency: int) -> tuple[int, float, float, int]:
    credentials = development_credentials(directory)
    fake = subprocess.Popen(  # noqa: ASYNC220 -- started once, before the measurement
        [sys.executable, "-m", "tests.wallet.apns_fake", str(directory / "apns"), str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # hypercorn's complaints about the connection closed at the end
        text=True,
    )
    assert fake.stdout is not None
    assert fake.stdin is not None
    url, ca_file = fake.stdout.readline().split()
    client = ApnsClient(url, credentials, ca_file=ca_file, max_connections=1)
    sent = 0
    try:
        assert (await client.push("00" * 32)).outcome is PushOutcome.SENT  # connect and warm up
        queue = iter(range(pushes))

        async def pusher() -> None:
            nonlocal sent
            for n in queue:
                result = await client.push(f"{n:064x}")
                sent += result.outcome is PushOutcome.SENT

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(pusher() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        await client.aclose()
        fake.stdin.close()
        received = int(fake.stdout.readline())
        fake.wait(10)
    return sent, elapsed, cpu, received - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--pushes", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        built, elapsed = bench_passes(directory, args.seconds)
        each = elapsed / built * 1000
        print(f"passes built and signed: {built} in {elapsed:.2f} s = {built / elapsed:,.0f}/s ({each:.2f} ms each)")
        sent, elapsed, cpu, received = asyncio.run(bench_pushes(directory, args.pushes, args.concurrency))
        print(
            f"APNs pushes (HTTP/2, client certificate, {args.concurrency} in flight): {sent} sent, "
            f"{received} received by the fake, in {elapsed:.2f} s = {sent / elapsed:,.0f}/s; "
            f"client CPU {cpu / sent * 1000:.3f} ms per push = {sent / cpu:,.0f}/s of one core"
        )


if __name__ == "__main__":
    main()
