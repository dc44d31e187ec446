"""The Starlette application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute

from admin import create_console
from api.auth import AuthError
from api.auth.firebase import FirebaseVerifier
from api.auth.member_sign_in import MemberSignIn
from api.auth.tokens import STAFF_AUDIENCE, TokenService
from api.google_wallet_setup import GoogleWallet, google_wallet
from api.graphiql import ASSETS_PATH as GRAPHIQL_ASSETS
from api.graphiql import graphiql_asset
from api.graphql import MemberGraphQL
from api.live import LocalBroker, RedisBroker
from api.push_setup import push_consumer
from api.referral_page import ReferralPage
from api.settings import Settings, get_settings
from api.staff_graphql import StaffGraphQL
from api.unavailable import ServiceUnavailableMiddleware
from api.wallet_setup import AppleWalletParts, apple_wallet, wallet_consumers
from loyalty.db import connect, disconnect, ping
from schema.compiled import CompiledDocuments
from schema.member_schema import QueryLimits, build_member_schema
from schema.staff.schema import OPERATIONS_DIR as STAFF_OPERATIONS_DIR
from schema.staff.schema import build_staff_schema
from schema.trusted_documents import OPERATIONS_DIR
from worker.runner import run_embedded
from worker.schedule import Schedule


async def run_embedded_worker(
    settings: Settings,
    stop: asyncio.Event,
    jobs: Schedule | None = None,
    wallet: AppleWalletParts | None = None,
    google: GoogleWallet | None = None,
    live: LocalBroker | None = None,
) -> None:
    """The outbox drainer (and the periodic `jobs`, the Apple pass updates, Google Wallet's sync, app push and the
    live updates' notices) inside the API process when `settings.embedded_worker` (the SQLite default), until
    `stop`; otherwise nothing (`klubb worker`)."""
    if not settings.embedded_worker:
        return
    async with contextlib.AsyncExitStack() as stack:
        extra = await wallet_consumers(stack, wallet, google)
        extra.append(await stack.enter_async_context(push_consumer(settings)))
        await run_embedded(settings.worker_config(), stop, jobs=jobs, extra_consumers=extra, live=live)


def live_broker(settings: Settings) -> LocalBroker | None:
    """Where live updates travel: Redis pub/sub with `KLUBB_REDIS_URL`, else this process; None when they are off."""
    if not settings.live_updates_enabled:
        return None
    return RedisBroker(settings.redis_url, channel=settings.redis_channel) if settings.redis_url else LocalBroker()


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the service: /graphql for the member app, /staff/graphql for the checkout and integrations, health
    routes, the referral links' landing page (/r/<code>), and the embedded outbox worker."""
    settings = settings or get_settings()
    settings.check_safe()
    jobs = Schedule.of(settings.job_intervals)
    wallet = apple_wallet(settings)
    google = google_wallet(settings)
    tokens = TokenService(settings)
    sessions = MemberSignIn(settings=settings, tokens=tokens, verifier=FirebaseVerifier(settings))
    limits: QueryLimits = {
        "production": settings.production,
        "max_depth": settings.graphql_max_depth,
        "max_aliases": settings.graphql_max_aliases,
        "max_tokens": settings.graphql_max_tokens,
        "max_fields": settings.graphql_max_fields,
    }
    graphiql = not settings.production
    live = live_broker(settings)
    member_schema = build_member_schema(**limits)
    member_graphql = MemberGraphQL(
        member_schema,
        tokens=tokens,
        sessions=sessions,
        graphiql=graphiql,
        max_body_bytes=settings.graphql_max_body_bytes,
        compiled=CompiledDocuments(member_schema, OPERATIONS_DIR) if settings.compiled_execution else None,
        wallet=wallet.links if wallet else None,
        google_wallet=google,
        live=live,
        live_limits=settings.live_limits(),
    )
    staff_schema = build_staff_schema(**limits)
    staff_graphql = StaffGraphQL(
        staff_schema,
        tokens=tokens,
        graphiql=graphiql,
        max_body_bytes=settings.staff_graphql_max_body_bytes,
        compiled=CompiledDocuments(staff_schema, STAFF_OPERATIONS_DIR) if settings.compiled_execution else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await connect(settings.database_url)
        # Everything built so far (schemas, models, settings) lives as long as the process: moving it out of the
        # collector's generations keeps every full collection from re-scanning it (~8 % of a home request's CPU).
        gc.freeze()
        stop = asyncio.Event()
        worker = asyncio.create_task(run_embedded_worker(settings, stop, jobs, wallet, google, live))
        try:
            yield
        finally:
            stop.set()
            await worker
            if live is not None:
                await live.aclose()
            if google is not None:
                await google.aclose()
            await disconnect()

    async def health(request: Request) -> JSONResponse:
        # Liveness: the process answers. It does not touch the database, so an outage does not get it restarted.
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> JSONResponse:
        # Readiness: the database answers too (else ServiceUnavailableMiddleware's 503).
        await ping()
        return JSONResponse({"status": "ok"})

    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(tokens.jwks())

    app = Starlette(
        routes=[
            Route("/graphql", member_graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", member_graphql),  # memberUpdated (api/subscriptions.py)
            Route("/staff/graphql", staff_graphql, methods=["GET", "POST"]),
            Route("/healthz", health),
            Route("/readyz", ready),
            Route("/.well-known/jwks.json", jwks),
            # The referral links' landing page, /r/<code>
            *ReferralPage(settings.public_url, settings.referral_page_language).routes(),
            # Apple Wallet: the PassKit web service (/passkit/v1/...) and the members' download links
            *(wallet.routes() if wallet else []),
            # Google Wallet: save/delete callbacks (and, in development, the local fake at /dev/google-wallet)
            *(google.routes() if google else []),
            # GraphiQL's own assets (no CDN), where GraphiQL is served at all
            *([Route(f"{GRAPHIQL_ASSETS}/{{name}}", graphiql_asset)] if graphiql else []),
            Mount(
                "/admin",
                create_console(
                    tokens,
                    audience=STAFF_AUDIENCE,
                    token_error=AuthError,
                    secure_cookies=settings.production,
                    middleware=[Middleware(ServiceUnavailableMiddleware, html=True)],
                ),
            ),
        ],
        # While the database is unreachable: 503 + Retry-After, not a 500 (api/unavailable.py).
        middleware=[Middleware(ServiceUnavailableMiddleware)],
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.wallet = wallet
    app.state.google_wallet = google
    app.state.live = live
    return app
