"""sessionRefresh: trade a refresh token for new tokens; a reused one ends the whole session family."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.ports import SessionRefused
from schema.types.session import SessionPayload


@strawberry.input
class SessionRefreshInput:
    refresh_token: str


async def session_refresh(info: Info, input: SessionRefreshInput) -> SessionPayload:
    try:
        return SessionPayload.issued(await info.context.sessions.refresh(input.refresh_token))
    except SessionRefused as error:
        return SessionPayload.refused(error, "refresh_token")
