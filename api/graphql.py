"""The GraphQL HTTP views: a bounded JSON body, orjson, per-request context, bearer-token authentication.

Everything that is wrong with a request before GraphQL sees it is an HTTP error with a JSON body of GraphQL's shape
(`{"errors": [{"message", "extensions": {"code"}}]}`), never a 500: a body over the size limit is a 413 (checked
while it is read, so a chunked body without Content-Length is cut off too), another content type than JSON a 415,
and a body that is not JSON, not an object, or whose `query`, `variables`, `operationName` or `extensions` have the
wrong type a 400. A document that does not parse (a syntax error, more tokens than the limit, nested deeper than
graphql-core's parser allows) is a 400 as well, with GraphQL's usual error body.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLSyntaxError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from api.auth import AuthError
from api.auth.member_sign_in import member_id_from_authorization
from api.auth.tokens import TokenService
from api.graphiql import GRAPHIQL_PAGE
from api.live import LiveLimits
from api.subscriptions import (
    MAX_OPERATIONS,
    BoundedWebSocketAdapter,
    Connections,
    MemberSocket,
    authenticate,
    init_timeout,
)
from api.unavailable import raise_if_unavailable
from loyalty import clock
from schema.compiled import CompiledDocuments
from schema.context import Context
from schema.ports import GoogleWalletLinks, LiveUpdates, SessionIssuer, WalletLinks

ContextT = TypeVar("ContextT")
HTTP_OPERATIONS = {OperationType.QUERY, OperationType.MUTATION}
log = logging.getLogger("klubb.auth")

# The code each HTTP refusal carries in its JSON body.
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class BodyTooLarge(Exception):
    """The request body grew past the endpoint's limit while it was read."""


def http_error(status: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": HTTP_ERROR_CODES.get(status, "BAD_REQUEST")}}]},
        status_code=status,
    )


def capped_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising BodyTooLarge as soon as the body's bytes so far exceed `limit`."""
    received = 0

    async def wrapped() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return wrapped


def request_data(data: Any) -> GraphQLRequestData:
    """The GraphQL request a decoded JSON body holds, or a 400 saying what is wrong with it."""
    if isinstance(data, list):
        raise HTTPException(400, "batched requests are not supported: send one JSON object per request")
    if not isinstance(data, dict):
        raise HTTPException(400, "the request body must be a JSON object with a `query` string")
    query = data.get("query")
    if query is None:
        raise HTTPException(400, "the request body has no `query`")
    if not isinstance(query, str):
        raise HTTPException(400, "`query` must be a string")
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise HTTPException(400, "`variables` must be an object or null")
    operation_name = data.get("operationName")
    if not isinstance(operation_name, str | None):
        raise HTTPException(400, "`operationName` must be a string or null")
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise HTTPException(400, "`extensions` must be an object or null")
    return GraphQLRequestData(
        query=query, variables=variables, operation_name=operation_name, extensions=extensions, protocol="http"
    )


