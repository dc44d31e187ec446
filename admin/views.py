"""The console's pages and form handlers.

Every page needs a signed-in staff member and every POST a valid CSRF field. Checkout actions call the same loyalty
functions as the staff GraphQL API, with the same function-level authorization (cashier or above, in the store), so
they are audited the same way. Domain refusals come back as a flash message on the page (Post/Redirect/Get).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from admin import session
from admin.session import FlashKind, SessionConfig
from loyalty import clock
from loyalty.actors import Actor
from loyalty.checkout import checkout_summary
from loyalty.checks import MAX_MONEY
from loyalty.earning import LineInput
from loyalty.errors import DomainError, InvalidInput, MemberNotFound
from loyalty.keys import primary_keys
from loyalty.ledger import settle_member_if_due
from loyalty.lookup import find_member
from loyalty.members import get_member
from loyalty.models import Member, Offer, OfferBenefit, Program, StaffRole
from loyalty.offers import OfferNotFound, redeem_offer
from loyalty.program import cached_program
from loyalty.purchases import PurchaseRequest, record_purchase, refund_purchase
from loyalty.staff import authenticate_staff
from loyalty.vouchers import display_code, redeem_voucher

LINE_ROWS = 3  # receipt lines on the purchase form; blank rows are ignored
MAX_FIELD = 254
_MEMBER_IDS = primary_keys(Member)
_OFFER_IDS = primary_keys(Offer)

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

Handler = Callable[[Request, Actor], Awaitable[Response]]
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # member data must not stay in the tablet's cache
    # No scripts, no framing (one-tap buttons must not be clickjacked), forms only to us.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _money_text(amount: int, exponent: int, currency: str) -> str:
    return f"{Decimal(amount).scaleb(-exponent):.{exponent}f} {currency}"


def _money_filter(amount: int, program: Program) -> str:
    return _money_text(amount, program.currency_exponent, program.currency)


templates.env.filters["money"] = _money_filter
templates.env.filters["voucher_code"] = display_code


# --- form fields ----------------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""


def _required(form: FormData, name: str, label: str) -> str:
    value = _text(form, name)
    if not value:
        raise InvalidInput(f"{label} is required", field=name)
    return value


def _money(text: str, exponent: int, label: str) -> int:
    """Minor units from what a cashier types ("12.50", "12,50", "12")."""
    try:
        minor = Decimal(text.replace(",", ".")).scaleb(exponent)
    except ArithmeticError:  # not a number (InvalidOperation), or beyond Decimal's exponent range (Overflow)
        minor = Decimal("NaN")
    # Bounded before int(): "9e99999" must not become a hundred-thousand-digit number.
    if not minor.is_finite() or not 0 <= minor <= MAX_MONEY or minor != minor.to_integral_value():
        raise InvalidInput(f"{label} must be an amount like {_money_text(1250, exponent, '').strip()}")
    return int(minor)


def _quantity(text: str) -> int:
    if not text:
        return 1
    if not text.isascii() or not text.isdigit():
        raise InvalidInput("a quantity is a whole number", field="lines")
    return int(text)


def _check_path_ids(request: Request) -> None:
    """A member or offer id in the URL that its table cannot hold is a miss, before it reaches a query (on
    PostgreSQL it would be a database error)."""
    if request.path_params.get("member_id", 1) not in _MEMBER_IDS:
        raise MemberNotFound("no such member")
    if request.path_params.get("offer_id", 1) not in _OFFER_IDS:
        raise OfferNotFound("no such offer")


def _store(form: FormData, actor: Actor) -> str:
    """The store the action happens in, checked against the staff member's stores (cashier or above)."""
    store_code = _required(form, "store", "The store")
    actor.require(StaffRole.CASHIER, store_code)
    return store_code


# --- responses ------------------------------------------------------------------------------------


def _csrf_refused() -> Response:
    return PlainTextResponse("The form has expired: reload the page and try again.", status_code=403)


def _url(request: Request, path: str) -> str:
    # Relative to where the console is mounted (`/admin` in the service).
    return f"{request.scope.get('root_path', '')}{path}"


