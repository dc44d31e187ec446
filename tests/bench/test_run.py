"""bench/run.py's own logic: phases, targets, pgbench's report, CPU accounting and the PostgreSQL seed cache."""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bench import pgseed, procs, run, seed
from bench.run import Phase, WrkResult

POSTGRES_URL = os.environ.get("KLUBB_TEST_POSTGRES_URL")


def _result(rps: float, p99: float = 10.0, cpu_ms: float = 0.5) -> WrkResult:
    return WrkResult(
        requests_per_second=rps,
        p50_ms=1.0,
        p90_ms=2.0,
        p99_ms=p99,
        requests=int(rps * 5),
        non_2xx=0,
        socket_errors={},
        graphql_errors=0,
        command="wrk",
        output="",
        cpu={"ms_per_request": cpu_ms, "server_ms_per_request": cpu_ms, "database_ms_per_request": 0.0},
    )


def test_phases_are_engines_by_workers_and_sqlite_runs_one_process() -> None:
    assert run.parse_phases("sqlite,postgres", "2,1") == [
        Phase("sqlite", 1),
        Phase("postgres", 1),
        Phase("postgres", 2),
    ]
    assert [p.name for p in run.parse_phases("postgres", "4")] == ["postgres/4"]
    assert run.parse_phases("sqlite", "1,2") == [Phase("sqlite", 1)]


