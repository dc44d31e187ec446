"""sessionCreate: exchange a Firebase ID token for our access token and a rotating refresh token."""

from __future__ import annotations

import strawberry

from schema.context import Info
from schema.ports import SessionRefused
from schema.types.session import SessionPayload


@strawberry.input
class SessionCreateInput:
    firebase_id_token: str


async def session_create(info: Info, input: SessionCreateInput) -> SessionPayload:
    try:
        return SessionPayload.issued(await info.context.sessions.create(input.firebase_id_token))
    except SessionRefused as error:
        return SessionPayload.refused(error, "firebase_id_token")
