"""The bench's PostgreSQL database, seeded once and copied for every run.

`ensure_postgres(url)` makes the database that `url` names a fresh copy of a seeded template database beside it
(`<name>_seed`): the template is seeded with `bench.seed` once, and its seed key (seed version, program hash,
migrations hash, member count, and until when its data stay quiet) is kept as the template's `COMMENT ON
DATABASE`. While the key is current, a run only drops its database and `CREATE DATABASE <name> TEMPLATE
<name>_seed` (a file copy: seconds), so whatever a run writes never reaches the template. A template of another
seed version, program, schema or size, or one whose members would start to mature or expire, is seeded again.

    python -m bench.pgseed postgres://postgres@127.0.0.1:5432/klubb_bench   # seed (if needed) and copy
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench import seed

SEED_SUFFIX = "_seed"


def split_url(url: str) -> tuple[str, str]:
    """(the server's maintenance URL on database `postgres`, the database name) of a PostgreSQL URL."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or "/" in name:
        raise ValueError(f"{url!r} names no database")
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r}: letters, digits and underscores only")
    scheme = "postgresql" if parts.scheme in ("postgres", "postgresql", "asyncpg") else parts.scheme
    return urlunsplit((scheme, parts.netloc, "/postgres", parts.query, "")), name


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def seed_key(members: int) -> dict[str, Any]:
    """What a template must have been seeded with to be reused."""
    return {
        "seed_version": seed.SEED_VERSION,
        "program_sha256": seed.program_hash(),
        "migrations_sha256": seed.migrations_hash(),
        "members": members,
    }


def reusable(comment: str | None, members: int) -> dict[str, Any] | None:
    """The template's metadata if its comment says it is current for `members` members, else None."""
    try:
        meta = json.loads(comment or "")
    except ValueError:
        return None
    if not isinstance(meta, dict) or any(meta.get(k) != v for k, v in seed_key(members).items()):
        return None
    valid_until = datetime.fromisoformat(meta["valid_until"]) if meta.get("valid_until") else None
    if valid_until is not None and valid_until <= seed.clock.now() + seed.REUSE_MARGIN:
        return None
    return meta


async def _admin(url: str) -> asyncpg.Connection:
    admin_url, _ = split_url(url)
    return await asyncpg.connect(admin_url)


async def _template_comment(url: str, template: str) -> str | None:
    conn = await _admin(url)
    try:
        value = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", template
        )
        return str(value) if value is not None else None
    finally:
        await conn.close()


async def _recreate(url: str, name: str, template: str | None = None) -> None:
    conn = await _admin(url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        await conn.close()


async def _analyze(url: str) -> None:
    """Fresh statistics in the template (its copies inherit them): every run plans its queries alike."""
    admin_url, name = split_url(url)
    conn = await asyncpg.connect(with_database(admin_url, name))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _comment(url: str, name: str, meta: dict[str, Any]) -> None:
    conn = await _admin(url)
    try:
        text = json.dumps(meta, separators=(",", ":")).replace("'", "''")
        await conn.execute(f"COMMENT ON DATABASE \"{name}\" IS '{text}'")
    finally:
        await conn.close()


def ensure_postgres(url: str, members: int = seed.MEMBERS, *, force: bool = False) -> dict[str, Any]:
    """Make the database `url` names a fresh copy of the seeded template (seeding the template first if it is
    missing or stale); returns the template's seed metadata."""
    _, name = split_url(url)
    template = name + SEED_SUFFIX
    meta = None if force else reusable(asyncio.run(_template_comment(url, template)), members)
    if meta is None:
        print(f"bench db: seeding PostgreSQL template {template} ({members} members) ...", flush=True)
        asyncio.run(_recreate(url, template))
        meta = seed.run_seed(with_database(url, template), members)
        asyncio.run(_analyze(with_database(url, template)))
        asyncio.run(_comment(url, template, meta))
    else:
        print(f"bench db: reusing PostgreSQL template {template} (seed v{meta['seed_version']}, {meta['seeded_at']})")
    asyncio.run(_recreate(url, name, template))
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="the run database (its template is <name>_seed on the same server)")
    parser.add_argument("--members", type=int, default=seed.MEMBERS)
    parser.add_argument("--force", action="store_true", help="seed the template again even if it is current")
    args = parser.parse_args(argv)
    import os

    os.chdir(seed.ROOT)
    try:
        ensure_postgres(args.url, args.members, force=args.force)
    except seed.SeedError as exc:
        print(f"bench db: SEEDING FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
