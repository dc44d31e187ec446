"""The `klubb` command line: migrate, seed, serve, worker, jobs and development helpers."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from api.settings import Settings, UnsafeSettings, get_settings

if TYPE_CHECKING:
    from worker.schedule import Schedule

app = typer.Typer(help="klubb: the loyalty backend.", no_args_is_help=True, add_completion=False)
T = TypeVar("T")


def startup_settings(command: str) -> Settings:
    """The settings a long-running command (`serve`, `worker`) starts with; in production, unsafe or invalid
    settings end it with exit code 2 and one line per problem on stderr (an operator reads it, not a traceback)."""
    from pydantic import ValidationError

    try:
        settings = get_settings()
        settings.check_safe()
    except ValidationError as exc:
        for error in exc.errors():
            name = "KLUBB_" + "_".join(str(part) for part in error["loc"]).upper()
            typer.echo(f"klubb {command}: {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None
    except UnsafeSettings as exc:
        for problem in exc.problems:
            typer.echo(f"klubb {command}: refusing to start in production: {problem}", err=True)
        raise typer.Exit(2) from None
    return settings


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


def run_domain_action(action: Callable[[], Awaitable[T]]) -> T:
    """`run_with_db` for a domain action; a refusal is one `error [CODE]: message` line and exit code 2."""
    from loyalty.errors import DomainError

    try:
        return run_with_db(action)
    except DomainError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None


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
    file: Annotated[Path, typer.Argument(help="program TOML file")] = Path("demo/program.toml"),
) -> None:
    """Create or update the program (and demo members, if the file lists any) from a TOML file."""
    from loyalty.seeding import seed_from_config

    config = tomllib.loads(file.read_text())
    summary = run_with_db(lambda: seed_from_config(config))
    typer.echo(summary)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="default KLUBB_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="default KLUBB_PORT")] = None,
    workers: Annotated[int | None, typer.Option(help="default KLUBB_WORKERS")] = None,
    access_log: Annotated[bool | None, typer.Option(help="log every request (default: outside production)")] = None,
) -> None:
    """Run the API server (uvicorn) with the settings from the environment.

    With more than one worker process the embedded outbox worker is off in every one of them (it would run N
    times): run `klubb worker` beside the server. KLUBB_EMBEDDED_WORKER=true with --workers > 1 is refused (exit 2).
    """
    import os

    import uvicorn

    settings = startup_settings("serve")
    processes = workers if workers is not None else settings.workers
    if processes < 1:
        typer.echo(f"klubb serve: --workers must be at least 1, not {processes}", err=True)
        raise typer.Exit(2)
    if processes > 1:
        if settings.embedded_worker and "embedded_worker" in settings.model_fields_set:
            typer.echo(
                f"klubb serve: KLUBB_EMBEDDED_WORKER=true cannot be combined with --workers {processes}: the "
                "embedded outbox worker would run in every process; set KLUBB_EMBEDDED_WORKER=false and run "
                "`klubb worker` beside the server",
                err=True,
            )
            raise typer.Exit(2)
        # uvicorn's worker processes build their settings from the environment they inherit.
        os.environ["KLUBB_EMBEDDED_WORKER"] = "false"
        typer.echo(f"klubb serve: {processes} worker processes, embedded outbox worker off (run `klubb worker`)")
    if settings.live_updates_enabled and not settings.redis_url and (processes > 1 or not settings.embedded_worker):
        # Production refuses this (Settings.check_safe); in development it is allowed, and said once.
        typer.echo(
            "klubb serve: warning: live updates (memberUpdated) reach no socket without KLUBB_REDIS_URL when the "
            "outbox worker runs outside the server process",
            err=True,
        )
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=processes,
        log_level="info",
        access_log=not settings.production if access_log is None else access_log,
        # A websocket message is refused past the live limit (api.subscriptions); uvicorn need not buffer 16 MiB.
        ws_max_size=settings.live_max_message_bytes * 4 + 1024,
    )


@app.command()
def demo(
    file: Annotated[Path, typer.Argument(help="the seeded demo program (for its logins)")] = Path("demo/program.toml"),
) -> None:
    """Serve the seeded demo program on KLUBB_HOST:KLUBB_PORT and print where to look (`make demo`)."""
    settings = get_settings()
    if settings.production:
        typer.echo("`klubb demo` is for development only", err=True)
        raise typer.Exit(1)
    from loyalty.seeding import demo_members

    config = tomllib.loads(file.read_text())
    base = f"http://{settings.host}:{settings.port}"
    env = f"KLUBB_DATABASE_URL={settings.database_url}"
    demo = run_with_db(demo_members)
    members = "\n".join(f"    {m.name:<18} {m.email:<22} no. {m.member_number}  {m.describe()}" for m in demo)
    # The first demo member's invitation (their code is given on first use).
    invitation = f"{base}/r/{run_with_db(lambda: _referral_code(demo[0].member_number))}" if demo else "(no members)"
    staff = "\n".join(
        f"    {s['role']:<8} {s['email']:<24} password {s['password']:<18} "
        f"stores: {', '.join(s.get('stores', [])) or 'all'}"
        for s in config.get("staff", [])
    )
    typer.echo(
        f"""
