"""While the database is unreachable, every endpoint answers 503 with `Retry-After` and a coded error, never a 500
and never the driver's text (which names hosts, ports and SQL).

Two places see such a failure: an exception that leaves a view (the staff endpoint's context reads the actor, the
console's pages read members) reaches `ServiceUnavailableMiddleware`; a resolver's exception is caught by GraphQL
and becomes an error in the result, which the GraphQL views turn into `DatabaseUnavailable` (`raise_if_unavailable`)
so the middleware answers the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import orjson
from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loyalty.db import database_unavailable

RETRY_AFTER_SECONDS = 5
CODE = "SERVICE_UNAVAILABLE"
MESSAGE = "the service is temporarily unavailable: retry in a few seconds"
log = logging.getLogger("klubb.unavailable")


class DatabaseUnavailable(Exception):
    """The request failed because the database could not be reached; the middleware answers 503."""


def raise_if_unavailable(errors: Iterable[GraphQLError] | None) -> None:
    """Raise `DatabaseUnavailable` if any of a GraphQL result's errors comes from an unreachable database."""
    for error in errors or ():
        if error.original_error is not None and database_unavailable(error.original_error):
            raise DatabaseUnavailable() from error.original_error


def unavailable_body(*, html: bool) -> tuple[bytes, bytes]:
    """The 503's body and content type: GraphQL's error shape for the API, a short page for the console."""
    if html:
        page = f"<!doctype html><title>Unavailable</title><p>{MESSAGE[0].upper()}{MESSAGE[1:]}.</p>"
        return page.encode(), b"text/html; charset=utf-8"
    body = {"errors": [{"message": MESSAGE, "extensions": {"code": CODE, "retryable": True}}]}
    return orjson.dumps(body), b"application/json"


class ServiceUnavailableMiddleware:
    """ASGI middleware: an exception whose cause is an unreachable database becomes a 503 (if nothing was sent yet),
    logged as one warning line; any other exception passes on unchanged (a 500 with its traceback). `html`: answer
    with a page (the console) rather than GraphQL's JSON error shape."""

    def __init__(self, app: ASGIApp, *, html: bool = False) -> None:
        self.app = app
        self.html = html

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started or not (isinstance(exc, DatabaseUnavailable) or database_unavailable(exc)):
                raise
            cause = exc.__cause__ if isinstance(exc, DatabaseUnavailable) and exc.__cause__ else exc
            log.warning(
                "database unavailable: %s %s answered 503 (%s: %s)",
                scope.get("method", ""),
                scope.get("path", ""),
                type(cause).__name__,
                cause,
            )
            body, content_type = unavailable_body(html=self.html)
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", content_type),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
