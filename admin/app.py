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
    voucher = f"{member}/vouchers/{{voucher_id:int}}"
    offer = f"{member}/offers/{{offer_id:int}}"
    receipt = f"{member}/receipts/{{purchase_id:int}}"
    receipt_back = "/members/{member_id}/receipts/{purchase_id}"
    return Starlette(
        routes=[
            Route("/", console.home),
            Route("/login", console.login_page, methods=["GET"]),
            Route("/login", console.login, methods=["POST"]),
            Route("/logout", console.staff_only(console.logout), methods=["POST"]),
            Route("/lookup", console.staff_only(console.lookup_page), methods=["GET"]),
            Route("/lookup", console.staff_only(console.lookup), methods=["POST"]),
            Route(member, console.staff_only(console.member_page), methods=["GET"]),
            Route("/store", console.staff_only(console.choose_store), methods=["POST"]),
            Route(f"{member}/purchases", console.staff_only(console.purchase, back=back), methods=["POST"]),
            Route(f"{member}/purchases/preview", console.staff_only(console.preview, back=back), methods=["POST"]),
            Route(f"{member}/vouchers", console.staff_only(console.voucher, back=back), methods=["POST"]),
            Route(f"{member}/cashback", console.staff_only(console.cashback_spend, back=back), methods=["POST"]),
            Route(f"{voucher}", console.staff_only(console.voucher_tap, back=back), methods=["POST"]),
            Route(offer, console.staff_only(console.offer, back=back), methods=["POST"]),
            Route(f"{offer}/activate", console.staff_only(console.activate, back=back), methods=["POST"]),
            Route(receipt, console.staff_only(console.receipt_page, back=back), methods=["GET"]),
            Route(f"{receipt}/refunds", console.staff_only(console.refund, back=receipt_back), methods=["POST"]),
            Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
        ],
        middleware=middleware,
    )