klubb demo: {settings.database_url}

  Member API (GraphiQL)   {base}/graphql
  Staff API (GraphiQL)    {base}/staff/graphql
  Checkout console        {base}/admin
  Referral landing page   {invitation}
  Health                  {base}/healthz

  Staff logins (console and staffSessionCreate):
{staff}

  Demo members (look one up at the till by email or number) and what each shows:
{members}

  Sign in as one (emulator-mode Firebase token -> klubb access token):

    TOKEN=$({env} .venv/bin/klubb dev-token {config.get("members", [{}])[0].get("email", "anna@example.com")})
    curl -s {base}/graphql -H 'content-type: application/json' \\
      -d '{{"query":"mutation($t: String!) {{ sessionCreate(input: {{firebaseIdToken: $t}}) {{ accessToken }} }}",'\\
'"variables":{{"t":"'$TOKEN'"}}}}'

  Then send `Authorization: Bearer <accessToken>` with the app's operations in mobile-client-mock/operations/
  (Home.graphql is the home screen). At the till, look a member up by member number, email or the card code.
"""
    )
    serve(host=None, port=None, workers=1, access_log=None)


# --- outbox worker and webhooks -------------------------------------------------------------------------------------


async def _referral_code(member_number: str) -> str:
    from loyalty.models import Member
    from loyalty.referrals import code_of

    member = await Member.get(member_number=member_number)
    return await code_of(member.id)


@app.command()
def worker(
    once: Annotated[bool, typer.Option("--once", help="drain what is due now, then exit")] = False,
    batch_size: Annotated[int, typer.Option(min=1, max=500, help="deliveries leased at a time")] = 20,
    poll_seconds: Annotated[
        float, typer.Option(min=0.05, help="idle polling interval (on PostgreSQL a commit wakes the worker sooner)")
    ] = 1.0,
) -> None:
    """Drain the outbox (live updates through KLUBB_REDIS_URL, webhook deliveries, wallet updates, app pushes) and
    run the periodic jobs on their schedule until SIGTERM/SIGINT; safe to run several at once on PostgreSQL. With
    --once: drain the outbox once (the jobs: `klubb jobs run`)."""
    import contextlib
    import logging
    import signal

    from api.google_wallet_setup import google_wallet
    from api.live import RedisBroker
    from api.push_setup import push_consumer
    from api.wallet_setup import apple_wallet, wallet_consumers
    from worker.consumers import Consumer
    from worker.live import LiveConsumer
    from worker.runner import drain_once, make_client, run_forever
    from worker.wakeup import outbox_wakeups
    from worker.webhooks import WebhookConsumer

    settings = startup_settings("worker")
    config = settings.worker_config()
    jobs = job_schedule(settings.job_intervals)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise here

    google = google_wallet(settings)
    wallet = apple_wallet(settings)

    async def job() -> int:
        async with contextlib.AsyncExitStack() as stack:
            client = await stack.enter_async_context(make_client())
            consumers: list[Consumer] = []
            # Live updates first (a notice should not wait behind webhooks); only Redis reaches the API processes.
            if settings.live_updates_enabled and settings.redis_url:
                broker = RedisBroker(settings.redis_url, channel=settings.redis_channel)
                stack.push_async_callback(broker.aclose)
                consumers.append(LiveConsumer(broker))
            consumers.append(WebhookConsumer(config, client, batch_size=batch_size))
            consumers += await wallet_consumers(stack, wallet, google)
            consumers.append(await stack.enter_async_context(push_consumer(settings)))
            if once:
                return await drain_once(consumers)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            listener = await stack.enter_async_context(outbox_wakeups(config.listen_url))
            wake = listener.wake if listener is not None else None
            grace = config.webhook_timeout_seconds
            await run_forever(consumers, stop, poll_seconds, grace_seconds=grace, jobs=jobs, wake=wake)
            return 0

    attempts = run_with_db(job)
    if once:
        typer.echo(f"made {attempts} delivery attempts")


jobs_app = typer.Typer(help="Periodic jobs (`klubb worker` runs them on a schedule).", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")


def job_schedule(intervals: dict[str, float]) -> Schedule:
    """The worker's job schedule from KLUBB_JOB_INTERVALS; a wrong setting ends the command with its message."""
    from worker.schedule import Schedule

    try:
        return Schedule.of(intervals)
    except ValueError as exc:
        typer.echo(f"error: KLUBB_JOB_INTERVALS: {exc}", err=True)
        raise typer.Exit(2) from None


