"""`make bench`: load-test klubb (and the reference peer) with wrk, phase by phase, and check issue 9's targets.

A run measures side by side, in one go, each phase of `--engines` x `--workers` (SQLite runs one process only):
per phase klubb is served by `klubb serve --workers N` and the reference peer (bench/peer.py) by uvicorn with N
processes, on a fresh copy of the seeded database (var/bench.sqlite3; on PostgreSQL a copy of the seeded template
database, bench/pgseed.py), each scenario after a warm-up with `wrk --latency -s bench/graphql.lua`. The CPU per
request is the servers' whole process trees plus, on PostgreSQL, the backends serving the database (from /proc).
On PostgreSQL a write scenario (`purchaseRecord`, 16 connections) runs too, and after the phases `pgbench` TPC-B
(`-i` then a run of the same length and connections) on its own database: the write target is their ratio.
Then, with PostgreSQL among the engines, the push and live benches, each a process of its own on a database of its
own derived from `--postgres-url` (<name>_push, <name>_live; created if missing, WIPED by them):
`bench.push_end_to_end` (a campaign to `--push-members` members, stage by stage), `bench.push --http2` (the SDK's
fan-out alone) and `bench.live` (subscription fan-out latency, Redis at `--redis-url`); `--no-push-live` skips them.

Prints a table and the targets (MISSED is printed, not fatal), writes var/bench-results.json (and
var/bench-baseline.json when there is none yet or with --save-baseline); `--baseline` compares with the baseline.
Exits non-zero only if a server or the responses fail.

Scenarios live in SCENARIOS below: add one with the requests it sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx

from bench import pgseed, procs, seed

T = TypeVar("T")
BENCH_CASHIER = "bench-till@example.com"

ROOT = Path(__file__).resolve().parent.parent
VAR = Path("var")
RUN_DB = VAR / "bench-run.sqlite3"
KEY_FILE = VAR / "bench-jwt-key.pem"
RESULTS = VAR / "bench-results.json"
BASELINE = VAR / "bench-baseline.json"
LUA = Path("bench/graphql.lua")
HOME_QUERY = Path("mobile-client-mock/operations/Home.graphql")
DEFAULT_POSTGRES_URL = os.environ.get("KLUBB_BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/klubb_bench")
TOKENS = 1_000
TOKEN_SECONDS = 3600
# Slow responses are measured rather than dropped as wrk timeouts (its default is 2 s).
WRK_TIMEOUT_S = 10
OTHER_LOAD_WARNING = 0.2  # cores used by other processes during a run before the figures are flagged
SEQ_PLACEHOLDER = "@" * 14  # bench/graphql.lua makes it unique per request (BENCH_SEQ_TAG)
WRITE_CONNECTIONS = 16
PGBENCH_SCALE = 16  # one branch per client: TPC-B's branch row is then not one hot lock for all of them
PUSH_MEMBERS = 20_000  # `make bench`'s campaign (bench/README.md reports 100,000: `--push-members 100000`)
PUSH_FANOUT = 5_000


class BenchFailure(RuntimeError):
    """The server or its responses failed: the benchmark result would be meaningless."""


@dataclass(frozen=True)
class BenchContext:
    settings: Any  # api.settings.Settings shared with the server (same signing key)
    database_url: str
    member_ids: list[int]
    tokens: int
    rng: random.Random

    def member_tokens(self) -> list[str]:
        """Bearer tokens of `tokens` randomly chosen members (member audience)."""
        from api.auth.tokens import MEMBER_AUDIENCE, TokenService

        service = TokenService(self.settings)
        chosen = self.rng.sample(self.member_ids, min(self.tokens, len(self.member_ids)))
        return [service.issue(str(member_id), MEMBER_AUDIENCE).token for member_id in chosen]

    def staff_token(self) -> str:
        """A staff-audience token of a bench cashier (created in the bench database before the server starts)."""
        from api.auth.tokens import STAFF_AUDIENCE, TokenService
        from loyalty.staff import new_session_id

        staff_id = asyncio.run(_with_database(self.database_url, _bench_cashier))
        return TokenService(self.settings).issue(f"staff:{staff_id}", STAFF_AUDIENCE, new_session_id()).token

    def member_numbers(self) -> list[str]:
        """Member numbers of `tokens` randomly chosen members, for checkout lookups."""
        chosen = self.rng.sample(self.member_ids, min(self.tokens, len(self.member_ids)))
        return asyncio.run(_with_database(self.database_url, lambda: _member_numbers(chosen)))

    def chosen_members(self) -> list[int]:
        return self.rng.sample(self.member_ids, min(self.tokens, len(self.member_ids)))


async def _with_database(database_url: str, job: Callable[[], Awaitable[T]]) -> T:
    from tortoise.backends.base.executor import EXECUTOR_CACHE

    from loyalty.db import connect, disconnect

    await connect(database_url)
    try:
        return await job()
    finally:
        await disconnect()
        EXECUTOR_CACHE.clear()  # the next phase's database may be the other engine


async def _bench_cashier() -> int:
    from loyalty.models import StaffUser
    from loyalty.staff import create_staff

    existing = await StaffUser.get_or_none(email=BENCH_CASHIER)
    if existing is not None:
        return existing.id
    return (await create_staff(BENCH_CASHIER, secrets.token_urlsafe(24), "cashier", display_name="Bench till")).id


async def _member_numbers(member_ids: list[int]) -> list[str]:
    from loyalty.models import Member

    numbers = dict(await Member.filter(id__in=member_ids).values_list("id", "member_number"))
    return [numbers[i] for i in member_ids]


# One prepared request: (Authorization header value or "", JSON body).
Request = tuple[str, str]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    requests: Callable[[BenchContext], list[Request]]
    path: str = "/graphql"
    server: str = "klubb"  # or "peer": bench/peer.py
    # Targets: throughput at least `min_ratio` x that of scenario `ratio_to`; p99 at most `max_p99_ms`; server +
    # database CPU per request at most `max_cpu_ms`.
    ratio_to: str | None = None
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    max_cpu_ms: float | None = None
    # Paced: the connections together send about this many requests/s (random waits between a connection's
    # requests), instead of each sending its next request as soon as the last is answered.
    rate: float | None = None
    connections: int | None = None  # default --connections
    writes: bool = False  # PostgreSQL phases only; each request unique (BENCH_SEQ_TAG)


def graphql_body(query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> str:
    payload: dict[str, Any] = {"query": query}
    if variables:
        payload["variables"] = variables
    if operation:
        payload["operationName"] = operation
    return json.dumps(payload, separators=(",", ":"))


def trivial_requests(ctx: BenchContext) -> list[Request]:
    return [("", graphql_body("{ __typename }"))]


def home_requests(ctx: BenchContext) -> list[Request]:
    body = graphql_body(HOME_QUERY.read_text(), operation="Home")
    return [(f"Bearer {token}", body) for token in ctx.member_tokens()]


LOOKUP_QUERY = """
query Lookup($query: String!) {
  memberLookup(query: $query) {
    id memberNumber name
    points { available pending }
    tier { current { name } next { name } qualifyingValue remainingToNext progress }
    activeOffers { name benefit value }
    activeVouchers { code expiresAt }
    stampCards { name stamps stampsRequired }
  }
}
"""


def lookup_requests(ctx: BenchContext) -> list[Request]:
    token = ctx.staff_token()
    return [
        (f"Bearer {token}", graphql_body(LOOKUP_QUERY, {"query": number}, operation="Lookup"))
        for number in ctx.member_numbers()
    ]


PURCHASE_MUTATION = """
mutation Purchase($input: PurchaseRecordInput!) {
  purchaseRecord(input: $input) {
    purchase { receiptId points availableAt tier }
    member { points { available pending } }
    userErrors { code message }
  }
}
"""


def purchase_requests(ctx: BenchContext) -> list[Request]:
    """A till's receipt for one of 1,000 random members: a coffee (the stamp card) and groceries, a receipt id
    unique per request (the Lua script fills it in), a store of the seed's, the time a minute before now."""
    from schema.global_ids import MEMBER

    token = ctx.staff_token()
    occurred = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    out = []
    for member_id in ctx.chosen_members():
        amount = ctx.rng.randint(500, 8_000)
        lines = [
            {"sku": "COFFEE-REG", "category": "coffee", "quantity": 1, "amount": 350},
            {"sku": f"SKU-{ctx.rng.randint(1, 500):03d}", "category": "groceries", "quantity": 1, "amount": amount},
        ]
        variables = {
            "input": {
                "member": MEMBER.encode(member_id),
                "storeCode": ctx.rng.choice(seed.STORES),
                "receiptId": f"B{SEQ_PLACEHOLDER}",
                "occurredAt": occurred,
                "currency": "EUR",
                "total": 350 + amount,
                "lines": lines,
            }
        }
        out.append((f"Bearer {token}", graphql_body(PURCHASE_MUTATION, variables, operation="Purchase")))
    return out


