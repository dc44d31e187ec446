"""CPU per execution of a trusted query (Home unless `--operation`), strawberry vs the compiled plan, in one
process on one bench member (not a timed test).

    .venv/bin/python -m bench.seed                      # var/bench.sqlite3, if not there yet
    .venv/bin/python -m bench.compiled_cpu [--database-url sqlite://var/bench.sqlite3] [--runs 2000] [--operation Home]

Both paths run the same request (same member, same instant, fresh DataLoaders each time, as a request has) and are
encoded with orjson; `time.process_time` over `--runs` executions each, alternating rounds so that both see the
same machine. Prints µs per execution.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from strawberry.http import process_result
from tortoise import connections

from loyalty import clock
from loyalty.db import connect, disconnect
from schema.compiled import CompiledDocuments
from schema.context import Context
from schema.member_schema import build_member_schema
from schema.trusted_documents import OPERATIONS_DIR


async def measure(database_url: str, runs: int, rounds: int, operation_name: str = "Home") -> dict[str, float]:
    query = (OPERATIONS_DIR / f"{operation_name}.graphql").read_text()
    await connect(database_url)
    try:
        # The member with the longest history: the bench's heaviest home screen.
        rows = await connections.get("default").execute_query_dict(
            "SELECT member_id FROM ledger_entry GROUP BY member_id ORDER BY COUNT(*) DESC LIMIT 1"
        )
        member_id = int(rows[0]["member_id"])
        schema = build_member_schema(production=False)
        operation = CompiledDocuments(schema, OPERATIONS_DIR).get(query, None, None)
        assert operation is not None
        now = clock.now()

        def context() -> Context:
            return Context(request=None, response=None, member_id=member_id, sessions=cast(Any, None), now=now)

        # "Pre-loaded": every DataLoader's cache (and the program) copied from a finished request, so no database.
        loaded = context()
        await operation.execute(loaded, None)

        def preloaded() -> Context:
            fresh = context()
            for name, loader in vars(loaded.loaders).items():
                if hasattr(loader, "cache_map"):
                    getattr(fresh.loaders, name).cache_map.cache_map = dict(loader.cache_map.cache_map)
            fresh._program = loaded._program
            return fresh

        def strawberry_home(make: Callable[[], Context]) -> Callable[[], Awaitable[bytes]]:
            async def run() -> bytes:
                return orjson.dumps(process_result(await schema.execute(query, context_value=make())))

            return run

        def compiled_home(make: Callable[[], Context]) -> Callable[[], Awaitable[bytes]]:
            async def run() -> bytes:
                return orjson.dumps(process_result(await operation.execute(make(), None)))

            return run

        paths: dict[str, Callable[[], Awaitable[bytes]]] = {
            "strawberry": strawberry_home(context),
            "compiled": compiled_home(context),
            "strawberry, pre-loaded": strawberry_home(preloaded),
            "compiled, pre-loaded": compiled_home(preloaded),
        }
        answers = {name: await run() for name, run in paths.items()}
        assert len(set(answers.values())) == 1, answers
        totals = dict.fromkeys(paths, 0.0)
        for _ in range(rounds):
            for name, run in paths.items():
                for _ in range(20):  # warm-up
                    await run()
                started = time.process_time()
                for _ in range(runs // rounds):
                    await run()
                totals[name] += time.process_time() - started
        return {name: total / (runs // rounds * rounds) * 1e6 for name, total in totals.items()}
    finally:
        await disconnect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite://var/bench.sqlite3")
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--operation", default="Home", help="a query of mobile-client-mock/operations/")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.database_url, args.runs, args.rounds, args.operation))
    for name, micros in figures.items():
        print(f"{name:>22}: {micros:6,.0f} µs per {args.operation}")
    print(f"{'with reads':>22}: {figures['strawberry'] / figures['compiled']:.1f}x less CPU compiled")
    ratio = figures["strawberry, pre-loaded"] / figures["compiled, pre-loaded"]
    print(f"{'pre-loaded':>22}: {ratio:.1f}x less CPU compiled")


if __name__ == "__main__":
    main()
