"""The GraphQL HTTP views: orjson responses, per-request context, bearer-token authentication."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.types import ExecutionResult

from api.auth import AuthError
from api.auth.member_sign_in import member_id_from_authorization
from api.auth.tokens import TokenService
from loyalty import clock
from schema.compiler import CompiledDocuments
from schema.context import Context
from schema.ports import SessionIssuer

ContextT = TypeVar("ContextT")


class OrjsonGraphQL(GraphQL[ContextT, None]):
    """What both endpoints share: orjson responses, POST only, GraphiQL only when asked (never in production)."""

    def __init__(self, schema: BaseSchema, *, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


class MemberGraphQL(OrjsonGraphQL[Context]):
    """/graphql: the member app's endpoint. Only member-audience access tokens are accepted."""

    def __init__(
        self,
        schema: BaseSchema,
        *,
        tokens: TokenService,
        sessions: SessionIssuer,
        graphiql: bool,
        compiled: CompiledDocuments | None = None,
    ) -> None:
        super().__init__(schema, graphiql=graphiql)
        self.tokens = tokens
        self.sessions = sessions
        self.compiled = compiled  # the trusted queries' plans (KLUBB_COMPILED_EXECUTION), None: all via strawberry

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # A trusted query runs its compiled plan (same answer, a fraction of the CPU); anything else, strawberry.
        if self.compiled is not None and request_adapter.method == "POST":
            operation = self.compiled.get(request_data.query, request_data.operation_name, request_data.variables)
            if operation is not None:
                return await operation.execute(context, request_data.variables, root_value, request_data.operation_name)
        return await super().execute_single(request, request_adapter, sub_response, context, root_value, request_data)

    # The view's signature takes websockets too; only HTTP reaches it (both routes are HTTP routes).
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        now = clock.now()  # the request's one instant: its token is checked at it and its response reads as of it
        try:
            member_id = member_id_from_authorization(request.headers.get("authorization"), self.tokens, now)
        except AuthError as error:
            # A bad or expired token is an HTTP 401, so the app knows to refresh.
            raise HTTPException(401, error.message) from error
        return Context(request=request, response=response, member_id=member_id, sessions=self.sessions, now=now)
