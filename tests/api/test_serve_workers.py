"""`klubb serve --workers N` on PostgreSQL runs N server processes, each answering, with the embedded outbox worker
off in all of them; KLUBB_EMBEDDED_WORKER=true with more than one worker is refused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api import cli
from api.settings import Settings
from tests.server import ROOT, SERVER_START_SECONDS, free_port

pytestmark = pytest.mark.postgres_only


def _children(pid: int) -> list[int]:
    """The ids of the processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def _server_processes(pid: int) -> list[int]:
    """uvicorn's worker processes under the supervisor `pid` (multiprocessing's helpers left out)."""
    return [
        child
        for child in _children(pid)
        if "resource_tracker" not in Path(f"/proc/{child}/cmdline").read_bytes().decode(errors="replace")
    ]


def _established_sockets(port: int) -> set[str]:
    """Inodes of the established TCP connections whose local port is `port` (the server's end)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


@pytest.fixture
def served(db: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`klubb serve --workers 2` on the test's PostgreSQL database (KLUBB_EMBEDDED_WORKER not set)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLUBB_")}
    env.update(
        {
            "KLUBB_ENVIRONMENT": "test",
            "KLUBB_DATABASE_URL": db,
            "KLUBB_JWT_DEV_KEY_FILE": str(tmp_path / "jwt.pem"),
        }
    )
    log = tmp_path / "server.log"
    command = [sys.executable, "-c", "from api.cli import app; app(prog_name='klubb')"]
    command += ["serve", "--workers", "2", "--port", str(port), "--no-access-log"]
    with log.open("wb") as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while len(_server_processes(server.pid)) < 2 or not _answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"klubb serve --workers 2 did not come up ({server.poll()}):\n{log.read_text()}")
            time.sleep(0.1)
        yield server, port, log
    finally:
        server.terminate()
        server.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


async def _hold_connections(port: int, count: int) -> tuple[list[httpx.AsyncClient], list[int]]:
    """`count` clients, each with one open keep-alive connection that has answered a GraphQL request."""
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") for _ in range(count)]
    responses = await asyncio.gather(*(c.post("/graphql", json={"query": "{ __typename }"}) for c in clients))
    assert {r.json()["data"]["__typename"] for r in responses} == {"Query"}
    return clients, [r.status_code for r in responses]


def test_two_workers_are_two_processes_and_both_answer(
    served: tuple[subprocess.Popen[bytes], int, Path],
) -> None:
    server, port, log = served
    # given the supervisor with exactly two server processes under it, each a different pid
    workers = _server_processes(server.pid)
    assert len(set(workers)) == 2
    assert server.pid not in workers

    # when many clients keep a connection open (the kernel hands each to one process)
    async def connections_per_worker() -> dict[int, int]:
        held: list[httpx.AsyncClient] = []
        try:
            for _ in range(10):
                clients, statuses = await _hold_connections(port, 8)
                held += clients
                assert statuses == [200] * 8
                established = _established_sockets(port)
                counts = {pid: len(_socket_inodes(pid) & established) for pid in workers}
                if all(counts.values()):
                    return counts
                await asyncio.sleep(0.05)
            return counts
        finally:
            await asyncio.gather(*(c.aclose() for c in held))

    counts = asyncio.run(connections_per_worker())

    # then both processes answered some of them, and the supervisor none
    assert all(n > 0 for n in counts.values()), counts
    assert sum(counts.values()) >= 8
    # and the embedded outbox worker is off (told once, by the supervisor)
    assert log.read_text().count("embedded outbox worker off") == 1


def test_embedded_worker_with_several_workers_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # given KLUBB_EMBEDDED_WORKER=true set explicitly
    monkeypatch.setenv("KLUBB_EMBEDDED_WORKER", "true")
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url="postgres://u@db/klubb"))

    # when the server is asked for two worker processes
    result = CliRunner().invoke(cli.app, ["serve", "--workers", "2"])

    # then it exits 2 with one line naming both, before starting anything
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        "klubb serve: KLUBB_EMBEDDED_WORKER=true cannot be combined with --workers 2: the embedded outbox worker "
        "would run in every process; set KLUBB_EMBEDDED_WORKER=false and run `klubb worker` beside the server"
    ]


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_fewer_than_one_worker_is_refused(workers: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: Settings(database_url="postgres://u@db/klubb"))

    result = CliRunner().invoke(cli.app, ["serve", "--workers", workers])

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [f"klubb serve: --workers must be at least 1, not {workers}"]
