"""klubb under uvicorn in a subprocess, as in production: for tests that need real HTTP and real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVER_START_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(server: subprocess.Popen[bytes], base: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()}")


@contextmanager
def running_klubb(
    database_url: str, tmp_path: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve klubb on a free local port over `database_url` (no embedded worker unless `env` says so: it overrides
    the environment); yields its base URL and stops it afterwards. The server's output is in
    `tmp_path / "server.log"`, shown when it fails to start."""
    port = free_port()
    environment = {
        **os.environ,
        "KLUBB_ENVIRONMENT": "test",
        "KLUBB_DATABASE_URL": database_url,
        "KLUBB_JWT_DEV_KEY_FILE": str(tmp_path / "jwt.pem"),
        "KLUBB_GOOGLE_WALLET_DEV_KEY_FILE": str(tmp_path / "google-wallet-dev.json"),
        "KLUBB_EMBEDDED_WORKER": "false",
        **(env or {}),
    }
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, base, log)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)


async def start_worker(db: str, log: Path, settings: Mapping[str, str], *args: str) -> asyncio.subprocess.Process:
    """A real `klubb worker` process on `db` polling every 0.1 s, its output appended to `log`; `settings` are its
    `KLUBB_*` environment beyond the database and the wallets' development files (Google Wallet off: no development
    key written into the working directory)."""
    from tests.conftest import WALLET_DEV_DIRECTORY

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "KLUBB_DATABASE_URL": db,
        WALLET_DEV_DIRECTORY: os.environ[WALLET_DEV_DIRECTORY],
        "KLUBB_GOOGLE_WALLET_ENABLED": "false",
        **settings,
    }
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "from api.cli import app; app(prog_name='klubb')",
            "worker",
            "--poll-seconds",
            "0.1",
            *args,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


async def stop_worker(process: asyncio.subprocess.Process, seconds: float = 20.0) -> int:
    """SIGTERM (if still running), then its exit code."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), seconds)
