"""The per-request contexts: who is calling, the request's one instant and program, and its DataLoaders."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strawberry.types import Info as StrawberryInfo

from loyalty import clock
from loyalty.models import Program
from loyalty.program import cached_program
from schema.errors import NotAuthenticated
from schema.loaders import Loaders
from schema.ports import GoogleWalletLinks, LiveUpdates, SessionIssuer, WalletLinks


@dataclass(kw_only=True)
class RequestContext:
    """What every resolver of one request reads alike, on both endpoints.

    `now` is taken once per request (`get_context` passes the instant it authenticated at) and `program()` is read
    at most once, so a response never mixes two clocks or two versions of the program; the DataLoaders are made
    with both and keyed on ids only.
    """

    now: datetime = field(default_factory=clock.now)
    loaders: Loaders = field(init=False)
    _program: Program | None = field(default=None, init=False, repr=False)
    _program_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.now, self.program)

    async def program(self) -> Program:
        """The program as of this request, loaded on first use (a query that needs none, e.g. `{ __typename }`,
        reads nothing)."""
        async with self._program_lock:  # resolvers run concurrently: the first one loads, the others wait for it
            if self._program is None:
                self._program = await cached_program()
        return self._program


@dataclass
class Context(RequestContext):
    request: Any
    response: Any
    member_id: int | None
    sessions: SessionIssuer
    wallet: WalletLinks | None = None  # None: no wallet configured (every link is null)
    google_wallet: GoogleWalletLinks | None = None  # None: Google Wallet is off (googleSaveUrl is null)
    live: LiveUpdates | None = None  # None: live updates are off (memberUpdated refuses)
    # A websocket's `connection_init` payload (strawberry sets it); its member is authenticated from it.
    connection_params: dict[str, object] | None = None
    access_expires_at: datetime | None = None  # a websocket's: it is closed when its access token expires
    public_url: str = ""  # where klubb is reached from outside (`me.referral.link`)
    device_hash_key: bytes = b""  # the key app installation ids are hashed with (`referralApply`)

    def require_member(self) -> int:
        """The signed-in member's id, or a top-level UNAUTHENTICATED error."""
        if self.member_id is None:
            raise NotAuthenticated()
        return self.member_id


Info = StrawberryInfo[Context, None]
