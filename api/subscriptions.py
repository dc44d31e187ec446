"""The member endpoint's websocket: `graphql-transport-ws` only, authenticated in `connection_init`, bounded.

Close codes (the protocol's own, plus klubb's two in the 4000 range):

- 4406: the client did not offer `graphql-transport-ws` (the legacy `graphql-ws` protocol is refused);
- 4408: no `connection_init` within `KLUBB_LIVE_INIT_SECONDS`;
- 4403: `connection_init` without `{"authorization": "Bearer <access token>"}`, with a bad or expired token, or the
  token expired while connected (reconnect with a fresh one);
- 4400: a message that is not a protocol message (not JSON, wrong shape, binary); 4401: `subscribe` before the ack;
- 1009: a message larger than `KLUBB_LIVE_MAX_MESSAGE_BYTES`;
- 4000: idle — no subscription, or nothing heard from the client (pings unanswered), for `KLUBB_LIVE_IDLE_SECONDS`;
- 4029: the member opened more than `KLUBB_LIVE_CONNECTIONS_PER_MEMBER` sockets on this process: the oldest is
  closed (not the new one), so an app that lost track of its socket always gets back in.

Only subscriptions run over the socket (queries and mutations are HTTP requests, with their own limits), at most
`MAX_OPERATIONS` at once per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, cast

import orjson
from graphql import GraphQLError
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from api.auth import AuthError
from api.auth.member_sign_in import member_access
from api.auth.tokens import TokenService
from api.live import LiveLimits
from loyalty import clock
from schema.context import Context

log = logging.getLogger("klubb.live")

CLOSE_IDLE = 4000
CLOSE_REPLACED = 4029
CLOSE_TOO_BIG = 1009
MAX_OPERATIONS = 5  # subscriptions at once on one socket (the app needs one)
MAX_ID_CHARS = 64


class Connections:
    """The open, acknowledged sockets of this process, per member, oldest first."""

    def __init__(self) -> None:
        self.by_member: dict[int, list[MemberSocket]] = {}

    def add(self, member_id: int, socket: MemberSocket, limit: int) -> list[MemberSocket]:
        """Register `socket`; the member's sockets beyond `limit` (oldest first), for the caller to close."""
        sockets = self.by_member.setdefault(member_id, [])
        sockets.append(socket)
        excess = len(sockets) - limit
        return sockets[:excess] if excess > 0 else []

    def remove(self, member_id: int, socket: MemberSocket) -> None:
        sockets = self.by_member.get(member_id)
        if sockets is not None and socket in sockets:
            sockets.remove(socket)
            if not sockets:
                del self.by_member[member_id]

    def count(self) -> int:
        return sum(len(sockets) for sockets in self.by_member.values())


class BoundedWebSocketAdapter(ASGIWebSocketAdapter):
    """strawberry's adapter, with a size limit: a larger message closes the socket (1009) before it is decoded."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        limit = cast("Any", self.view).live_limits.max_message_bytes
        try:
            while self.ws.application_state.name != "DISCONNECTED":
                text = await self.ws.receive_text()
                if len(text) > limit:  # characters ≤ bytes: a message within the limit is never refused
                    await self.close(CLOSE_TOO_BIG, f"message larger than {limit} bytes")
                    return
                try:
                    yield self.view.decode_json(text)
                except JSONDecodeError as error:
                    raise NonJsonMessageReceived from error
        except KeyError as error:  # a binary frame
            raise NonTextMessageReceived from error
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        # The protocol's messages are text frames (strawberry sends orjson's bytes as a binary frame, which
        # graphql-transport-ws clients refuse).
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error


class SubscriptionsOnly:
    """The schema as the socket may use it: `stream` for subscriptions only, and a refusal raised by a parsing or
    validation hook (trusted documents, the token and field limits) answered as the operation's error — strawberry's
    `execute` does so for HTTP, its `stream` lets it escape and the socket's task dies with a traceback."""

    def __init__(self, schema: BaseSchema) -> None:
        self.schema = schema

    async def stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return _refusals_as_errors(await self.schema.stream(*args, **kwargs))