class OrjsonGraphQL(GraphQL[ContextT, None]):
    """What both endpoints share: a body of at most `max_body_bytes`, orjson, POST only, GraphiQL only when asked
    (never in production), and the endpoint's known queries run as compiled plans."""

    def __init__(
        self, schema: BaseSchema, *, graphiql: bool, max_body_bytes: int, compiled: CompiledDocuments | None = None
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None, allow_queries_via_get=False)
        self.max_body_bytes = max_body_bytes
        self.compiled = compiled  # the known queries' plans (KLUBB_COMPILED_EXECUTION), None: all via strawberry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        response: Response
        request = Request(scope, capped_receive(receive, self.max_body_bytes))
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body_bytes:
            response = http_error(413, f"the request body is larger than {self.max_body_bytes} bytes")
        else:
            try:
                response = await (self.run_post(request) if request.method == "POST" else self.run(request))
            except HTTPException as error:
                response = http_error(error.status_code, error.reason)
            except BodyTooLarge:
                response = http_error(413, f"the request body is larger than {self.max_body_bytes} bytes")
        await response(scope, receive, send)

    async def run_post(self, request: Request) -> Response:
        """strawberry's `run` for a POST, step for step (sub-response, context and so authentication,
        the body, the operation, the result and its response), without what a POST of one JSON document never
        needs: the websocket, GraphiQL and method branches, and the checks for subscription streams, incremental
        delivery and batches (this view refuses batches and multipart bodies while parsing, and a subscription is
        refused by the allowed operation types). The runtime-checked protocol strawberry tests each result against
        was one of the costliest steps of a compiled request."""
        root_value = None  # this view's root value type is None (`GraphQL[ContextT, None]`)
        request_adapter = self.request_adapter_class(request)
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        request_data = await self.parse_http_body(request_adapter)
        result = await self.execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )
        assert isinstance(result, ExecutionResult)  # one JSON document, executed: see above
        # (strawberry's `_handle_errors` hook is left out: it is empty, for a Sentry integration klubb does not use)
        response_data = await self.process_result(request=request, result=result)
        return self.create_response(response_data=response_data, sub_response=sub_response)

    async def render_graphql_ide(self, request: Request) -> Response:
        return Response(GRAPHIQL_PAGE, media_type="text/html")

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses what json.loads lets through or chokes on: invalid UTF-8, lone surrogates, NaN and
        # Infinity, and nesting past 1024 levels (json.loads recurses into a RecursionError)
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"the request body is not valid JSON: {error}") from error

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # A resolver that lost the database is a 503 for the whole request (ServiceUnavailableMiddleware), not an
        # error entry carrying the driver's text (or a masked "Unexpected error." the app cannot tell apart).
        raise_if_unavailable(result.errors)
        return await super().process_result(request, result)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method != "POST":  # GET: GraphiQL's page or a 405 (queries are POST only)
            return await super().parse_http_body(request)
        # The media type without its parameters (`; charset=utf-8`), as `parse_content_type` has it, without
        # building an email message to read it
        content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if content_type != "application/json":
            raise HTTPException(415, "send the request as `Content-Type: application/json`")
        return request_data(self.parse_json(await request.get_body()))

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: ContextT,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # A known query runs its compiled plan (same answer, a fraction of the CPU); anything else, strawberry.
        if self.compiled is not None and request_adapter.method == "POST":
            operation = self.compiled.get(request_data.query, request_data.operation_name, request_data.variables)
            if operation is not None:
                return await operation.execute(
                    context, request_data.variables, root_value, request_data.operation_name, request_data.extensions
                )
        # strawberry's own, without subscriptions over HTTP (its multipart protocol): they are websocket-only, and a
        # subscription run as a query answered a fault. POST runs queries and mutations, GET nothing (GraphiQL only).
        allowed = HTTP_OPERATIONS if request_adapter.method == "POST" else set()
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            if error.operation_type == OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400, "subscriptions are served over the websocket (graphql-transport-ws)"
                ) from error
            raise HTTPException(400, error.as_http_error_reason(request_adapter.method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error

    async def execute_operation(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: ContextT,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        result = await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
        # A document that does not parse is a malformed request: GraphQL's error body, coded, with HTTP 400
        errors = result.errors if isinstance(result, ExecutionResult) else None
        syntax_errors = [e for e in errors or () if isinstance(e, GraphQLSyntaxError)]
        if syntax_errors:
            for error in syntax_errors:
                error.extensions = {**(error.extensions or {}), "code": "GRAPHQL_PARSE_FAILED"}
            sub_response.status_code = 400
        return result


class MemberGraphQL(OrjsonGraphQL[Context]):
    """/graphql: the member app's endpoint. Only member-audience access tokens are accepted. Its websocket route
    serves `memberUpdated` over graphql-transport-ws only (`api.subscriptions`)."""

    graphql_transport_ws_handler_class = MemberSocket
    websocket_adapter_class = BoundedWebSocketAdapter  # type: ignore[assignment]

    def __init__(
        self,
        schema: BaseSchema,
        *,
        tokens: TokenService,
        sessions: SessionIssuer,
        graphiql: bool,
        max_body_bytes: int,
        compiled: CompiledDocuments | None = None,
        wallet: WalletLinks | None = None,
        google_wallet: GoogleWalletLinks | None = None,
        live: LiveUpdates | None = None,
        live_limits: LiveLimits | None = None,
        public_url: str = "",
        device_hash_key: bytes = b"",
    ) -> None:
        super().__init__(schema, graphiql=graphiql, max_body_bytes=max_body_bytes, compiled=compiled)
        self.public_url = public_url.rstrip("/")
        self.device_hash_key = device_hash_key
        self.tokens = tokens
        self.sessions = sessions
        self.wallet = wallet
        self.google_wallet = google_wallet
        self.live = live
        self.live_limits = live_limits or LiveLimits()
        self.connections = Connections()
        self.protocols = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)  # the legacy graphql-ws is refused (4406)
        self.connection_init_wait_timeout = init_timeout(self.live_limits)
        self.max_subscriptions_per_connection = MAX_OPERATIONS

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        authenticate(context, self.tokens)  # the member from connection_init's payload, or 4403
        return await super().on_ws_connect(context)

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        if isinstance(request, WebSocket):
            # A socket authenticates in connection_init (browsers cannot set headers on it), never by a header.
            return Context(request=request, response=response, member_id=None, sessions=self.sessions, live=self.live)
        now = clock.now()  # the request's one instant: its token is checked at it and its response reads as of it
        try:
            member_id = member_id_from_authorization(request.headers.get("authorization"), self.tokens, now)
        except AuthError as error:
            # A bad or expired token is an HTTP 401, so the app knows to refresh; expected, so one line.
            log.info("member request refused [%s]: %s", error.code, error.message)
            raise HTTPException(401, error.message) from error
        return Context(
            request=request,
            response=response,
            member_id=member_id,
            sessions=self.sessions,
            now=now,
            wallet=self.wallet,
            google_wallet=self.google_wallet,
            public_url=self.public_url,
            device_hash_key=self.device_hash_key,
        )
