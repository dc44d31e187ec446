"""/staff/graphql: the staff schema, for a staff access token (`Authorization: Bearer`) or an API key (`X-Api-Key`).

Bad credentials are an HTTP 401, as on the member endpoint; no credentials leave only `staffSessionCreate` open.
The actor is rebuilt from the database on every request, so a deactivated account or revoked key stops at once.
"""

from __future__ import annotations

import logging

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.schema import BaseSchema

from api.auth import AuthError
from api.auth.staff_sign_in import StaffSignIn, actor_from_headers
from api.auth.tokens import TokenService
from api.graphql import OrjsonGraphQL
from loyalty import clock
from schema.compiled import CompiledDocuments
from schema.staff.context import StaffContext

log = logging.getLogger("klubb.auth")


class StaffGraphQL(OrjsonGraphQL[StaffContext]):
    """/staff/graphql: checkout and back-office operations for staff and integrations."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        tokens: TokenService,
        graphiql: bool,
        max_body_bytes: int,
        compiled: CompiledDocuments | None = None,
    ) -> None:
        super().__init__(schema, graphiql=graphiql, max_body_bytes=max_body_bytes, compiled=compiled)
        self.tokens = tokens
        self.staff_sessions = StaffSignIn(tokens)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> StaffContext:
        now = clock.now()  # the request's one instant, as on the member endpoint
        try:
            actor = await actor_from_headers(request.headers, self.tokens, now)
        except AuthError as error:
            log.info("staff request refused [%s]: %s", error.code, error.message)  # expected: one line
            raise HTTPException(401, error.message) from error
        return StaffContext(
            request=request, response=response, actor=actor, staff_sessions=self.staff_sessions, now=now
        )