async def _refusals_as_errors(source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    try:
        async with contextlib.aclosing(source):
            async for result in source:
                yield result
    except GraphQLError as error:
        log.info("subscription refused [%s]: %s", (error.extensions or {}).get("code", "-"), error.message)
        yield PreExecutionError(data=None, errors=[error])


def _valid(message: object) -> bool:
    """A protocol message strawberry can handle without tripping on its shape."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return False
    kind = message["type"]
    if kind in ("subscribe", "complete"):
        message_id = message.get("id")
        if not isinstance(message_id, str) or not 0 < len(message_id) <= MAX_ID_CHARS:
            return False
    if kind == "subscribe":
        payload = message.get("payload")
        return (
            isinstance(payload, dict)
            and isinstance(payload.get("query"), str)
            and isinstance(payload.get("variables"), dict | None)
            and isinstance(payload.get("operationName"), str | None)
            and isinstance(payload.get("extensions"), dict | None)
        )
    return True


class MemberSocket(BaseGraphQLTransportWSHandler[Context, None]):
    """One member's socket: strawberry's protocol handler plus the checks of the module's docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["schema"] = cast("BaseSchema", SubscriptionsOnly(kwargs["schema"]))
        super().__init__(*args, **kwargs)
        view = cast("Any", self.view)
        self.limits: LiveLimits = view.live_limits
        self.connections: Connections = view.connections
        self.member_id: int | None = None
        self.heard_at = self.idle_since = self.pinged_at = time.monotonic()

    async def handle(self) -> None:
        watchdog = asyncio.create_task(self.watch())
        try:
            await super().handle()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            if self.member_id is not None:
                self.connections.remove(self.member_id, self)

    async def handle_message(self, message: Message) -> None:
        self.heard_at = time.monotonic()
        if not _valid(message):
            await self.handle_invalid_message("not a graphql-transport-ws message")
            return
        await super().handle_message(message)

    async def handle_connection_init(self, message: Any) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self.member_id is None:
            self.member_id = self.context.member_id
            assert self.member_id is not None  # on_ws_connect refused otherwise
            self.idle_since = time.monotonic()
            for old in self.connections.add(self.member_id, self, self.limits.connections_per_member):
                self.connections.remove(self.member_id, old)
                await old.close(CLOSE_REPLACED, "too many connections for this member: the oldest is closed")

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # already gone
            await self.websocket.close(code=code, reason=reason)

    async def watch(self) -> None:
        """Pings, idle and token expiry, checked a few times per the shortest interval."""
        tick = min(self.limits.idle_seconds, self.limits.ping_seconds) / 4
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            if self.operations:
                self.idle_since = now
            if self.connection_acknowledged:
                expires_at = self.context.access_expires_at
                if expires_at is not None and clock.now() >= expires_at:
                    await self.close(4403, "the access token expired: reconnect with a fresh one")
                    return
                if now - self.idle_since > self.limits.idle_seconds:
                    await self.close(CLOSE_IDLE, "idle: no subscription")
                    return
            if now - self.heard_at > self.limits.idle_seconds:
                await self.close(CLOSE_IDLE, "idle: nothing heard from the client")
                return
            if now - self.pinged_at >= self.limits.ping_seconds:
                self.pinged_at = now
                try:
                    await self.send_message({"type": "ping"})
                except Exception:  # the socket is gone (disconnected, or closed meanwhile): the handler ends it
                    return


def authenticate(context: Context, tokens: TokenService) -> None:
    """`connection_init`'s payload → the context's member and token expiry, or ConnectionRejectionError (4403)."""
    value = (context.connection_params or {}).get("authorization")
    if not isinstance(value, str):
        log.info("websocket refused: no authorization in connection_init")
        raise ConnectionRejectionError()
    try:
        access = member_access(value, tokens, clock.now())
    except AuthError as error:
        log.info("websocket refused [%s]: %s", error.code, error.message)
        raise ConnectionRejectionError() from error
    if access is None:
        raise ConnectionRejectionError()
    context.member_id, context.access_expires_at = access


def init_timeout(limits: LiveLimits) -> timedelta:
    return timedelta(seconds=limits.init_seconds)
