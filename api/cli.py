"""The `klubb` command line: migrate, seed, serve, worker, jobs and development helpers."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from api.settings import get_settings

app = typer.Typer(help="klubb: the loyalty backend.", no_args_is_help=True, add_completion=False)
T = TypeVar("T")


def run_with_db(job: Callable[[], Awaitable[T]]) -> T:
    """Run `job` with the configured database connected."""
    from loyalty.db import connect, disconnect

    async def main() -> T:
        await connect(get_settings().database_url)
        try:
            return await job()
        finally:
            await disconnect()

    return asyncio.run(main())


@app.command()
def migrate() -> None:
    """Apply the schema migrations to KLUBB_DATABASE_URL."""
    from loyalty.db import migrate as run_migrations

    url = get_settings().database_url
    if url.startswith("sqlite://"):
        Path(url.removeprefix("sqlite://")).parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(run_migrations(url))
    typer.echo(f"migrated {url}")


@app.command()
def seed(
    file: Annotated[Path, typer.Argument(help="programme TOML file")] = Path("demo/programme.toml"),
) -> None:
    """Create or update the programme (and demo members, if the file lists any) from a TOML file."""
    from loyalty.seeding import seed_from_config

    config = tomllib.loads(file.read_text())
    summary = run_with_db(lambda: seed_from_config(config))
    typer.echo(summary)


@app.command("expire-points")
def expire_points() -> None:
    """Mature pending points and expire due points (idempotent; safe alongside traffic)."""
    from loyalty.ledger import expire_due_points

    count = run_with_db(expire_due_points)
    typer.echo(f"settled {count} members")


@app.command("evaluate-tiers")
def evaluate_tiers() -> None:
    """Re-evaluate members whose tier hold has ended (downgrade one tier at a time)."""
    from loyalty.jobs import evaluate_due_tiers

    count = run_with_db(evaluate_due_tiers)
    typer.echo(f"evaluated {count} members")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default KLUBB_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default KLUBB_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="default KLUBB_WORKERS")] = None,
) -> None:
    """Run the API server (uvicorn) with the settings from the environment."""
    import uvicorn

    settings = get_settings()
    settings.check_safe()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level="info",
        access_log=not settings.production,
    )
