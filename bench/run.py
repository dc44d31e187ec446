"""`make bench`: load-test the member GraphQL API with wrk against a seeded database.

Seeds (or reuses) var/bench.sqlite3, starts `klubb serve --workers 1` on a free port with the embedded worker and the
access log off, checks that every scenario answers with `data` and no `errors`, then runs
`wrk -t2 -c32 -d15s --latency -s bench/graphql.lua` per scenario. Prints a table, compares it with the targets
(printing MISSED, without failing) and writes var/bench-results.json. Exits non-zero only if the server or the
responses fail.

Scenarios live in SCENARIOS below: add one (e.g. a staff member lookup) with the requests it sends.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bench import seed

T = TypeVar("T")
BENCH_CASHIER = "bench-till@example.com"

ROOT = Path(__file__).resolve().parent.parent
VAR = Path("var")
RUN_DB = VAR / "bench-run.sqlite3"
KEY_FILE = VAR / "bench-jwt-key.pem"
RESULTS = VAR / "bench-results.json"
SERVER_LOG = VAR / "bench-server.log"
LUA = Path("bench/graphql.lua")
HOME_QUERY = Path("mobile-client-mock/operations/Home.graphql")
TOKENS = 1_000
TOKEN_SECONDS = 3600
# Slow responses are measured rather than dropped as wrk timeouts (its default is 2 s).
WRK_TIMEOUT_S = 10
OTHER_LOAD_WARNING = 0.2  # cores used by other processes during a run before the figures are flagged


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


async def _with_database(database_url: str, job: Callable[[], Awaitable[T]]) -> T:
    from loyalty.db import connect, disconnect

    await connect(database_url)
    try:
        return await job()
    finally:
        await disconnect()


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
    # Targets: throughput at least `min_ratio` x that of scenario `ratio_to`; p99 at most `max_p99_ms`.
    ratio_to: str | None = None
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    # Paced: the connections together send about this many requests/s (random waits between a connection's
    # requests), instead of each sending its next request as soon as the last is answered.
    rate: float | None = None


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


SCENARIOS: list[Scenario] = [
    Scenario("trivial", "{ __typename }, anonymous: the HTTP + GraphQL floor", trivial_requests),
    Scenario(
        "home",
        "the app's Home query as one of 1,000 random members",
        home_requests,
        ratio_to="trivial",
        min_ratio=0.40,
        max_p99_ms=50.0,
    ),
    Scenario(
        "lookup",
        "the checkout's memberLookup by member number (staff endpoint), 1,000 random members",
        lookup_requests,
        path="/staff/graphql",
        max_p99_ms=15.0,
    ),
    Scenario(
        "lookup-paced",
        "the same lookups paced at about 100/s in all (a busy checkout fleet): latency without a queue",
        lookup_requests,
        path="/staff/graphql",
        max_p99_ms=15.0,
        rate=100.0,
    ),
]


# --- machine and server ----------------------------------------------------------------------------


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


class Server:
    def __init__(self, env: dict[str, str], port: int, *, access_log: bool) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = SERVER_LOG.open("w")
        # One access-log line per request is a measurable share of a fast query: off unless asked for.
        args = ["serve", "--workers", "1", "--port", str(port), "--access-log" if access_log else "--no-access-log"]
        command = [sys.executable, "-c", "from api.cli import app; app(prog_name='klubb')", *args]
        self.command = ["klubb", *args]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise BenchFailure(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise BenchFailure(f"the server did not answer within {timeout:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        self.log.flush()
        return "\n".join(SERVER_LOG.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def post(server: Server, path: str, request: Request) -> tuple[int, dict[str, Any]]:
    auth, body = request
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if auth:
        headers["Authorization"] = auth
    response = httpx.post(f"{server.base}{path}", content=body.encode(), headers=headers, timeout=30)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"raw": response.text[:500]}


def sanity_check(server: Server, scenario: Scenario, requests: list[Request]) -> None:
    """The first request of a scenario must answer 200 with `data` and no `errors`."""
    status, payload = post(server, scenario.path, requests[0])
    if status != 200 or payload.get("errors") or not payload.get("data"):
        raise BenchFailure(f"{scenario.name}: sanity request failed ({status}): {json.dumps(payload)[:800]}")


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


def _process_cpu_seconds(pid: int) -> float:
    try:
        parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


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


def start_profiler(server: Server, scenario: Scenario, seconds: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the server for the scenario's run (install it into the venv only for the session: it is not a
    project dependency). Writes var/bench-profile-<scenario>.speedscope.json (open in https://speedscope.app)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise BenchFailure("--profile needs py-spy: .venv/bin/pip install py-spy (temporarily)")
    out = VAR / f"bench-profile-{scenario.name}.speedscope.json"
    command = [py_spy, "record", "-p", str(server.process.pid), "-d", str(max(1, seconds - 1)), "-r", "200"]
    command += ["-f", "speedscope", "-o", str(out), "--nonblocking"]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_wrk(
    server: Server, scenario: Scenario, requests_file: Path, *, threads: int, connections: int, seconds: int
) -> WrkResult:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(LUA),
        f"{server.base}{scenario.path}",
    ]
    env = {**os.environ, "BENCH_REQUESTS": str(requests_file)}
    if scenario.rate:
        env["BENCH_MEAN_WAIT_MS"] = f"{1000 * connections / scenario.rate:.1f}"
    busy0, _ = _system_cpu_seconds()
    server0 = _process_cpu_seconds(server.process.pid)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise BenchFailure(f"wrk failed ({done.returncode}): {done.stderr}\n{done.stdout}")
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _system_cpu_seconds()[0] - busy0
    server_cpu = _process_cpu_seconds(server.process.pid) - server0
    wrk_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    shown = f"BENCH_REQUESTS={requests_file} " + " ".join(command)
    result = parse_wrk(done.stdout, shown)
    result.cpu = {
        "server": round(server_cpu / elapsed, 2),
        "wrk": round(wrk_cpu / elapsed, 2),
        "other": round(max(0.0, busy - server_cpu - wrk_cpu) / elapsed, 2),
        # Server CPU time per request: robust to other load on the machine, unlike req/s and latency.
        "server_ms_per_request": round(1000 * server_cpu / max(1, result.requests), 3),
    }
    return result


# --- the run ---------------------------------------------------------------------------------------


def prepare_database(args: argparse.Namespace) -> tuple[str, int, dict[str, Any]]:
    if args.database_url:
        return args.database_url, args.members, {"database_url": args.database_url}
    meta = seed.ensure_sqlite(seed.SQLITE_PATH, args.members, force=args.reseed)
    # The server works on a copy, so the cached seed stays pristine whatever a run writes.
    for suffix in ("", "-wal", "-shm"):
        RUN_DB.with_name(RUN_DB.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(seed.SQLITE_PATH, RUN_DB)
    return f"sqlite://{RUN_DB}", args.members, meta


def db_counts(database_url: str) -> dict[str, int] | None:
    if not database_url.startswith("sqlite://"):
        return None
    with sqlite3.connect(database_url.removeprefix("sqlite://")) as conn:
        return {
            table: conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]  # noqa: S608 - constants
            for table in ("ledger_entry", "points_lot", "outbox_event")
        }


def verdicts(results: dict[str, WrkResult], scenarios: list[Scenario]) -> list[dict[str, Any]]:
    out = []
    for scenario in scenarios:
        result = results[scenario.name]
        if scenario.ratio_to and scenario.min_ratio is not None and scenario.ratio_to in results:
            ratio = result.requests_per_second / results[scenario.ratio_to].requests_per_second
            out.append(
                {
                    "target": f"{scenario.name} throughput >= {scenario.min_ratio:.0%} of {scenario.ratio_to}",
                    "value": f"{ratio:.1%}",
                    "met": ratio >= scenario.min_ratio,
                }
            )
        if scenario.max_p99_ms is not None:
            out.append(
                {
                    "target": f"{scenario.name} p99 <= {scenario.max_p99_ms:g} ms",
                    "value": f"{result.p99_ms:.1f} ms",
                    "met": result.p99_ms <= scenario.max_p99_ms,
                }
            )
    return out


def print_table(results: dict[str, WrkResult], checks: list[dict[str, Any]]) -> None:
    print()
    print(
        f"{'scenario':<12} {'req/s':>10} {'p50 ms':>9} {'p90 ms':>9} {'p99 ms':>9} {'requests':>10} {'non-2xx':>8}"
        f" {'srv CPU ms/req':>14}   CPU cores: server / wrk / other"
    )
    for name, r in results.items():
        print(
            f"{name:<12} {r.requests_per_second:>10.1f} {r.p50_ms:>9.2f} {r.p90_ms:>9.2f} {r.p99_ms:>9.2f} "
            f"{r.requests:>10} {r.non_2xx:>8} {r.cpu.get('server_ms_per_request', 0):>14.2f}   "
            f"{r.cpu.get('server', 0):.2f} / {r.cpu.get('wrk', 0):.2f} / "
            f"{r.cpu.get('other', 0):.2f}"
        )
    for name, r in results.items():
        if r.socket_errors.get("timeout"):
            print(f"WARNING: {name}: {r.socket_errors['timeout']} requests timed out after {WRK_TIMEOUT_S}s")
    if any(r.cpu.get("other", 0) > OTHER_LOAD_WARNING for r in results.values()):
        print(
            f"WARNING: other processes used more than {OTHER_LOAD_WARNING} of a core during a run: "
            "the figures are disturbed; rerun on a quiet machine (with PostgreSQL, its backends count as other)"
        )
    if "home" in results and "trivial" in results:
        ratio = results["home"].requests_per_second / results["trivial"].requests_per_second
        print(f"\nhome / trivial throughput: {ratio:.1%}")
    print()
    for check in checks:
        print(f"  {'met   ' if check['met'] else 'MISSED'}  {check['target']}: {check['value']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS), help="comma-separated names")
    parser.add_argument("--duration", type=int, default=15, help="seconds per scenario")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured seconds per scenario first")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=TOKENS, help="distinct members per authenticated scenario")
    parser.add_argument("--members", type=int, default=seed.MEMBERS)
    parser.add_argument("--reseed", action="store_true", help="re-seed var/bench.sqlite3 first")
    parser.add_argument("--database-url", help="bench an already seeded database (python -m bench.seed --postgres)")
    parser.add_argument("--access-log", action="store_true", help="keep uvicorn's access log on")
    parser.add_argument(
        "--quiet-wait", type=float, default=0, help="wait up to this many seconds for other load to stop first"
    )
    parser.add_argument("--profile", action="store_true", help="record each scenario with py-spy (if installed)")
    parser.add_argument("--keep-server", action="store_true", help="leave the server running (for profiling)")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    VAR.mkdir(exist_ok=True)

    wanted = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = set(wanted) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {[s.name for s in SCENARIOS]}")
    scenarios = [s for s in SCENARIOS if s.name in wanted]
    if not shutil.which("wrk"):
        print("bench: wrk is not installed (apt-get install wrk, or `make bench`)", file=sys.stderr)
        return 2

    machine = machine_info()
    print(
        f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}; Python {machine['python']}, "
        f"SQLite {machine['sqlite']}, {machine['wrk']}"
    )
    try:
        database_url, members, seed_meta = prepare_database(args)
    except seed.SeedError as exc:
        print(f"bench: SEEDING FAILED: {exc}", file=sys.stderr)
        return 1

    env = server_env(database_url)
    os.environ.update({k: env[k] for k in ("KLUBB_JWT_DEV_KEY_FILE", "KLUBB_ACCESS_TOKEN_SECONDS")})
    from api.settings import Environment, Settings

    settings = Settings(
        environment=Environment.DEVELOPMENT, jwt_dev_key_file=str(KEY_FILE), access_token_seconds=TOKEN_SECONDS
    )
    ctx = BenchContext(
        settings, database_url, list(range(1, members + 1)), args.tokens, random.Random(seed.RANDOM_SEED)
    )
    prepared: dict[str, Path] = {}
    requests: dict[str, list[Request]] = {}
    for scenario in scenarios:
        requests[scenario.name] = scenario.requests(ctx)
        path = VAR / f"bench-requests-{scenario.name}.txt"
        path.write_text("".join(f"{auth}\t{body}\n" for auth, body in requests[scenario.name]))
        prepared[scenario.name] = path

    before = db_counts(database_url)
    server = Server(env, free_port(), access_log=args.access_log)
    results: dict[str, WrkResult] = {}
    failures: list[str] = []
    try:
        server.wait_ready()
        print(f"server: {' '.join(server.command)} (pid {server.process.pid}, log {SERVER_LOG})")
        for scenario in scenarios:
            sanity_check(server, scenario, requests[scenario.name])
        for scenario in scenarios:
            common = {"threads": args.threads, "connections": args.connections}
            if args.warmup:
                run_wrk(server, scenario, prepared[scenario.name], seconds=args.warmup, **common)
            if args.quiet_wait:
                wait_for_quiet(args.quiet_wait)
            print(f"running {scenario.name}: {scenario.description} ...", flush=True)
            profiler = start_profiler(server, scenario, args.duration) if args.profile else None
            result = run_wrk(server, scenario, prepared[scenario.name], seconds=args.duration, **common)
            if profiler is not None:
                profiler.wait(timeout=60)
                print(f"  profile: {VAR / f'bench-profile-{scenario.name}.speedscope.json'} (figures include its cost)")
            results[scenario.name] = result
            if not server.alive():
                raise BenchFailure(f"the server died during {scenario.name}:\n{server.log_tail()}")
            errors = {k: v for k, v in result.socket_errors.items() if k != "timeout"}
            if result.non_2xx or result.graphql_errors or any(errors.values()):
                failures.append(
                    f"{scenario.name}: {result.non_2xx} non-2xx, {result.graphql_errors} GraphQL errors, "
                    f"socket errors {result.socket_errors}"
                )
        if args.keep_server:
            print(f"server left running at {server.base} (pid {server.process.pid})")
    except BenchFailure as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_server:
            server.stop()

    after = db_counts(database_url)
    if before is not None and after is not None and before != after:
        failures.append(f"the read-only load wrote to the database: {before} -> {after}")
    checks = verdicts(results, scenarios)
    print_table(results, checks)
    for result in results.values():
        print(f"  $ {result.command}")
    RESULTS.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(),
                "machine": machine,
                "database_url": database_url,
                "seed": seed_meta,
                "wrk": {"threads": args.threads, "connections": args.connections, "duration_s": args.duration},
                "server": {"command": " ".join(server.command), "access_log": args.access_log, "workers": 1},
                "results": {name: {k: v for k, v in asdict(r).items() if k != "output"} for name, r in results.items()},
                "home_trivial_ratio": (
                    results["home"].requests_per_second / results["trivial"].requests_per_second
                    if {"home", "trivial"} <= results.keys()
                    else None
                ),
                "targets": checks,
                "failures": failures,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {RESULTS}")
    if failures:
        print("bench: FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