@jobs_app.command("list")
def jobs_list() -> None:
    """List the periodic jobs: name, how often the worker runs it (KLUBB_JOB_INTERVALS), what it does."""
    from loyalty.jobs import JOBS

    intervals = {job.name: seconds for job, seconds in job_schedule(get_settings().job_intervals).entries}
    for job in JOBS:
        every = f"every {intervals[job.name]:g} s" if job.name in intervals else "off"
        typer.echo(f"{job.name}\t{every}\t{job.description}")


@jobs_app.command("run")
def jobs_run(
    names: Annotated[list[str] | None, typer.Argument(help="jobs to run, in this order (default: every job)")] = None,
) -> None:
    """Run periodic jobs once, now (idempotent: safe alongside traffic, the worker and each other)."""
    from loyalty.errors import DomainError
    from loyalty.jobs import get_jobs

    try:
        selected = get_jobs(names or [])
    except DomainError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None

    async def run_all() -> bool:
        ok = True
        for job in selected:
            try:
                typer.echo(job.report(await job.run()))
            except Exception as exc:  # the next job may well succeed: run it, and exit non-zero at the end
                typer.echo(f"{job.name} failed: {type(exc).__name__}: {exc}", err=True)
                ok = False
        return ok

    if not run_with_db(run_all):
        raise typer.Exit(1)


webhook_app = typer.Typer(help="Webhook endpoints that receive domain events.", no_args_is_help=True)
app.add_typer(webhook_app, name="webhook")


@webhook_app.command("add")
def webhook_add(
    url: Annotated[str, typer.Argument(help="http(s) URL that receives signed POSTs")],
    event: Annotated[list[str] | None, typer.Option("--event", help="event type (repeat; none = every event)")] = None,
) -> None:
    """Register a webhook endpoint; prints its id and signing secret (shown only this once)."""
    from loyalty.webhooks import create_webhook_endpoint

    endpoint, secret = run_domain_action(lambda: create_webhook_endpoint(url, event or []))
    typer.echo(f"id: {endpoint.id}")
    typer.echo(f"secret: {secret}")