SCENARIOS: list[Scenario] = [
    Scenario("trivial", "{ __typename }, anonymous: the HTTP + GraphQL floor", trivial_requests),
    Scenario(
        "home",
        "the app's Home query as one of 1,000 random members",
        home_requests,
        ratio_to="trivial",
        min_ratio=0.40,
        max_p99_ms=50.0,
        max_cpu_ms=1.0,
    ),
    Scenario(
        "peer-home",
        "the same Home query on the reference peer (bench/peer.py: strawberry + Tortoise, no compiler or caches)",
        home_requests,
        server="peer",
    ),
    Scenario(
        "lookup",
        "the checkout's memberLookup by member number (staff endpoint), 1,000 random members",
        lookup_requests,
        path="/staff/graphql",
        max_cpu_ms=1.0,
    ),
    Scenario(
        "lookup-paced",
        "the same lookups paced at about 200/s in all (a busy checkout fleet): latency without a queue",
        lookup_requests,
        path="/staff/graphql",
        max_p99_ms=15.0,
        max_cpu_ms=1.0,
        rate=200.0,
    ),
    Scenario(
        "purchase",
        "purchaseRecord at the till (staff endpoint), 16 connections, every receipt new: the write path",
        purchase_requests,
        path="/staff/graphql",
        connections=WRITE_CONNECTIONS,
        writes=True,
    ),
]
HOME_PEER_MIN_RATIO = 10.0  # home >= 10x the reference peer's throughput
WORKERS_MIN_SCALING = 1.8  # 2 workers >= 1.8x the throughput of 1
POSTGRES_MAX_GAP = 0.20  # PostgreSQL within 20 % of SQLite
WRITE_MIN_PGBENCH_RATIO = 0.50  # purchases/s >= 50 % of pgbench TPC-B tps


