"""CPU per HTTP request, in process: the whole app (Starlette, authentication, the GraphQL view, orjson) called as an
ASGI application, without a socket or a load generator, so that the figure is the server's own work (not a timed
test).

    .venv/bin/python -m bench.http_cpu [--database-url sqlite://var/bench.sqlite3] [--runs 1000] [--profile lookup]

Scenarios as `make bench` sends them: `trivial` (`{ __typename }`, anonymous), `program` (the app's Program query,
anonymous, no SQL: the HTTP layer around a plan), `home` (the app's Home as random
members), `lookup` (the till's reference lookup on /staff/graphql by random member numbers, as the bench cashier).
Each runs with compiled execution on and off (KLUBB_COMPILED_EXECUTION), alternating rounds so that both see the same
machine; `time.process_time` over `--runs` requests each; prints µs per request. A SQLite database is copied first
(a lookup settles the member it finds: the bench database stays as seeded). `--profile NAME` prints cProfile's top
functions for one scenario, compiled.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import random
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.types import Message

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.models import Member, StaffUser
from loyalty.staff import create_staff, new_session_id
from schema.staff.schema import OPERATIONS_DIR as STAFF_OPERATIONS_DIR
from schema.trusted_documents import OPERATIONS_DIR

BENCH_CASHIER = "bench-till@example.com"  # as bench/run.py's
MEMBERS = 200
# (path, Authorization header, body) of one request
Request = tuple[str, str, bytes]


async def call(app: Starlette, path: str, authorization: str, body: bytes) -> bytes:
    """One POST through the ASGI app; its response body (the status must be 200)."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    chunks: list[bytes] = []
    status = 0

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    answer = b"".join(chunks)
    assert status == 200, (status, answer)
    return answer


def body(query: str, variables: dict[str, Any] | None = None, operation: str | None = None) -> bytes:
    return orjson.dumps({"query": query, "variables": variables, "operationName": operation})


async def requests(settings: Settings, rng: random.Random) -> dict[str, list[Request]]:
    tokens = TokenService(settings)
    ids = list(await Member.all().order_by("id").values_list("id", flat=True))
    members = await Member.filter(id__in=rng.sample(ids, min(MEMBERS, len(ids)))).order_by("id")
    cashier = await StaffUser.get_or_none(email=BENCH_CASHIER)
    if cashier is None:
        cashier = await create_staff(BENCH_CASHIER, "bench till password", "cashier", display_name="Bench till")
    staff = tokens.issue(f"staff:{cashier.id}", STAFF_AUDIENCE, new_session_id()).token
    home = (OPERATIONS_DIR / "Home.graphql").read_text()
    program = (OPERATIONS_DIR / "Program.graphql").read_text()
    lookup = (STAFF_OPERATIONS_DIR / "Lookup.graphql").read_text()
    return {
        "trivial": [("/graphql", "", body("{ __typename }"))],
        "program": [("/graphql", "", body(program, None, "Program"))],
        "home": [
            ("/graphql", f"Bearer {tokens.issue(str(m.id), MEMBER_AUDIENCE).token}", body(home, None, "Home"))
            for m in members
        ],
        "lookup": [
            ("/staff/graphql", f"Bearer {staff}", body(lookup, {"query": m.member_number}, "Lookup")) for m in members
        ],
    }


async def measure(database_url: str, runs: int, rounds: int, profile: str | None) -> dict[str, dict[str, float]]:
    async with AsyncExitStack() as stack:
        if database_url.startswith("sqlite://"):  # a copy: lookups settle members
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "bench.sqlite3"
            shutil.copy(database_url.removeprefix("sqlite://"), scratch)
            database_url = f"sqlite://{scratch}"
        key = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "jwt.pem"
        base = Settings(
            environment=Environment.DEVELOPMENT,
            database_url=database_url,
            jwt_dev_key_file=str(key),
            embedded_worker=False,
        )
        apps = {
            "compiled": create_app(base),
            "strawberry": create_app(base.model_copy(update={"compiled_execution": False})),
        }
        await stack.enter_async_context(apps["compiled"].router.lifespan_context(apps["compiled"]))
        scenarios = await requests(base, random.Random(9))

        def runner(app: Starlette, sent: list[Request]) -> Callable[[int], Awaitable[None]]:
            async def run(count: int) -> None:
                for index in range(count):
                    await call(app, *sent[index % len(sent)])

            return run

        for name, sent in scenarios.items():  # both paths answer alike (and warm every cache)
            for request in sent:
                answers = {path: await call(app, *request) for path, app in apps.items()}
                assert answers["compiled"] == answers["strawberry"], (name, answers)
                assert b'"errors"' not in answers["compiled"], (name, answers)
        if profile is not None:
            profiler = cProfile.Profile()
            profiler.enable()
            await runner(apps["compiled"], scenarios[profile])(runs)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(50)
        totals = {name: dict.fromkeys(apps, 0.0) for name in scenarios}
        per_round = runs // rounds
        for _ in range(rounds):
            for name, sent in scenarios.items():
                for path, app in apps.items():
                    run = runner(app, sent)
                    await run(20)  # warm-up
                    started = time.process_time()
                    await run(per_round)
                    totals[name][path] += time.process_time() - started
        return {name: {p: t / (per_round * rounds) * 1e6 for p, t in paths.items()} for name, paths in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="sqlite://var/bench.sqlite3")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--profile", choices=["trivial", "program", "home", "lookup"])
    args = parser.parse_args()
    figures = asyncio.run(measure(args.database_url, args.runs, args.rounds, args.profile))
    print(f"{'µs CPU per request':>20} {'compiled':>10} {'strawberry':>11}")
    for name, paths in figures.items():
        print(f"{name:>20} {paths['compiled']:10,.0f} {paths['strawberry']:11,.0f}")


if __name__ == "__main__":
    main()
