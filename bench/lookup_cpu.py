"""CPU per compiled home screen and per compiled checkout lookup, with their reads, in one process on one bench member
(not a timed test).

    .venv/bin/python -m bench.seed                      # var/bench.sqlite3, if not there yet
    .venv/bin/python -m bench.lookup_cpu [--database-url sqlite://var/bench.sqlite3] [--runs 2000]
    .venv/bin/python -m bench.lookup_cpu --database-url postgres://…/klubb_bench [--reset-released-sessions]

Runs the member app's `Home` (mobile-client-mock/operations/) and the till's `Lookup` and `MemberSummary`
(schema/staff/operations/, by member number, as a cashier) through their compiled plans, as a request does: a fresh
context (DataLoaders) per execution, the same instant, the result encoded with orjson. The member is the one with the
longest history. `time.process_time` and wall time over `--runs` executions each, alternating rounds so that all see
the same machine; prints µs per execution and the SQL statements each ran. `--reset-released-sessions` runs
PostgreSQL's pool with asyncpg's reset query on every released connection (what `loyalty.db.keep_session` avoids).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from strawberry.http import process_result
from tortoise import connections

from loyalty import clock
from loyalty.actors import Actor
from loyalty.db import connect, disconnect
from loyalty.models import StaffRole
from schema.compiled import CompiledDocuments
from schema.context import Context
from schema.member_schema import build_member_schema
from schema.staff.context import StaffContext
from schema.staff.schema import OPERATIONS_DIR as STAFF_OPERATIONS_DIR
from schema.staff.schema import build_staff_schema
from schema.trusted_documents import OPERATIONS_DIR

CASHIER = Actor(kind="staff", id=1, role=StaffRole.CASHIER, name="Bench till")


class _Statements(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _statements(run: Callable[[], Awaitable[bytes]]) -> int:
    """How many SQL statements one execution sends (Tortoise's and loyalty.sql's log lines)."""
    logger, counter = logging.getLogger("tortoise.db_client"), _Statements()
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        await run()
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
    return counter.count


async def measure(
    database_url: str, runs: int, rounds: int, reset_released_sessions: bool = False
) -> dict[str, tuple[float, float, int]]:
    """Per path: (µs CPU, µs wall, SQL statements) per execution."""
    await connect(database_url, reset_released_sessions=reset_released_sessions)
    try:
        rows = await connections.get("default").execute_query_dict(
            "SELECT member_id FROM ledger_entry GROUP BY member_id ORDER BY COUNT(*) DESC LIMIT 1"
        )
        member_id = int(rows[0]["member_id"])
        numbers = await connections.get("default").execute_query_dict(
            f"SELECT member_number FROM member WHERE id = {member_id}"  # noqa: S608 - an int from the database
        )
        member_number = str(numbers[0]["member_number"])
        home_text = (OPERATIONS_DIR / "Home.graphql").read_text()
        home = CompiledDocuments(build_member_schema(production=False), OPERATIONS_DIR).get(home_text, None, None)
        staff_documents = CompiledDocuments(build_staff_schema(production=False), STAFF_OPERATIONS_DIR)
        now = clock.now()

        def member_path() -> Callable[[], Awaitable[bytes]]:
            assert home is not None

            async def run() -> bytes:
                context = Context(request=None, response=None, member_id=member_id, sessions=cast(Any, None), now=now)
                return orjson.dumps(process_result(await home.execute(context, None)))

            return run

        def staff_path(name: str) -> Callable[[], Awaitable[bytes]]:
            operation = staff_documents.get((STAFF_OPERATIONS_DIR / f"{name}.graphql").read_text(), None, None)
            assert operation is not None
            variables = {"query": member_number}

            async def run() -> bytes:
                context = StaffContext(request=None, response=None, actor=CASHIER, now=now)
                return orjson.dumps(process_result(await operation.execute(context, variables)))

            return run

        paths = {"home": member_path(), "lookup": staff_path("Lookup"), "member summary": staff_path("MemberSummary")}
        for name, run in paths.items():
            answer = orjson.loads(await run())
            if "errors" in answer or not answer["data"]:
                raise RuntimeError(f"{name}: {answer}")
        statements = {name: await _statements(run) for name, run in paths.items()}
        cpu = dict.fromkeys(paths, 0.0)
        wall = dict.fromkeys(paths, 0.0)
        per_round = runs // rounds
        for _ in range(rounds):
            for name, run in paths.items():
                for _ in range(20):  # warm-up
                    await run()
                started, started_wall = time.process_time(), time.perf_counter()
                for _ in range(per_round):
                    await run()
                cpu[name] += time.process_time() - started
                wall[name] += time.perf_counter() - started_wall
        total = per_round * rounds
        return {name: (cpu[name] / total * 1e6, wall[name] / total * 1e6, statements[name]) for name in paths}
    finally:
        await disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite://var/bench.sqlite3")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--reset-released-sessions", action="store_true", help="PostgreSQL: asyncpg's reset query on every release"
    )
    args = parser.parse_args()
    figures = asyncio.run(measure(args.database_url, args.runs, args.rounds, args.reset_released_sessions))
    for name, (cpu, wall, statements) in figures.items():
        print(f"{name:>15}: {cpu:6,.0f} µs CPU, {wall:6,.0f} µs wall per execution ({statements} SQL statements)")


if __name__ == "__main__":
    main()