@webhook_app.command("list")
def webhook_list() -> None:
    """List webhook endpoints (id, active, URL, event types)."""
    from loyalty.webhooks import list_webhook_endpoints

    for endpoint in run_with_db(list_webhook_endpoints):
        types = ",".join(endpoint.event_types) or "*"
        typer.echo(f"{endpoint.id}\t{'active' if endpoint.active else 'inactive'}\t{endpoint.url}\t{types}")


@webhook_app.command("deactivate")
def webhook_deactivate(endpoint_id: Annotated[int, typer.Argument(help="endpoint id")]) -> None:
    """Stop delivering to an endpoint (its pending deliveries are marked failed)."""
    from loyalty.webhooks import deactivate_webhook_endpoint

    run_domain_action(lambda: deactivate_webhook_endpoint(endpoint_id))
    typer.echo(f"deactivated {endpoint_id}")


@app.command("dev-token")
def dev_token(email: Annotated[str, typer.Argument(help="the demo member's email")]) -> None:
    """Print a Firebase Auth emulator ID token for the demo member `demo:<email>` (development only).

    Only the token goes to stdout, so `TOKEN=$(klubb dev-token anna@example.com)` works.
    """
    from api.auth.firebase import emulator_enabled, make_emulator_id_token

    settings = get_settings()
    if settings.production:
        typer.echo("klubb dev-token: refused in production (KLUBB_ENVIRONMENT=production)", err=True)
        raise typer.Exit(1)
    if not emulator_enabled():
        typer.echo("note: the server accepts this token only with FIREBASE_AUTH_EMULATOR_HOST set", err=True)
    address = email.strip().lower()
    typer.echo(make_emulator_id_token(settings.firebase_project_id, f"demo:{address}", address, settings=settings))


@app.command("jwt-keygen")
def jwt_keygen(
    path: Annotated[Path, typer.Argument(help="where to write the new private key (PEM, mode 0600)")],
    public_out: Annotated[
        Path | None, typer.Option(help="also write the public key here (for KLUBB_JWT_PREVIOUS_PUBLIC_KEY_FILES)")
    ] = None,
) -> None:
    """Write a new EC P-256 access-token signing key (for KLUBB_JWT_PRIVATE_KEY_FILE); never overwrites a file."""
    from api.auth.tokens import generate_private_key, jwk_thumbprint, public_key_pem, write_private_key

    key = generate_private_key()
    try:
        write_private_key(path, key)
    except FileExistsError:
        typer.echo(f"klubb jwt-keygen: {path} exists; refusing to overwrite a signing key", err=True)
        raise typer.Exit(1) from None
    if public_out is not None:
        public_out.write_bytes(public_key_pem(key.public_key()))
    typer.echo(f"wrote {path} (kid {jwk_thumbprint(key.public_key())})")


# --- staff accounts and integration API keys --------------------------------------------------------------------------

