"""The GraphQL HTTP views: orjson responses, per-request context, bearer-token authentication."""

from __future__ import annotations

import logging
from typing import TypeVar

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult

from api.auth import AuthError
from api.auth.member_sign_in import member_id_from_authorization
from api.auth.tokens import TokenService
from api.unavailable import raise_if_unavailable
from loyalty import clock
from schema.context import Context
from schema.ports import SessionIssuer

ContextT = TypeVar("ContextT")
log = logging.getLogger("klubb.auth")


class OrjsonGraphQL(GraphQL[ContextT, None]):
    """What both endpoints share: orjson responses, POST only, GraphiQL only when asked (never in production)."""

    def __init__(self, schema: BaseSchema, *, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # A resolver that lost the database is a 503 for the whole request (ServiceUnavailableMiddleware), not an
        # error entry carrying the driver's text (or a masked "Unexpected error." the app cannot tell apart).
        raise_if_unavailable(result.errors)
        return await super().process_result(request, result)


class MemberGraphQL(OrjsonGraphQL[Context]):
    """/graphql: the member app's endpoint. Only member-audience access tokens are accepted."""

    def __init__(self, schema: BaseSchema, *, tokens: TokenService, sessions: SessionIssuer, graphiql: bool) -> None:
        super().__init__(schema, graphiql=graphiql)
        self.tokens = tokens
        self.sessions = sessions

    # The view's signature takes websockets too; only HTTP reaches it (both routes are HTTP routes).
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        now = clock.now()  # the request's one instant: its token is checked at it and its response reads as of it
        try:
            member_id = member_id_from_authorization(request.headers.get("authorization"), self.tokens, now)
        except AuthError as error:
            # A bad or expired token is an HTTP 401, so the app knows to refresh; expected, so one line.
            log.info("member request refused [%s]: %s", error.code, error.message)
            raise HTTPException(401, error.message) from error
        return Context(request=request, response=response, member_id=member_id, sessions=self.sessions, now=now)