@pytest.mark.parametrize(
    ("engines", "workers", "message"),
    [
        ("mysql", "1", "--engines: sqlite or postgres, not 'mysql'"),
        ("sqlite", "0", "--workers: a comma-separated list of counts >= 1"),
        ("sqlite", "", "--workers: a comma-separated list of counts >= 1"),
    ],
)
def test_bad_phases_are_refused(engines: str, workers: str, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        run.parse_phases(engines, workers)


def test_bad_phase_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run.main(["--engines", "oracle"])
    assert exited.value.code == 2
    assert "--engines: sqlite or postgres, not 'oracle'" in capsys.readouterr().err


def test_targets_within_and_across_phases() -> None:
    results = {
        "sqlite/1": {"trivial": _result(1000), "home": _result(450, p99=40, cpu_ms=0.9), "peer-home": _result(40)},
        "postgres/1": {
            "trivial": _result(1000),
            "home": _result(300, p99=80, cpu_ms=1.5),
            "lookup-paced": _result(200, p99=12, cpu_ms=1.2),
            "purchase": _result(600),
        },
        "postgres/2": {"trivial": _result(1900), "home": _result(570)},
    }
    checks = run.verdicts(results, run.SCENARIOS, {"tps": 1000.0}, None)

    assert [(c["target"], c["value"], c["met"]) for c in checks] == [
        ("sqlite/1 home throughput >= 40% of trivial", "45.0%", True),
        ("sqlite/1 home throughput >= 10x the reference peer's", "11.25x", True),
        ("sqlite/1 home p99 <= 50 ms", "40.00 ms", True),
        ("sqlite/1 home CPU (server + database) <= 1 ms/request", "0.90 ms", True),
        ("postgres/1 home throughput >= 40% of trivial", "30.0%", False),
        ("postgres/1 home p99 <= 50 ms", "80.00 ms", False),
        ("postgres/1 home CPU (server + database) <= 1 ms/request", "1.50 ms", False),
        ("postgres/1 lookup-paced p99 <= 15 ms", "12.00 ms", True),
        ("postgres/1 lookup-paced CPU (server + database) <= 1 ms/request", "1.20 ms", False),
        ("postgres/1 purchase/s >= 50% of pgbench TPC-B tps", "60.0%", True),
        ("postgres/2 home throughput >= 40% of trivial", "30.0%", False),
        ("postgres/2 home p99 <= 50 ms", "10.00 ms", True),
        ("postgres/2 home CPU (server + database) <= 1 ms/request", "0.50 ms", True),
        ("postgres/2 home throughput >= 1.8x postgres/1", "1.90x", True),
        ("postgres/2 trivial throughput >= 1.8x postgres/1", "1.90x", True),
        ("postgres/1 home throughput within 20% of sqlite/1", "66.7%", False),
        ("postgres/1 trivial throughput within 20% of sqlite/1", "100.0%", True),
    ]
    # throughput ratios also by CPU per request (what bounds them on a quiet machine): 0.5 ms / 0.9 ms
    assert [c.get("by_cpu") for c in checks[:3]] == ["55.6%", "0.56x", None]


def test_the_trivial_querys_cpu_is_compared_with_the_baseline() -> None:
    baseline: dict[str, Any] = {
        "phases": {"sqlite/1": {"results": {"trivial": {"requests_per_second": 900, "cpu": {"ms_per_request": 0.4}}}}}
    }
    results = {"sqlite/1": {"trivial": _result(1000, cpu_ms=0.45)}}

    checks = run.verdicts(results, run.SCENARIOS, None, baseline)

    assert checks == [
        {
            "target": "sqlite/1 trivial CPU unchanged (<= 110% of the baseline's 0.400 ms/request)",
            "value": "0.45 ms",
            "met": False,
        }
    ]


def test_pgbench_report() -> None:
    output = """pgbench (15.20 (Debian 15.20-0+deb12u1))
transaction type: <builtin: TPC-B (sort of)>
scaling factor: 16
number of clients: 16
number of threads: 2
duration: 5 s
number of transactions actually processed: 8123
latency average = 9.851 ms
initial connection time = 21.032 ms
tps = 1624.212321 (without initial connection time)
"""
    assert run.parse_pgbench(output) == {"tps": 1624.212321, "latency_avg_ms": 9.851}
    with pytest.raises(run.BenchFailure, match="pgbench output lacks tps"):
        run.parse_pgbench("connection to server failed")


def test_purchase_requests_are_made_unique_by_the_lua_placeholder() -> None:
    class Ctx:
        rng = __import__("random").Random(1)

        def staff_token(self) -> str:
            return "staff-token"

        def chosen_members(self) -> list[int]:
            return [1, 2]

    requests = run.purchase_requests(Ctx())  # type: ignore[arg-type]

    assert [auth for auth, _ in requests] == ["Bearer staff-token"] * 2
    for _, body in requests:
        data = json.loads(body)
        assert data["operationName"] == "Purchase"
        receipt = data["variables"]["input"]["receiptId"]
        assert receipt == "B" + run.SEQ_PLACEHOLDER
        assert len(run.SEQ_PLACEHOLDER) == 14  # bench/graphql.lua: tag (4) + thread (2) + counter (8)
        lines = data["variables"]["input"]["lines"]
        assert data["variables"]["input"]["total"] == sum(line["amount"] for line in lines)


@pytest.mark.parametrize(
    ("title", "database"),
    [
        ("postgres: 15/main: postgres klubb_bench 127.0.0.1(53708) idle", "klubb_bench"),
        ("postgres: klubb shop 10.0.0.5(40000) SELECT", "shop"),
        ("postgres: postgres klubb_bench [local] idle in transaction", "klubb_bench"),
        ("postgres: 15/main: checkpointer ", None),
        ("postgres: 15/main: autovacuum worker klubb_bench", None),
        ("/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", None),
        ("", None),
    ],
)
def test_backend_database_from_the_process_title(title: str, database: str | None) -> None:
    assert procs.backend_database(title) == database


def test_tree_cpu_counts_the_children() -> None:
    # given a child process that burns CPU for a moment, then waits
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.monotonic() + 20
        while procs.tree_cpu(os.getpid()).get(child.pid, 0.0) < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        # then this process's tree holds it, with the CPU it used
        tree = procs.tree_cpu(os.getpid())
        assert os.getpid() in tree
        assert tree[child.pid] >= 0.25
        assert child.pid in procs.descendants(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert procs.used_since({1: 1.0, 2: 2.0}, {1: 1.5, 2: 2.0, 3: 0.25}) == 0.75


def test_postgres_urls() -> None:
    assert pgseed.split_url("postgres://postgres@127.0.0.1:5432/klubb_bench") == (
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "klubb_bench",
    )
    assert pgseed.with_database("postgres://u@h/a", "a_seed") == "postgres://u@h/a_seed"
    with pytest.raises(ValueError, match="names no database"):
        pgseed.split_url("postgres://u@h/")
    for bad in ("postgres://u@h/a-b", 'postgres://u@h/x";drop'):
        with pytest.raises(ValueError, match="letters, digits and underscores only"):
            pgseed.split_url(bad)


def test_a_template_is_reused_only_while_its_seed_key_is_current() -> None:
    key = pgseed.seed_key(100)
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    meta = {**key, "valid_until": later, "seeded_at": "x"}

    assert pgseed.reusable(json.dumps(meta), 100) == meta
    assert pgseed.reusable(json.dumps(meta), 200) is None  # another size
    assert pgseed.reusable(json.dumps({**meta, "seed_version": seed.SEED_VERSION - 1}), 100) is None
    assert pgseed.reusable(json.dumps({**meta, "program_sha256": "0" * 64}), 100) is None
    assert pgseed.reusable(json.dumps({**meta, "migrations_sha256": "0" * 64}), 100) is None  # a new migration
    assert pgseed.reusable(json.dumps({**meta, "valid_until": soon}), 100) is None  # members fall due
    assert pgseed.reusable(None, 100) is None  # a database without a comment
    assert pgseed.reusable("not json", 100) is None
    assert pgseed.reusable("[1, 2]", 100) is None


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL run skipped: KLUBB_TEST_POSTGRES_URL is not set")
def test_the_postgres_run_database_is_a_fresh_copy_of_the_seeded_template(monkeypatch: pytest.MonkeyPatch) -> None:
    # given a run database named after the test database (its template is <name>_seed), and a short history
    assert POSTGRES_URL is not None
    url = pgseed.with_database(POSTGRES_URL, pgseed.split_url(POSTGRES_URL)[1] + "_pgseed")
    seeded: list[str] = []

    def fake_seed(database_url: str, members: int) -> dict[str, Any]:
        # bench.seed's work is tested in test_seed.py; here only what pgseed does around it
        seeded.append(database_url)
        statement = "CREATE TABLE member (id int PRIMARY KEY, display_name text);"
        statement += "".join(f"INSERT INTO member VALUES ({i}, 'member {i}');" for i in range(1, members + 1))
        asyncio.run(_execute(database_url, statement))
        valid_until = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        return {**pgseed.seed_key(members), "seeded_at": datetime.now(UTC).isoformat(), "valid_until": valid_until}

    monkeypatch.setattr(seed, "run_seed", fake_seed)
    try:
        # when it is prepared twice, with a write in between
        first = pgseed.ensure_postgres(url, 3)
        asyncio.run(_execute(url, "UPDATE member SET display_name = 'changed'"))
        second = pgseed.ensure_postgres(url, 3)

        # then the template was seeded once (the second run reused its comment) and the copy is fresh
        assert seeded == [url + pgseed.SEED_SUFFIX]
        assert second == first
        assert first["members"] == 3
        names = asyncio.run(_fetch(url, "SELECT display_name FROM member ORDER BY id"))
        assert len(names) == 3
        assert "changed" not in names
        # and another size seeds the template again
        assert (
            pgseed.reusable(asyncio.run(pgseed._template_comment(url, pgseed.split_url(url)[1] + "_seed")), 4) is None
        )
    finally:
        asyncio.run(_drop(url))


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _fetch(url: str, query: str) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch(query)]
    finally:
        await conn.close()


async def _drop(url: str) -> None:
    admin, name = pgseed.split_url(url)
    conn = await asyncpg.connect(admin)
    try:
        for database in (name, name + pgseed.SEED_SUFFIX):
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (make bench installs it)")
def test_the_lua_script_makes_every_write_unique(tmp_path: Path) -> None:
    # given a local HTTP server that keeps every body it gets, and two prepared purchase-like requests
    bodies: list[bytes] = []

    class Keep(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            answer = b'{"data":{"purchaseRecord":{"userErrors":[]}}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Keep)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    requests = tmp_path / "requests.txt"
    lines = [f'Bearer t\t{{"receiptId":"B{run.SEQ_PLACEHOLDER}","n":{n}}}\n' for n in range(2)]
    requests.write_text("".join(lines))
    try:
        # when wrk sends them for a second with a tag
        env = {**os.environ, "BENCH_REQUESTS": str(requests), "BENCH_SEQ_TAG": "TAG1"}
        command = [
            "wrk",
            "-t2",
            "-c4",
            "-d1s",
            "-s",
            str(seed.ROOT / run.LUA),
            f"http://127.0.0.1:{server.server_port}/",
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)
    finally:
        server.shutdown()
        thread.join()
        server.server_close()

    # then every body arrived whole (Content-Length still right) with a receipt id of its own, and no error counted
    assert done.returncode == 0, done.stderr
    assert "graphql_errors: 0" in done.stdout
    receipts = [json.loads(body)["receiptId"] for body in bodies]
    assert len(receipts) > 10
    assert len(set(receipts)) == len(receipts)
    assert all(re.fullmatch(r"BTAG10[12]\d{8}", receipt) for receipt in receipts), receipts[:5]


def test_the_push_and_live_benches_run_on_databases_of_their_own() -> None:
    # given the run's PostgreSQL URL and the defaults
    args = argparse.Namespace(push_members=20_000, push_fanout=5_000, redis_url="redis://r/0")

    # when the push and live phase's commands are made
    commands = run.push_live_commands("postgres://u@h:5432/klubb_bench", args)

    # then each wiping bench has a database derived from the run's, never the run's own
    assert [(name, database, command[1:]) for name, database, command in commands] == [
        (
            "push_end_to_end",
            "postgres://u@h:5432/klubb_bench_push",
            ["-m", "bench.push_end_to_end", "postgres://u@h:5432/klubb_bench_push", "--members", "20000"],
        ),
        ("push_fanout", None, ["-m", "bench.push", "--http2", "--pushes", "5000"]),
        (
            "live",
            "postgres://u@h:5432/klubb_bench_live",
            [
                "-m",
                "bench.live",
                "--database-url",
                "postgres://u@h:5432/klubb_bench_live",
                "--redis-url",
                "redis://r/0",
            ],
        ),
    ]
    assert (run.PUSH_MEMBERS, run.PUSH_FANOUT) == (20_000, 5_000)


def test_the_push_end_to_end_bench_sends_every_push_of_a_small_campaign() -> None:
    # given a database of its own next to the test database (the bench wipes it)
    assert POSTGRES_URL is not None
    url = pgseed.with_database(POSTGRES_URL, pgseed.split_url(POSTGRES_URL)[1] + "_push_bench")
    asyncio.run(run._create_database_if_missing(url))

    # when the bench runs a campaign to 300 members
    command = [sys.executable, "-m", "bench.push_end_to_end", url, "--members", "300", "--fanout", "50"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    # then every stage counted what it did (150 consenting members, 100 of them with a device) and the fake got each
    assert done.returncode == 0, done.stderr
    counts = re.findall(r"^  (members|campaign|release|send|fan-out) +([\d,]+) (\w+)", done.stdout, re.MULTILINE)
    assert counts == [
        ("members", "300", "members"),
        ("campaign", "150", "messages"),
        ("release", "150", "messages"),
        ("send", "100", "pushes"),
        ("fan-out", "50", "pushes"),
    ]
    assert "fake counted 50)" in done.stdout