staff_app = typer.Typer(help="Staff accounts (checkout and back office).", no_args_is_help=True)
app.add_typer(staff_app, name="staff")
apikey_app = typer.Typer(help="API keys for integrations (POS, web shop).", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
Role = Annotated[str, typer.Option("--role", help="cashier, manager or admin")]


@staff_app.command("create")
def staff_create(
    email: Annotated[str, typer.Argument(help="sign-in email (stored lower-case)")],
    role: Role,
    store: Annotated[list[str] | None, typer.Option("--store", help="store code (repeat; none = every store)")] = None,
    name: Annotated[str, typer.Option("--name", help="display name")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Create a staff account. The password is prompted for (or read from stdin), never taken as an argument."""
    import sys

    from loyalty.staff import create_staff

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    staff = run_domain_action(lambda: create_staff(email, password, role, store or (), name))
    stores = ",".join(staff.store_codes) or "every store"
    typer.echo(f"created staff {staff.id}: {staff.email} ({staff.role.value}, {stores})")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="what uses the key, e.g. 'POS store 1'")],
    role: Role,
    store: Annotated[str | None, typer.Option("--store", help="the one store the key may act in")] = None,
) -> None:
    """Create an API key and print it once (only its hash is stored): send it as `X-Api-Key` to /staff/graphql."""
    from loyalty.staff import create_api_key

    key, raw = run_domain_action(lambda: create_api_key(name, role, store))
    typer.echo(
        f"created API key {key.id} ({key.role.value}, {key.store_code or 'every store'}); it is shown only now:",
        err=True,
    )
    typer.echo(raw)


push_app = typer.Typer(help="App push: campaigns and lifecycle automations.", no_args_is_help=True)
app.add_typer(push_app, name="push")
campaign_app = typer.Typer(help="Push campaigns (acting as klubb itself: audited as the system).", no_args_is_help=True)
push_app.add_typer(campaign_app, name="campaign")
automations_app = typer.Typer(help="Lifecycle automations ([push.automations] of the program file).")
push_app.add_typer(automations_app, name="automations")


def _texts(values: list[str], option: str) -> dict[str, str]:
    """`--title en="Hello"` pairs as {locale: text}."""
    texts: dict[str, str] = {}
    for value in values:
        locale, separator, text = value.partition("=")
        if not separator:
            typer.echo(f"error [INVALID]: {option} takes LOCALE=TEXT, e.g. {option} en=Hello", err=True)
            raise typer.Exit(2)
        texts[locale.strip()] = text
    return texts


@campaign_app.command("create")
def campaign_create(
    name: Annotated[str, typer.Option("--name", help="the campaign's name (staff only see it)")],
    title: Annotated[list[str], typer.Option("--title", help="LOCALE=TEXT (repeat; the default locale required)")],
    body: Annotated[list[str], typer.Option("--body", help="LOCALE=TEXT (repeat)")],
    offer: Annotated[int | None, typer.Option("--offer", help="the attached offer's id")] = None,
    tier: Annotated[list[str] | None, typer.Option("--tier", help="a tier name (repeat)")] = None,
    min_tier_rank: Annotated[int | None, typer.Option("--min-tier-rank")] = None,
    stage: Annotated[list[str] | None, typer.Option("--stage", help="new, active, lapsing or lapsed (repeat)")] = None,
    birthday_month: Annotated[bool, typer.Option("--birthday-month", help="members in their birthday month")] = False,
    interest: Annotated[list[str] | None, typer.Option("--interest", help="an interest (repeat)")] = None,
    min_spend: Annotated[
        int | None, typer.Option("--min-spend", help="net spend this tier period, minor units")
    ] = None,
    conversion_days: Annotated[int, typer.Option("--conversion-days")] = 7,
) -> None:
    """Draft a push campaign; prints its id (then `klubb push campaign dry-run ID` and `schedule ID`)."""
    from loyalty.actors import SYSTEM
    from loyalty.campaigns import CampaignSpec, create_campaign

    spec = CampaignSpec(
        name=name,
        title=_texts(title, "--title"),
        body=_texts(body, "--body"),
        offer_id=offer,
        tier_names=tuple(tier or ()),
        min_tier_rank=min_tier_rank,
        lifecycle_stages=tuple(stage or ()),
        birthday_month=birthday_month,
        interests=tuple(interest or ()),
        min_spend=min_spend,
        conversion_days=conversion_days,
    )
    campaign = run_domain_action(lambda: create_campaign(SYSTEM, spec))
    typer.echo(f"created push campaign {campaign.id} ({campaign.status.value})")


@campaign_app.command("schedule")
def campaign_schedule(
    campaign_id: Annotated[int, typer.Argument(help="campaign id")],
    at: Annotated[str | None, typer.Option("--at", help="ISO time with an offset (default: now)")] = None,
) -> None:
    """Schedule a draft campaign; the `send-push-campaigns` job writes its messages when it is due."""
    from datetime import datetime

    from loyalty.actors import SYSTEM
    from loyalty.campaigns import schedule_campaign

    try:
        when = datetime.fromisoformat(at) if at is not None else None
    except ValueError:
        typer.echo("error [INVALID_SCHEDULE]: --at takes an ISO time such as 2026-05-01T09:00:00+02:00", err=True)
        raise typer.Exit(2) from None
    campaign = run_domain_action(lambda: schedule_campaign(SYSTEM, campaign_id, when))
    assert campaign.scheduled_at is not None
    typer.echo(f"scheduled push campaign {campaign.id} at {campaign.scheduled_at.isoformat()}")


@campaign_app.command("cancel")
def campaign_cancel(campaign_id: Annotated[int, typer.Argument(help="campaign id")]) -> None:
    """Cancel a campaign not yet sent (what was already written stays owed)."""
    from loyalty.actors import SYSTEM
    from loyalty.campaigns import cancel_campaign

    campaign = run_domain_action(lambda: cancel_campaign(SYSTEM, campaign_id))
    typer.echo(f"cancelled push campaign {campaign.id}")


@campaign_app.command("dry-run")
def campaign_dry_run(campaign_id: Annotated[int, typer.Argument(help="campaign id")]) -> None:
    """How many members the campaign reaches now, how many of them consent, how many of those have a device."""
    from loyalty.campaigns import DryRun, dry_run, get_campaign

    async def count() -> DryRun:
        return await dry_run(await get_campaign(campaign_id))

    result = run_domain_action(count)
    typer.echo(f"reach: {result.reach}\nconsenting: {result.consenting}\nwith device: {result.with_device}")


@campaign_app.command("figures")
def campaign_figures_command(campaign_id: Annotated[int, typer.Argument(help="campaign id")]) -> None:
    """A campaign's figures: targeted, sent, delivered, opened, converted."""
    from loyalty.campaigns import campaign_figures

    result = run_domain_action(lambda: campaign_figures(campaign_id))
    typer.echo(
        f"targeted: {result.targeted}\nsent: {result.sent}\ndelivered: {result.delivered}\n"
        f"opened: {result.opened}\nconverted: {result.converted}"
    )


@campaign_app.command("list")
def campaign_list() -> None:
    """The latest 100 campaigns: id, status, scheduled time, targeted, name."""
    from loyalty.actors import SYSTEM
    from loyalty.campaigns import list_campaigns

    for campaign in run_domain_action(lambda: list_campaigns(SYSTEM, limit=100)):
        at = campaign.scheduled_at.isoformat() if campaign.scheduled_at else "-"
        typer.echo(f"{campaign.id}\t{campaign.status.value}\t{at}\t{campaign.targeted}\t{campaign.name}")


@automations_app.command("list")
def automations_list() -> None:
    """Every automation kind: on or off, its settings."""
    from loyalty.models import AutomationKind, PushAutomation

    async def read() -> dict[AutomationKind, PushAutomation]:
        return {a.kind: a for a in await PushAutomation.all()}

    configured = run_domain_action(read)
    for kind in AutomationKind:
        automation = configured.get(kind)
        state = "on" if automation is not None and automation.enabled else "off"
        settings = ", ".join(f"{k}={v}" for k, v in (automation.settings if automation else {}).items())
        typer.echo(f"{kind.value}\t{state}\t{settings}")


def _switch(kind: str, on: bool) -> None:
    from loyalty.automations import set_enabled
    from loyalty.models import AutomationKind

    try:
        chosen = AutomationKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in AutomationKind)
        typer.echo(f"error [INVALID]: no automation {kind!r}; the kinds are {kinds}", err=True)
        raise typer.Exit(2) from None
    run_domain_action(lambda: set_enabled(chosen, on))
    typer.echo(f"{chosen.value}: {'on' if on else 'off'}")


@automations_app.command("enable")
def automations_enable(kind: Annotated[str, typer.Argument(help="e.g. welcome, birthday")]) -> None:
    """Turn an automation on (it needs its texts in the default locale)."""
    _switch(kind, True)


@automations_app.command("disable")
def automations_disable(kind: Annotated[str, typer.Argument(help="e.g. welcome, birthday")]) -> None:
    """Turn an automation off at once."""
    _switch(kind, False)