@dataclass(frozen=True)
class Console:
    config: SessionConfig

    def redirect(self, request: Request, path: str, flash: tuple[FlashKind, str] | None = None) -> RedirectResponse:
        response = RedirectResponse(_url(request, path), status_code=303)
        if flash is not None:
            session.set_flash(self.config, request, response, *flash)
        return response

    def render(self, request: Request, name: str, actor: Actor | None, **context: Any) -> Response:
        flash = session.read_flash(request)
        csrf = session.csrf_token(request) or session.new_csrf_token()  # the sign-in form of a fresh browser
        response = templates.TemplateResponse(
            request,
            name,
            {"base": _url(request, ""), "actor": actor, "flash": flash, "csrf": csrf, **context},
            headers=PAGE_HEADERS,
        )
        if csrf != session.csrf_token(request):
            session.set_csrf_cookie(self.config, request, response, csrf)
        session.clear_flash(self.config, request, response)
        return response

    def staff_only(self, handler: Handler, *, back: str = "/lookup") -> Callable[[Request], Awaitable[Response]]:
        """Sign-in, CSRF (on POST) and the cashier role before `handler`; domain refusals become a flash message."""

        async def view(request: Request) -> Response:
            current = await session.current_session(self.config, request)
            if current is None:
                return self.redirect(request, "/login")
            if request.method == "POST" and not await session.csrf_ok(request):
                return _csrf_refused()
            actor = current.actor
            try:
                actor.require(StaffRole.CASHIER)
                _check_path_ids(request)
                response = await handler(request, actor)
            except DomainError as error:
                target = back.format(**request.path_params)
                response = self.redirect(request, target, ("error", error.message))
            session.renew_if_ageing(self.config, request, response, current)
            return response

        return view

    # --- sign in and out --------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        signed_in = await session.current_session(self.config, request) is not None
        return self.redirect(request, "/lookup" if signed_in else "/login")

    async def login_page(self, request: Request) -> Response:
        if await session.current_session(self.config, request) is not None:
            return self.redirect(request, "/lookup")
        return self.render(request, "login.html", None)

    async def login(self, request: Request) -> Response:
        if not await session.csrf_ok(request):
            return _csrf_refused()
        form = await request.form()
        try:
            actor = await authenticate_staff(_text(form, "email"), str(form.get("password") or ""))
        except DomainError as error:
            return self.redirect(request, "/login", ("error", error.message))
        response = self.redirect(request, "/lookup", ("ok", f"Signed in as {actor.name}."))
        session.start_session(self.config, request, response, actor)
        return response

    async def logout(self, request: Request, actor: Actor) -> Response:
        response = self.redirect(request, "/login", ("ok", "Signed out."))
        session.end_session(self.config, request, response)
        return response

    # --- finding the member -----------------------------------------------------------------------

    async def lookup_page(self, request: Request, actor: Actor) -> Response:
        return self.render(request, "lookup.html", actor)

    async def lookup(self, request: Request, actor: Actor) -> Response:
        # A POST: a scanned card code is single-use, so looking it up changes state (and stays out of URLs and logs).
        query = _text(await request.form(), "query")
        member = await find_member(query, await cached_program(), clock.now()) if query else None
        if member is None:
            return self.redirect(
                request,
                "/lookup",
                ("error", "No member found. Card codes work once and only for a minute: ask for a fresh one."),
            )
        return self.redirect(request, f"/members/{member.id}")

    async def member_page(self, request: Request, actor: Actor) -> Response:
        at = clock.now()  # the page shows the member as of one instant
        member = await settle_member_if_due(await get_member(request.path_params["member_id"]), at)
        summary = await checkout_summary(member, await cached_program(), at)
        return self.render(
            request,
            "member.html",
            actor,
            summary=summary,
            line_rows=range(LINE_ROWS),
            # A fresh key per rendered offer form: a double tap redeems once.
            offer_keys={item.offer.id: uuid.uuid4().hex for item in summary.offers},
            # A suggestion the cashier may overwrite with the till's number; unique, so a busy second cannot collide.
            receipt_id=f"R-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
        )

    # --- checkout actions -------------------------------------------------------------------------

    async def purchase(self, request: Request, actor: Actor) -> Response:
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        store_code = _store(form, actor)
        lines = []
        for row in range(LINE_ROWS):
            sku, amount = _text(form, f"sku{row}"), _text(form, f"amount{row}")
            if not sku and not amount:
                continue
            lines.append(
                LineInput(
                    sku=sku,
                    category=_text(form, f"category{row}"),
                    quantity=_quantity(_text(form, f"quantity{row}")),
                    amount=_money(amount, program.currency_exponent, "A line's amount"),
                )
            )
        receipt_id = _required(form, "receipt_id", "The receipt id")
        recorded = await record_purchase(
            actor,
            PurchaseRequest(
                member_id=member_id,
                store_code=store_code,
                receipt_id=receipt_id,
                occurred_at=clock.now(),
                currency=program.currency,
                total=_money(_required(form, "total", "The total"), program.currency_exponent, "The total"),
                lines=tuple(lines),
            ),
        )
        message = f"Receipt {receipt_id} recorded: {recorded.points} points, pending until the return window ends."
        return self.redirect(request, f"/members/{member_id}", ("ok", message))

    async def voucher(self, request: Request, actor: Actor) -> Response:
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        store_code = _store(form, actor)
        code = _required(form, "code", "The voucher code")
        voucher = await redeem_voucher(actor, code=code, store_code=store_code, member_id=member_id)
        message = f"Voucher {display_code(voucher.code)} redeemed: apply it to the basket."
        return self.redirect(request, f"/members/{member_id}", ("ok", message))

    async def offer(self, request: Request, actor: Actor) -> Response:
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        total = _text(form, "purchase_total")
        result = await redeem_offer(
            actor,
            member_id=member_id,
            offer_id=request.path_params["offer_id"],
            store_code=_store(form, actor),
            purchase_total=_money(total, program.currency_exponent, "The purchase total") if total else None,
            idempotency_key=_required(form, "idempotency_key", "The form key"),
        )
        if result.benefit == OfferBenefit.BONUS_POINTS:
            applied = f"{result.points_credited} bonus points credited"
        elif result.free_item_sku is not None:
            applied = f"give item {result.free_item_sku} free"
        elif result.discount is not None:
            applied = f"take {_money_text(result.discount, program.currency_exponent, program.currency)} off"
        else:
            applied = f"take {result.percent_off}% off"
        return self.redirect(request, f"/members/{member_id}", ("ok", f"Offer redeemed: {applied}."))

    async def refund(self, request: Request, actor: Actor) -> Response:
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        store_code = _store(form, actor)
        receipt_id = _required(form, "receipt_id", "The receipt id")
        result = await refund_purchase(
            actor,
            store_code=store_code,
            receipt_id=receipt_id,
            refund_id=_required(form, "refund_id", "The refund id"),
            amount=_money(_required(form, "amount", "The amount"), program.currency_exponent, "The amount"),
            member_id=member_id,  # the console only returns receipts of the member on screen
        )
        message = f"Return processed: {result.points_reversed} points taken back"
        if result.unrecovered:
            message += f" ({result.unrecovered} already spent, recorded as unrecovered)"
        return self.redirect(request, f"/members/{member_id}", ("ok", message + "."))
