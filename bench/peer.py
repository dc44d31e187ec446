"""The reference peer: the app's Home query as a developer would write it by hand with strawberry and Tortoise.

Issue 9 measures klubb's home query against this: the same data (`tests/bench/test_peer.py` asserts it), served by
its own Starlette app, with nothing klubb adds for speed — no compiled plans, no hand-written SQL, no program or
token cache, no orjson. Reads are Tortoise querysets building models, one DataLoader per related read (so the
fields of one request batch as a developer would batch them), the token is verified with PyJWT on every request,
and the program and its tiers are read per request. The domain's pure rules (the card code, tier progress, the
qualification period, settling a member whose lots fall due) are called as any code over `loyalty` would.

    KLUBB_DATABASE_URL=sqlite://var/bench-run.sqlite3 KLUBB_JWT_DEV_KEY_FILE=var/bench-jwt-key.pem \\
        .venv/bin/uvicorn bench.peer:create_app --factory --port 8100
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import jwt
import strawberry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.dataloader import DataLoader
from strawberry.types import Info as StrawberryInfo

from api.auth.tokens import ALGORITHM, MEMBER_AUDIENCE, signing_key_from_settings
from api.settings import Settings, get_settings
from loyalty import card, clock, models
from loyalty.db import connect, disconnect
from loyalty.ledger import settle_member_if_due
from loyalty.program import PROGRAM_ID
from loyalty.tiers import period_end, period_start, tier_progress

# --- the reads: Tortoise querysets behind per-request DataLoaders ---------------------------------------------------


async def load_program() -> models.Program:
    program = await models.Program.filter(id=PROGRAM_ID).prefetch_related("tiers").first()
    if program is None:
        raise RuntimeError("the program is not configured")
    return program


@dataclass
class PeerContext:
    request: Any
    response: Any
    member_id: int | None
    now: datetime = field(default_factory=clock.now)
    _program: models.Program | None = None

    def __post_init__(self) -> None:
        self.members = DataLoader(self._load_members)
        self.expiring = DataLoader(self._load_expiring)
        self.qualifying = DataLoader(self._load_qualifying)
        self.activity = DataLoader(self._load_activity)

    async def program(self) -> models.Program:
        if self._program is None:
            self._program = await load_program()
        return self._program

    async def _load_members(self, ids: Sequence[int]) -> list[models.Member | None]:
        found = {m.id: m for m in await models.Member.filter(id__in=list(ids))}
        return [found.get(i) for i in ids]

    async def _load_expiring(self, ids: Sequence[int]) -> list[list[tuple[datetime, int]]]:
        until = self.now + timedelta(days=(await self.program()).expiring_soon_days)
        lots = await models.PointsLot.filter(
            member_id__in=list(ids), status=models.LotStatus.AVAILABLE, remaining__gt=0, expires_at__lte=until
        ).order_by("expires_at", "id")
        totals: dict[int, dict[datetime, int]] = {i: {} for i in ids}
        for lot in lots:
            assert lot.expires_at is not None
            by_expiry = totals[lot.member_id]
            by_expiry[lot.expires_at] = by_expiry.get(lot.expires_at, 0) + lot.remaining
        return [list(totals[i].items()) for i in ids]

    async def _load_qualifying(self, ids: Sequence[int]) -> list[int]:
        program = await self.program()
        credits = await models.QualifyingCredit.filter(
            member_id__in=list(ids),
            occurred_at__gte=period_start(program, self.now),
            occurred_at__lt=period_end(program, self.now),
        ).values_list("member_id", "amount")
        totals = dict.fromkeys(ids, 0)
        for member_id, amount in credits:
            totals[member_id] += amount
        return [totals[i] for i in ids]

    async def _load_activity(self, keys: Sequence[tuple[int, int]]) -> list[list[models.LedgerEntry]]:
        return [
            await models.LedgerEntry.filter(member_id=member_id)
            .exclude(kind=models.EntryKind.MATURE)
            .order_by("-id")
            .limit(limit)
            for member_id, limit in keys
        ]


Info = StrawberryInfo[PeerContext, None]


# --- the types ------------------------------------------------------------------------------------------------------


def global_id(type_name: str, key: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{key}".encode()).decode())


@strawberry.enum(name="ActivityKind")
class ActivityKind(Enum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REFUND_CLAWBACK = "refund_clawback"
    ADJUSTMENT = "adjustment"
    REFERRAL_BONUS = "referral_bonus"
    BIRTHDAY = "birthday"
    REVERSAL = "reversal"


DESCRIPTIONS = {
    "earn": "Purchase",
    "redeem": "Points redeemed",
    "expire": "Points expired",
    "refund_clawback": "Return",
    "adjustment": "Adjustment",
    "referral_bonus": "Referral bonus",
    "birthday": "Birthday reward",
    "reversal": "Redemption cancelled",
}


@strawberry.type
class MemberCard:
    barcode_value: str
    barcode_format: str
    code: str
    code_expires_at: datetime


@strawberry.type
class ExpiringPoints:
    amount: int
    expires_at: datetime


@strawberry.type
class Points:
    available: int
    pending: int
    lifetime_earned: int
    member_id: strawberry.Private[int]

    @strawberry.field
    async def expiring_soon(self, info: Info) -> list[ExpiringPoints]:
        rows = await info.context.expiring.load(self.member_id)
        return [ExpiringPoints(amount=amount, expires_at=at) for at, amount in rows]


@strawberry.type
class Tier:
    name: str
    threshold: int


@strawberry.type
class TierProgress:
    current: Tier
    next: Tier | None
    qualifying_value: int
    next_threshold: int | None
    remaining_to_next: int | None
    progress: float
    period_ends_at: datetime
    held_until: datetime | None
    needed_to_keep: int


@strawberry.type
class ActivityEntry:
    id: strawberry.ID
    kind: ActivityKind
    points: int
    pending: int
    description: str
    occurred_at: datetime


@strawberry.type
class ActivityEdge:
    cursor: str
    node: ActivityEntry


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ActivityConnection:
    edges: list[ActivityEdge]
    page_info: PageInfo


def cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"activity:{entry_id}".encode()).decode()


@strawberry.type(name="Member")
class Member:
    id: strawberry.ID
    member_number: str
    display_name: str
    model: strawberry.Private[models.Member]

    @strawberry.field
    async def card(self, info: Info) -> MemberCard:
        program = await info.context.program()
        code = card.card_code(self.model, info.context.now, program.card_code_seconds)
        return MemberCard(
            barcode_value=code.barcode_value,
            barcode_format=card.BARCODE_FORMAT,
            code=code.code,
            code_expires_at=code.expires_at,
        )

    @strawberry.field
    def points(self) -> Points:
        m = self.model
        return Points(
            available=m.points_available, pending=m.points_pending, lifetime_earned=m.lifetime_earned, member_id=m.id
        )

    @strawberry.field
    async def tier(self, info: Info) -> TierProgress:
        value = await info.context.qualifying.load(self.model.id)
        progress = tier_progress(self.model, await info.context.program(), value, info.context.now)
        return TierProgress(
            current=Tier(name=progress.current.name, threshold=progress.current.threshold),
            next=Tier(name=progress.next.name, threshold=progress.next.threshold) if progress.next else None,
            qualifying_value=progress.qualifying_value,
            next_threshold=progress.next_threshold,
            remaining_to_next=progress.remaining_to_next,
            progress=progress.progress,
            period_ends_at=progress.period_ends_at,
            held_until=progress.held_until,
            needed_to_keep=progress.needed_to_keep,
        )

    @strawberry.field
    async def activity(self, info: Info, first: int = 20) -> ActivityConnection:
        entries = await info.context.activity.load((self.model.id, first + 1))
        edges = [
            ActivityEdge(
                cursor=cursor(e.id),
                node=ActivityEntry(
                    id=global_id("ActivityEntry", e.id),
                    kind=ActivityKind(e.kind.value),
                    points=e.delta_available + e.delta_pending,
                    pending=e.delta_pending,
                    description=e.description or DESCRIPTIONS.get(e.kind.value, e.kind.value),
                    occurred_at=e.occurred_at or e.created_at,
                ),
            )
            for e in entries[:first]
        ]
        return ActivityConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=len(entries) > first,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
        )


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info) -> Member:
        if info.context.member_id is None:
            raise PermissionError("not signed in")
        member = await info.context.members.load(info.context.member_id)
        if member is None:
            raise PermissionError("this member no longer exists")
        member = await settle_member_if_due(member, info.context.now)
        return Member(
            id=global_id("Member", member.id),
            member_number=member.member_number,
            display_name=member.display_name,
            model=member,
        )


schema = strawberry.Schema(query=Query)


# --- the app ---------------------------------------------------------------------------------------------------------


class PeerGraphQL(GraphQL[PeerContext, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(schema, graphql_ide=None)
        self.public_key = signing_key_from_settings(settings).public_key()
        self.issuer = settings.jwt_issuer

    async def get_context(self, request: Any, response: Any) -> PeerContext:
        now = clock.now()  # the request's one instant (the business clock: tests freeze it)
        member_id = None
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            try:
                claims = jwt.decode(
                    auth.removeprefix("Bearer "),
                    self.public_key,
                    algorithms=[ALGORITHM],
                    audience=MEMBER_AUDIENCE,
                    issuer=self.issuer,
                    options={"verify_exp": False, "verify_iat": False},  # checked against `now` below
                )
                if float(claims["exp"]) > now.timestamp():
                    member_id = int(claims["sub"])
            except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
                member_id = None
        return PeerContext(request=request, response=response, member_id=member_id, now=now)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await connect(settings.database_url)
        try:
            yield
        finally:
            await disconnect()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/graphql", PeerGraphQL(settings), methods=["GET", "POST"]), Route("/healthz", health)],
        lifespan=lifespan,
    )
