"""The console's Starlette sub-application; the service mounts it at /admin (see `api.app`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from admin.session import SessionConfig, TokenCodec
from admin.views import Console


def create_console(
    tokens: TokenCodec,
    *,
    audience: str,
    token_error: type[Exception] | tuple[type[Exception], ...],
    secure_cookies: bool,
    middleware: Sequence[Middleware] = (),
) -> Starlette:
    """The console app. The API layer passes its token service, the staff audience and the error its `verify`
    raises (the console depends on `loyalty` only); `secure_cookies` in production; `middleware` runs inside the
    console's own error handling (a mounted Starlette app answers an exception with its own 500 first)."""
    console = Console(SessionConfig(tokens, audience, token_error, secure_cookies))
    member = "/members/{member_id:int}"
    back = "/members/{member_id}"
    return Starlette(
        routes=[
            Route("/", console.home),
            Route("/login", console.login_page, methods=["GET"]),
            Route("/login", console.login, methods=["POST"]),
            Route("/logout", console.staff_only(console.logout), methods=["POST"]),
            Route("/lookup", console.staff_only(console.lookup_page), methods=["GET"]),
            Route("/lookup", console.staff_only(console.lookup), methods=["POST"]),
            Route(member, console.staff_only(console.member_page), methods=["GET"]),
            Route(f"{member}/purchases", console.staff_only(console.purchase, back=back), methods=["POST"]),
            Route(f"{member}/vouchers", console.staff_only(console.voucher, back=back), methods=["POST"]),
            Route(f"{member}/offers/{{offer_id:int}}", console.staff_only(console.offer, back=back), methods=["POST"]),
            Route(f"{member}/refunds", console.staff_only(console.refund, back=back), methods=["POST"]),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        ],
        middleware=middleware,
    )