@dataclass(frozen=True)
class Phase:
    engine: str  # "sqlite" or "postgres"
    workers: int

    @property
    def name(self) -> str:
        return f"{self.engine}/{self.workers}"


# --- machine and servers ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        text = (out.stdout or out.stderr).strip()
        wrk_version = text.splitlines()[0].split(" Copyright")[0] if text else ""
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "wrk": wrk_version,
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLUBB_")}
    env.pop("FIREBASE_AUTH_EMULATOR_HOST", None)
    env.update(
        {
            "KLUBB_DATABASE_URL": database_url,
            "KLUBB_ENVIRONMENT": "development",
            "KLUBB_EMBEDDED_WORKER": "false",
            "KLUBB_JWT_DEV_KEY_FILE": str(KEY_FILE),
            "KLUBB_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def pinned(cpus: str | None, command: list[str]) -> list[str]:
    """`command` run under `taskset -c cpus` when `cpus` is given (--pin-wrk, --pin-server)."""
    return ["taskset", "-c", cpus, *command] if cpus else command


class Server:
    """klubb (`klubb serve --workers N`) or the reference peer (uvicorn bench.peer:create_app, N workers)."""

    def __init__(
        self, kind: str, env: dict[str, str], port: int, *, workers: int, access_log: bool, pin: str | None
    ) -> None:
        self.kind = kind
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = VAR / f"bench-server-{kind}.log"
        self.log = self.log_path.open("w")
        log_flag = "--access-log" if access_log else "--no-access-log"
        if kind == "klubb":
            args = ["serve", "--workers", str(workers), "--port", str(port), log_flag]
            command = [sys.executable, "-c", "from api.cli import app; app(prog_name='klubb')", *args]
            self.command = ["klubb", *args]
        else:
            args = ["bench.peer:create_app", "--factory", "--port", str(port), "--workers", str(workers), log_flag]
            args += ["--log-level", "warning"]
            command = [sys.executable, "-m", "uvicorn", *args]
            self.command = ["uvicorn", *args]
        self.command = pinned(pin, self.command)
        self.process = subprocess.Popen(
            pinned(pin, command), cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.workers = workers

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchFailure(f"{self.kind} exited with {self.process.returncode}:\n{self.log_tail()}")
            # uvicorn's supervisor answers nothing itself: wait for every worker process
            ready = self.workers == 1 or len(procs.descendants(self.process.pid)) >= self.workers
            try:
                if ready and httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchFailure(f"{self.kind} did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of the server's processes (supervisor and workers)."""
        return procs.tree_cpu(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def post(server: Server, path: str, request: Request) -> tuple[int, dict[str, Any]]:
    auth, body = request
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth:
        headers["Authorization"] = auth
    body = body.replace(SEQ_PLACEHOLDER, "sanity" + secrets.token_hex(4))
    response = httpx.post(f"{server.base}{path}", content=body.encode(), headers=headers, timeout=30)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"raw": response.text[:500]}


def sanity_check(server: Server, scenario: Scenario, requests: list[Request]) -> dict[str, Any]:
    """The first request of a scenario must answer 200 with `data`, no `errors` and no `userErrors`."""
    status, payload = post(server, scenario.path, requests[0])
    text = json.dumps(payload)
    if status != 200 or payload.get("errors") or not payload.get("data") or '"userErrors": [{' in text:
        raise BenchFailure(f"{scenario.name}: sanity request failed ({status}): {text[:800]}")
    return payload


# --- wrk -------------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    graphql_errors: int
    command: str
    output: str = field(repr=False)
    # CPU used during the run, in cores (1.0 = one core busy): the server, wrk, and everything else.
    cpu: dict[str, float] = field(default_factory=dict)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(f"unparseable latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str, command: str) -> WrkResult:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match:
            return match.group(1)
        if default is None:
            raise BenchFailure(f"wrk output lacks {pattern!r}:\n{output}")
        return default

    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_second=float(find(r"^Requests/sec:\s+([\d.]+)")),
        p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        p90_ms=_ms(find(r"^\s+90%\s+(\S+)")),
        p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        requests=int(find(r"^\s+(\d+) requests in")),
        non_2xx=int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=dict(
            zip(
                ("connect", "read", "write", "timeout"),
                map(int, sockets.groups()) if sockets else (0, 0, 0, 0),
                strict=True,
            )
        ),
        graphql_errors=int(find(r"^graphql_errors: (\d+)", "-1")),
        command=command,
        output=output,
    )


def _system_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def wait_for_quiet(max_wait: float, threshold: float = OTHER_LOAD_WARNING) -> float:
    """Wait (up to `max_wait` seconds) until the machine is idle apart from us; returns the last busy reading."""
    deadline = time.monotonic() + max_wait
    busy = 0.0
    while True:
        busy0, _ = _system_cpu_seconds()
        time.sleep(1.0)
        busy = _system_cpu_seconds()[0] - busy0  # the idle server and this process use next to nothing
        if busy <= threshold or time.monotonic() >= deadline:
            return busy
        print(f"  waiting for a quiet machine: other processes use {busy:.2f} cores", flush=True)


def start_profiler(server: Server, label: str, seconds: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the server's processes for the scenario's run (install it into the venv only for the session: it
    is not a project dependency). Writes var/bench-profile-<label>.speedscope.json (open in speedscope)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise BenchFailure("--profile needs py-spy: .venv/bin/pip install py-spy (temporarily)")
    out = VAR / f"bench-profile-{label}.speedscope.json"
    command = [py_spy, "record", "-p", str(server.process.pid), "-d", str(max(1, seconds - 1)), "-r", "200"]
    command += ["--subprocesses", "-f", "speedscope", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@dataclass(frozen=True)
class Load:
    threads: int
    connections: int
    seconds: int
    pin: str | None  # taskset CPUs for wrk


def run_wrk(server: Server, scenario: Scenario, requests_file: Path, load: Load, pg_database: str | None) -> WrkResult:
    connections = scenario.connections or load.connections
    command = [
        "wrk",
        f"-t{min(load.threads, connections)}",
        f"-c{connections}",
        f"-d{load.seconds}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(LUA),
        f"{server.base}{scenario.path}",
    ]
    command = pinned(load.pin, command)
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file)}
    env.pop("BENCH_SEQ_TAG", None)
    env.pop("BENCH_MEAN_WAIT_MS", None)
    if scenario.rate:
        env["BENCH_MEAN_WAIT_MS"] = f"{1000 * connections / scenario.rate:.1f}"
    if scenario.writes:
        env["BENCH_SEQ_TAG"] = "".join(random.choices(string.ascii_uppercase + string.digits, k=4))
    busy0, _ = _system_cpu_seconds()
    server0 = server.cpu()
    db0 = procs.postgres_backends(pg_database) if pg_database else {}
    started = time.monotonic()
    wrk = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wrk_cpu = 0.0
    while wrk.poll() is None:  # sample wrk's own CPU while it runs (it is gone once it exits)
        wrk_cpu = max(wrk_cpu, sum(procs.tree_cpu(wrk.pid).values()))
        time.sleep(0.25)
    stdout, stderr = wrk.communicate()
    elapsed = time.monotonic() - started
    if wrk.returncode != 0:
        raise BenchFailure(f"wrk failed ({wrk.returncode}): {stderr}\n{stdout}")
    busy = _system_cpu_seconds()[0] - busy0
    server_cpu = procs.used_since(server0, server.cpu())
    db_cpu = procs.used_since(db0, procs.postgres_backends(pg_database)) if pg_database else 0.0
    shown = f"BENCH_REQUESTS={requests_file} " + " ".join(command)
    result = parse_wrk(stdout, shown)
    requests = max(1, result.requests)
    result.cpu = {
        "server": round(server_cpu / elapsed, 2),
        "database": round(db_cpu / elapsed, 2),
        "wrk": round(wrk_cpu / elapsed, 2),
        "other": round(max(0.0, busy - server_cpu - db_cpu - wrk_cpu) / elapsed, 2),
        # CPU time per request: robust to other load on the machine, unlike req/s and latency.
        "server_ms_per_request": round(1000 * server_cpu / requests, 3),
        "database_ms_per_request": round(1000 * db_cpu / requests, 3),
        "ms_per_request": round(1000 * (server_cpu + db_cpu) / requests, 3),
    }
    return result


# --- pgbench ---------------------------------------------------------------------------------------


def run_pgbench(url: str, load: Load, *, clients: int, scale: int) -> dict[str, Any]:
    """pgbench TPC-B on `url`'s database (created if missing): `-i` at `scale`, then `clients` clients for as long
    as a scenario runs."""
    pgbench = shutil.which("pgbench")
    if pgbench is None:
        raise BenchFailure("pgbench is not installed (apt-get install postgresql-client, or `make bench`)")
    asyncio.run(_create_database_if_missing(url))
    init = [pgbench, "-i", "-q", "-s", str(scale), url]
    done = subprocess.run(init, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchFailure(f"pgbench -i failed ({done.returncode}): {done.stderr}")
    command = pinned(load.pin, [pgbench, "-c", str(clients), "-j", str(min(load.threads, clients))])
    command += ["-T", str(load.seconds), url]
    busy0, _ = _system_cpu_seconds()
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise BenchFailure(f"pgbench failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    return {
        **parse_pgbench(done.stdout),
        "clients": clients,
        "scale": scale,
        "seconds": load.seconds,
        "busy_cores": round((_system_cpu_seconds()[0] - busy0) / elapsed, 2),
        "command": " ".join(init) + " && " + " ".join(command),
    }


def parse_pgbench(output: str) -> dict[str, float | None]:
    """tps (without the initial connection time) and the average latency of a pgbench run's report."""
    tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    latency = re.search(r"^latency average = ([\d.]+) ms", output, re.MULTILINE)
    if tps is None:
        raise BenchFailure(f"pgbench output lacks tps:\n{output}")
    return {"tps": float(tps.group(1)), "latency_avg_ms": float(latency.group(1)) if latency else None}


async def _create_database_if_missing(url: str) -> None:
    admin_url, name = pgseed.split_url(url)
    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


# --- push and live ---------------------------------------------------------------------------------


def push_live_commands(postgres_url: str, args: argparse.Namespace) -> list[tuple[str, str | None, list[str]]]:
    """(name, the database it wipes, command) of the push and live benches: each on a database of its own next to
    the run database (never the run's nor the tests')."""
    name = pgseed.split_url(postgres_url)[1]
    push, live = (pgseed.with_database(postgres_url, f"{name}_{suffix}") for suffix in ("push", "live"))
    python = sys.executable
    return [
        ("push_end_to_end", push, [python, "-m", "bench.push_end_to_end", push, "--members", str(args.push_members)]),
        ("push_fanout", None, [python, "-m", "bench.push", "--http2", "--pushes", str(args.push_fanout)]),
        ("live", live, [python, "-m", "bench.live", "--database-url", live, "--redis-url", args.redis_url]),
    ]


def run_push_live(postgres_url: str, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Runs each bench (its output shown once it ends) and keeps what it printed; `BenchFailure` if one fails."""
    done: dict[str, dict[str, Any]] = {}
    for bench, database, command in push_live_commands(postgres_url, args):
        if database is not None:
            asyncio.run(_create_database_if_missing(database))
        print(f"\n== {bench}: python {' '.join(command[1:])} ==", flush=True)
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        print(result.stdout, end="", flush=True)
        if result.returncode != 0:
            raise BenchFailure(f"{bench} failed ({result.returncode}): {result.stderr[-2000:]}")
        done[bench] = {
            "command": " ".join(command),
            "seconds": round(time.monotonic() - started, 1),
            "output": result.stdout.splitlines(),
        }
    return done


# --- the run ---------------------------------------------------------------------------------------


def prepare_sqlite(members: int, force: bool) -> tuple[str, dict[str, Any]]:
    meta = seed.ensure_sqlite(seed.SQLITE_PATH, members, force=force)
    # The server works on a copy, so the cached seed stays pristine whatever a run writes.
    for suffix in ("", "-wal", "-shm"):
        RUN_DB.with_name(RUN_DB.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(seed.SQLITE_PATH, RUN_DB)
    return f"sqlite://{RUN_DB}", meta


def db_counts(database_url: str) -> dict[str, int] | None:
    if not database_url.startswith("sqlite://"):
        return None
    with sqlite3.connect(database_url.removeprefix("sqlite://")) as conn:
        return {
            table: conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608 - constants
            for table in ("ledger_entry", "points_lot", "outbox_event")
        }


def _check(
    target: str,
    value: float,
    limit: float,
    *,
    at_most: bool = False,
    unit: str = "",
    cpu_ratio: float | None = None,
) -> dict[str, Any]:
    """One target's verdict. `cpu_ratio`, for a throughput ratio, is the same ratio by CPU per request (what the
    throughputs would be on a quiet machine where CPU is what bounds them), shown beside the measured one."""
    shown = f"{value:.1%}" if unit == "%" else f"{value:.2f}{unit}"
    met = value <= limit if at_most else value >= limit
    check: dict[str, Any] = {"target": target, "value": shown, "met": met}
    if cpu_ratio is not None:
        check["by_cpu"] = f"{cpu_ratio:.1%}" if unit == "%" else f"{cpu_ratio:.2f}{unit}"
    return check


def _cpu_ratio(faster: WrkResult, slower: WrkResult) -> float | None:
    """How many of `faster`'s requests one of `slower`'s costs, by server + database CPU per request."""
    ours, theirs = faster.cpu.get("ms_per_request"), slower.cpu.get("ms_per_request")
    return theirs / ours if ours and theirs else None


def verdicts(
    results: dict[str, dict[str, WrkResult]],
    scenarios: list[Scenario],
    pgbench: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    out = []
    for phase, by_name in results.items():
        for scenario in scenarios:
            result = by_name.get(scenario.name)
            if result is None:
                continue
            if scenario.ratio_to and scenario.min_ratio is not None and scenario.ratio_to in by_name:
                other = by_name[scenario.ratio_to]
                ratio = result.requests_per_second / other.requests_per_second
                target = f"{phase} {scenario.name} throughput >= {scenario.min_ratio:.0%} of {scenario.ratio_to}"
                out.append(_check(target, ratio, scenario.min_ratio, unit="%", cpu_ratio=_cpu_ratio(result, other)))
            if scenario.name == "home" and "peer-home" in by_name:
                peer = by_name["peer-home"]
                ratio = result.requests_per_second / peer.requests_per_second
                target = f"{phase} home throughput >= {HOME_PEER_MIN_RATIO:g}x the reference peer's"
                out.append(_check(target, ratio, HOME_PEER_MIN_RATIO, unit="x", cpu_ratio=_cpu_ratio(result, peer)))
            if scenario.max_p99_ms is not None:
                target = f"{phase} {scenario.name} p99 <= {scenario.max_p99_ms:g} ms"
                out.append(_check(target, result.p99_ms, scenario.max_p99_ms, at_most=True, unit=" ms"))
            if scenario.max_cpu_ms is not None:
                target = f"{phase} {scenario.name} CPU (server + database) <= {scenario.max_cpu_ms:g} ms/request"
                value = result.cpu["ms_per_request"]
                out.append(_check(target, value, scenario.max_cpu_ms, at_most=True, unit=" ms"))
            if scenario.writes and pgbench:
                ratio = result.requests_per_second / pgbench["tps"]
                target = f"{phase} {scenario.name}/s >= {WRITE_MIN_PGBENCH_RATIO:.0%} of pgbench TPC-B tps"
                out.append(_check(target, ratio, WRITE_MIN_PGBENCH_RATIO, unit="%"))
            before = _baseline_result(baseline, phase, scenario.name)
            if scenario.name == "trivial" and before is not None:
                was = before["cpu"]["ms_per_request"]
                target = f"{phase} trivial CPU unchanged (<= 110% of the baseline's {was:.3f} ms/request)"
                out.append(_check(target, result.cpu["ms_per_request"], 1.1 * was, at_most=True, unit=" ms"))
    for name in ("home", "trivial"):
        one, two = (results.get(f"postgres/{n}", {}).get(name) for n in (1, 2))
        if one and two:
            target = f"postgres/2 {name} throughput >= {WORKERS_MIN_SCALING:g}x postgres/1"
            out.append(_check(target, two.requests_per_second / one.requests_per_second, WORKERS_MIN_SCALING, unit="x"))
    for name in ("home", "lookup", "trivial"):
        lite, pg = (results.get(f"{engine}/1", {}).get(name) for engine in ("sqlite", "postgres"))
        if lite and pg:
            target = f"postgres/1 {name} throughput within {POSTGRES_MAX_GAP:.0%} of sqlite/1"
            ratio = pg.requests_per_second / lite.requests_per_second
            out.append(_check(target, ratio, 1 - POSTGRES_MAX_GAP, unit="%", cpu_ratio=_cpu_ratio(pg, lite)))
    return out


def _baseline_result(baseline: dict[str, Any] | None, phase: str, scenario: str) -> dict[str, Any] | None:
    if not baseline:
        return None
    found: dict[str, Any] | None = baseline.get("phases", {}).get(phase, {}).get("results", {}).get(scenario)
    return found


def print_table(
    results: dict[str, dict[str, WrkResult]], pgbench: dict[str, Any] | None, checks: list[dict[str, Any]]
) -> None:
    print()
    print(
        f"{'phase':<11} {'scenario':<13} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'requests':>9}"
        f" {'errors':>6} {'CPU ms/req':>10} {'(srv+db)':>12}   cores: server / db / wrk / other"
    )
    for phase, by_name in results.items():
        for name, r in by_name.items():
            errors = r.non_2xx + max(0, r.graphql_errors)
            split = f"{r.cpu['server_ms_per_request']:.2f}+{r.cpu['database_ms_per_request']:.2f}"
            print(
                f"{phase:<11} {name:<13} {r.requests_per_second:>9.1f} {r.p50_ms:>8.2f} {r.p90_ms:>8.2f} "
                f"{r.p99_ms:>8.2f} {r.requests:>9} {errors:>6} {r.cpu['ms_per_request']:>10.2f} {split:>12}   "
                f"{r.cpu['server']:.2f} / {r.cpu['database']:.2f} / {r.cpu['wrk']:.2f} / {r.cpu['other']:.2f}"
            )
    if pgbench:
        print(
            f"{'postgres':<11} {'pgbench':<13} {pgbench['tps']:>9.1f} tps (TPC-B, scale {pgbench['scale']}, "
            f"{pgbench['clients']} clients, latency avg {pgbench['latency_avg_ms']} ms)"
        )
    for phase, by_name in results.items():
        for name, r in by_name.items():
            if r.socket_errors.get("timeout"):
                print(
                    f"WARNING: {phase} {name}: {r.socket_errors['timeout']} requests timed out after {WRK_TIMEOUT_S}s"
                )
    if any(r.cpu.get("other", 0) > OTHER_LOAD_WARNING for by_name in results.values() for r in by_name.values()):
        print(
            f"WARNING: other processes used more than {OTHER_LOAD_WARNING} of a core during a scenario: throughput "
            "and latency are disturbed (CPU per request much less); rerun on a quiet machine (--quiet-wait)"
        )
    print()
    for check in checks:
        by_cpu = f" (by CPU per request: {check['by_cpu']})" if "by_cpu" in check else ""
        print(f"  {'met   ' if check['met'] else 'MISSED'}  {check['target']}: {check['value']}{by_cpu}")


def print_comparison(results: dict[str, dict[str, WrkResult]], baseline: dict[str, Any], source: Path) -> None:
    print(f"\ncompared with {source} ({baseline.get('at', '?')}):")
    print(
        f"{'phase':<11} {'scenario':<13} {'req/s before':>12} {'now':>9} {'change':>8} {'CPU ms before':>13} {'now':>7}"
    )
    for phase, by_name in results.items():
        for name, r in by_name.items():
            before = _baseline_result(baseline, phase, name)
            if before is None:
                continue
            was_rps, was_cpu = before["requests_per_second"], before["cpu"]["ms_per_request"]
            change = (r.requests_per_second / was_rps - 1) if was_rps else 0.0
            print(
                f"{phase:<11} {name:<13} {was_rps:>12.1f} {r.requests_per_second:>9.1f} {change:>+8.1%} "
                f"{was_cpu:>13.2f} {r.cpu['ms_per_request']:>7.2f}"
            )


def parse_phases(engines: str, workers: str) -> list[Phase]:
    phases = []
    counts = sorted({int(n) for n in workers.split(",") if n.strip()})
    if not counts or counts[0] < 1:
        raise ValueError("--workers: a comma-separated list of counts >= 1")
    for engine in [e.strip() for e in engines.split(",") if e.strip()]:
        if engine not in ("sqlite", "postgres"):
            raise ValueError(f"--engines: sqlite or postgres, not {engine!r}")
        # SQLite cannot be shared by several worker processes (Settings.unsafe_problems): one process only.
        phases += [Phase(engine, n) for n in (counts if engine == "postgres" else [1])]
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS), help="comma-separated names")
    parser.add_argument("--engines", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--workers", default="1,2", help="server processes per phase, comma-separated (PostgreSQL)")
    parser.add_argument("--duration", type=int, default=15, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds per scenario first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=TOKENS, help="distinct members per authenticated scenario")
    parser.add_argument("--members", type=int, default=seed.MEMBERS)
    parser.add_argument("--reseed", action="store_true", help="seed var/bench.sqlite3 and the PostgreSQL template")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help="the run database (re-created each phase from its seeded template <name>_seed on the same server); "
        "default KLUBB_BENCH_POSTGRES_URL or %(default)s",
    )
    parser.add_argument("--pgbench-url", help="pgbench's own database (default: <postgres-url's name>_pgbench)")
    parser.add_argument("--pgbench-scale", type=int, default=PGBENCH_SCALE)
    parser.add_argument(
        "--push-live", action=argparse.BooleanOptionalAction, default=True, help="the push and live benches after"
    )
    parser.add_argument("--push-members", type=int, default=PUSH_MEMBERS, help="the end-to-end campaign's members")
    parser.add_argument("--push-fanout", type=int, default=PUSH_FANOUT, help="pushes of the SDK fan-out bench")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0", help="bench.live's Redis")
    parser.add_argument("--pin-wrk", metavar="CPUS", help="run wrk and pgbench under taskset -c CPUS")
    parser.add_argument("--pin-server", metavar="CPUS", help="run the servers under taskset -c CPUS")
    parser.add_argument(
        "--baseline",
        nargs="?",
        const=str(BASELINE),
        metavar="FILE",
        help=f"compare with a baseline (default {BASELINE})",
    )
    parser.add_argument("--save-baseline", action="store_true", help=f"write this run's results to {BASELINE}")
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on")
    parser.add_argument(
        "--quiet-wait", type=float, default=0, help="wait up to this many seconds for other load to stop first"
    )
    parser.add_argument("--profile", action="store_true", help="record each scenario with py-spy (if installed)")
    parser.add_argument(
        "--keep-server", action="store_true", help="leave the last phase's servers running (for wrk/py-spy by hand)"
    )
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    VAR.mkdir(exist_ok=True)

    wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(wanted) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {[s.name for s in SCENARIOS]}")
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    try:
        phases = parse_phases(args.engines, args.workers)
    except ValueError as exc:
        parser.error(str(exc))
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk, or `make bench`)", file=sys.stderr)
        return 2
    pgbench_url = args.pgbench_url or pgseed.with_database(
        args.postgres_url, pgseed.split_url(args.postgres_url)[1] + "_pgbench"
    )
    baseline: dict[str, Any] | None = None
    if args.baseline:
        try:
            baseline = json.loads(Path(args.baseline).read_text())
        except (OSError, ValueError) as exc:
            print(f"bench: cannot read the baseline {args.baseline}: {exc}", file=sys.stderr)
            return 2

    machine = machine_info()
    print(
        f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}; Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, {machine['wrk']}"
    )
    os.environ.update({"KLUBB_JWT_DEV_KEY_FILE": str(KEY_FILE), "KLUBB_ACCESS_TOKEN_SECONDS": str(TOKEN_SECONDS)})
    from api.settings import Environment, Settings

    settings = Settings(
        environment=Environment.DEVELOPMENT, jwt_dev_key_file=str(KEY_FILE), access_token_seconds=TOKEN_SECONDS
    )
    load = Load(threads=args.threads, connections=args.connections, seconds=args.duration, pin=args.pin_wrk)
    warm = Load(threads=args.threads, connections=args.connections, seconds=args.warmup, pin=args.pin_wrk)
    results: dict[str, dict[str, WrkResult]] = {}
    phase_info: dict[str, dict[str, Any]] = {}
    seeds: dict[str, Any] = {}
    failures: list[str] = []
    pgbench: dict[str, Any] | None = None
    push_live: dict[str, dict[str, Any]] | None = None
    try:
        for phase in phases:
            print(f"\n== phase {phase.name}: {phase.engine}, {phase.workers} server process(es) ==", flush=True)
            if phase.engine == "sqlite":
                database_url, seeds["sqlite"] = prepare_sqlite(args.members, args.reseed and "sqlite" not in seeds)
                pg_database = None
            else:
                force = args.reseed and "postgres" not in seeds
                seeds["postgres"] = pgseed.ensure_postgres(args.postgres_url, args.members, force=force)
                database_url, pg_database = args.postgres_url, pgseed.split_url(args.postgres_url)[1]
            chosen = [s for s in scenarios if phase.engine == "postgres" or not s.writes]
            ctx = BenchContext(
                settings, database_url, list(range(1, args.members + 1)), args.tokens, random.Random(seed.RANDOM_SEED)
            )
            prepared: dict[str, Path] = {}
            requests: dict[str, list[Request]] = {}
            for scenario in chosen:
                requests[scenario.name] = scenario.requests(ctx)
                path = VAR / f"bench-requests-{phase.engine}-{scenario.name}.txt"
                path.write_text("".join(f"{auth}\t{body}\n" for auth, body in requests[scenario.name]))
                prepared[scenario.name] = path
            keep = args.keep_server and phase == phases[-1]
            commands: dict[str, list[str]] = {}
            results[phase.name] = run_phase(
                phase, chosen, prepared, requests, database_url, pg_database, args, load, warm, commands, keep=keep
            )
            phase_info[phase.name] = {
                "database_url": database_url,
                "workers": phase.workers,
                "servers": {kind: " ".join(command) for kind, command in commands.items()},
            }
            by_name = results[phase.name]
            for name, result in by_name.items():
                errors = {k: v for k, v in result.socket_errors.items() if k != "timeout"}
                if result.non_2xx or result.graphql_errors or any(errors.values()):
                    failures.append(
                        f"{phase.name} {name}: {result.non_2xx} non-2xx, {result.graphql_errors} GraphQL errors, "
                        f"socket errors {result.socket_errors}"
                    )
        if any(p.engine == "postgres" for p in phases) and any(s.writes for s in scenarios):
            print(f"\n== pgbench TPC-B on {pgbench_url} ==", flush=True)
            pgbench = run_pgbench(pgbench_url, load, clients=WRITE_CONNECTIONS, scale=args.pgbench_scale)
        if args.push_live and any(p.engine == "postgres" for p in phases):
            push_live = run_push_live(args.postgres_url, args)
    except BenchFailure as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except seed.SeedError as exc:
        print(f"bench: SEEDING FAILED: {exc}", file=sys.stderr)
        return 1
    except (OSError, asyncpg.PostgresError) as exc:  # PostgreSQL not reachable or refusing us, among others
        print(
            f"bench: FAILED: {exc} (is PostgreSQL at --postgres-url running? --engines sqlite skips it)",
            file=sys.stderr,
        )
        return 1

    checks = verdicts(results, scenarios, pgbench, baseline)
    print_table(results, pgbench, checks)
    if baseline is not None:
        print_comparison(results, baseline, Path(args.baseline))
    for by_name in results.values():
        for result in by_name.values():
            print(f"  $ {result.command}")
    if pgbench:
        print(f"  $ {pgbench['command']}")
    report = {
        "at": datetime.now(UTC).isoformat(),
        "machine": machine,
        "command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
        "seed": seeds,
        "wrk": {"threads": args.threads, "connections": args.connections, "duration_s": args.duration},
        "pins": {"wrk": args.pin_wrk, "server": args.pin_server},
        "phases": {
            name: {
                **phase_info[name],
                "results": {n: {k: v for k, v in asdict(r).items() if k != "output"} for n, r in by_name.items()},
            }
            for name, by_name in results.items()
        },
        "pgbench": pgbench,
        "push_live": push_live,
        "targets": checks,
        "failures": failures,
    }
    text = json.dumps(report, indent=2) + "\n"
    RESULTS.write_text(text)
    print(f"\nresults: {RESULTS}")
    if args.save_baseline or not BASELINE.exists():
        BASELINE.write_text(text)
        print(f"baseline: {BASELINE}")
    if failures:
        print("bench: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


def run_phase(
    phase: Phase,
    scenarios: list[Scenario],
    prepared: dict[str, Path],
    requests: dict[str, list[Request]],
    database_url: str,
    pg_database: str | None,
    args: argparse.Namespace,
    load: Load,
    warm: Load,
    commands: dict[str, list[str]],
    *,
    keep: bool = False,
) -> dict[str, WrkResult]:
    """Serve klubb (and the peer, if a scenario needs it) with the phase's processes and run its scenarios; the
    servers' command lines are put in `commands`."""
    env = server_env(database_url)
    before = db_counts(database_url)
    kinds = sorted({s.server for s in scenarios})
    servers: dict[str, Server] = {}
    results: dict[str, WrkResult] = {}
    try:
        for kind in kinds:
            servers[kind] = Server(
                kind, env, free_port(), workers=phase.workers, access_log=args.access_log, pin=args.pin_server
            )
            commands[kind] = servers[kind].command
        for server in servers.values():
            server.wait_ready()
            print(f"{server.kind}: {' '.join(server.command)} (pid {server.process.pid}, log {server.log_path})")
        for scenario in scenarios:
            sanity_check(servers[scenario.server], scenario, requests[scenario.name])
        for scenario in scenarios:
            server = servers[scenario.server]
            if args.warmup:
                run_wrk(server, scenario, prepared[scenario.name], warm, pg_database)
            if args.quiet_wait:
                wait_for_quiet(args.quiet_wait)
            print(f"running {phase.name} {scenario.name}: {scenario.description} ...", flush=True)
            label = f"{phase.engine}-{phase.workers}-{scenario.name}"
            profiler = start_profiler(server, label, args.duration) if args.profile else None
            result = run_wrk(server, scenario, prepared[scenario.name], load, pg_database)
            if profiler is not None:
                profiler.wait(timeout=60)
                print(f"  profile: {VAR / f'bench-profile-{label}.speedscope.json'} (figures include its cost)")
            results[scenario.name] = result
            print(
                f"  {result.requests_per_second:.1f} req/s, p99 {result.p99_ms:.1f} ms, "
                f"{result.cpu['ms_per_request']:.2f} ms CPU/request",
                flush=True,
            )
            if not server.alive():
                raise BenchFailure(f"{server.kind} died during {phase.name} {scenario.name}:\n{server.log_tail()}")
    finally:
        for server in servers.values():
            if keep and server.alive():
                print(f"{server.kind} left running at {server.base} (pid {server.process.pid}; kill it by its pid)")
            else:
                server.stop()
    after = db_counts(database_url)
    if before is not None and after is not None and before != after and not any(s.writes for s in scenarios):
        raise BenchFailure(f"{phase.name}: the read-only load wrote to the database: {before} -> {after}")
    return results


if __name__ == "__main__":
    raise SystemExit(main())
