"""The console's pages and form handlers.

Every page needs a signed-in staff member and every POST a valid CSRF field. Checkout actions call the same loyalty
functions as the staff GraphQL API, with the same function-level authorization (cashier or above, in the store), so
they are audited the same way. Domain refusals come back as a flash message on the page (Post/Redirect/Get).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from admin import session
from admin.session import FlashKind, SessionConfig
from loyalty import clock
from loyalty.actors import Actor
from loyalty.cashback import spend_cashback
from loyalty.checkout import CheckoutVoucher, checkout_summary, describe_vouchers, member_receipt
from loyalty.checks import check_store_code
from loyalty.earning import LineInput
from loyalty.errors import DomainError, InvalidInput, MemberNotFound, MoneyText, PurchaseNotFound
from loyalty.keys import primary_keys
from loyalty.ledger import settle_member_if_due
from loyalty.lookup import find_member
from loyalty.members import get_member
from loyalty.models import Member, Offer, OfferBenefit, Program, Purchase, RewardKind, StaffRole, TierMetric, Voucher
from loyalty.money import format_money, parse_money
from loyalty.offers import OfferNotFound, activate_offer, redeem_offer
from loyalty.program import cached_program
from loyalty.purchases import LineRefund, PurchaseRequest, preview_purchase, record_purchase, refund_purchase
from loyalty.staff import authenticate_staff
from loyalty.vouchers import VoucherNotFound, display_code, redeem_member_voucher, redeem_voucher
from loyalty.wallet import card_in_wallet

LINE_ROWS = 4  # receipt lines on the purchase form; blank rows are ignored
MAX_FIELD = 254
_MEMBER_IDS = primary_keys(Member)
_OFFER_IDS = primary_keys(Offer)
_VOUCHER_IDS = primary_keys(Voucher)
_PURCHASE_IDS = primary_keys(Purchase)
# Where the store picker may send the cashier back to (never an address of someone else's choosing).
_BACK = re.compile(r"/lookup|/members/[0-9]{1,10}(/receipts/[0-9]{1,10})?")

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

Handler = Callable[[Request, Actor], Awaitable[Response]]
PAGE_HEADERS = {
    "Cache-Control": "no-store",  # member data must not stay in the tablet's cache
    # Scripts and requests only from us (console.js), no framing (one-tap buttons must not be clickjacked), forms
    # only to us.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _money_filter(amount: int, program: Program) -> str:
    """The program's money as the cashier reads it ("€30.00"): the one formatter, `loyalty.money`."""
    return format_money(amount, program.currency, exponent=program.currency_exponent)


def _words(program: Program) -> MoneyText:
    return lambda amount: _money_filter(amount, program)


def _tier_value(value: int, program: Program) -> str:
    """A qualifying value or threshold: points, or money when tiers qualify on spend."""
    return _money_filter(value, program) if program.tier_metric == TierMetric.SPEND else f"{value} points"


def _local_time(at: datetime, program: Program) -> str:
    return at.astimezone(ZoneInfo(program.timezone)).strftime("%d %b %Y %H:%M")


templates.env.filters["money"] = _money_filter
templates.env.filters["tier_value"] = _tier_value
templates.env.filters["local_time"] = _local_time
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


def _quantity(text: str, default: int = 1) -> int:
    if not text:
        return default
    # Bounded before int(): a quantity is a 32-bit column.
    if not text.isascii() or not text.isdigit() or len(text) > 9:
        raise InvalidInput("a quantity is a whole number", field="lines")
    return int(text)


def _check_path_ids(request: Request) -> None:
    """An id in the URL that its table cannot hold is a miss, before it reaches a query (on PostgreSQL it would be
    a database error)."""
    if request.path_params.get("member_id", 1) not in _MEMBER_IDS:
        raise MemberNotFound("no such member")
    if request.path_params.get("offer_id", 1) not in _OFFER_IDS:
        raise OfferNotFound("no such offer")
    if request.path_params.get("voucher_id", 1) not in _VOUCHER_IDS:
        raise VoucherNotFound("no such voucher")
    if request.path_params.get("purchase_id", 1) not in _PURCHASE_IDS:
        raise PurchaseNotFound("this member has no such receipt")


def till_store(request: Request, actor: Actor) -> str | None:
    """The store this till works in: a one-store cashier's store, else the one picked for this session (if the
    staff member may still act there), else None: the console asks for it."""
    if len(actor.store_codes) == 1:
        return actor.store_codes[0]
    chosen = session.chosen_store(request)
    return chosen if chosen is not None and actor.may_act_in(chosen) else None


def _store(request: Request, actor: Actor) -> str:
    """The store the action happens in, checked against the staff member's stores (cashier or above)."""
    store_code = till_store(request, actor)
    if store_code is None:
        raise InvalidInput("Pick the store you are working in first (at the top of the page).", field="store")
    actor.require(StaffRole.CASHIER, store_code)
    return store_code


def _what_to_do(voucher: CheckoutVoucher, words: MoneyText) -> str:
    """What the cashier hands over or takes off for a redeemed voucher, in their words."""
    name = voucher.name
    match voucher.kind:
        case RewardKind.FREE_PRODUCT:
            return f"{name}: hand over the item" + (f" (SKU {voucher.sku})" if voucher.sku else "")
        case RewardKind.AMOUNT_OFF:
            return f"{name}: take {words(voucher.value)} off the basket"
        case RewardKind.PERCENT_OFF:
            return f"{name}: take {voucher.value}% off the basket"
        case RewardKind.CASHBACK:
            return f"{name}: give the member {words(voucher.value)} back"
        case RewardKind.DONATION:
            return f"{name}: {words(voucher.value)} is donated, nothing to take off"
        case RewardKind.EXPERIENCE:
            return f"{name}: nothing to take off the basket, the member is expected"
        case _:
            return f"{name}: apply it to the basket"


def _refund_id(at: datetime) -> str:
    # A suggestion the cashier may overwrite with the till's own; unique, so a busy second cannot collide.
    return f"RET-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


# --- responses ------------------------------------------------------------------------------------


def _csrf_refused() -> Response:
    return PlainTextResponse("The form has expired: reload the page and try again.", status_code=403)


def _url(request: Request, path: str) -> str:
    # Relative to where the console is mounted (`/admin` in the service).
    return f"{request.scope.get('root_path', '')}{path}"


async def _in_words(error: DomainError) -> str:
    """The refusal as the cashier reads it, amounts in the program's money."""
    try:
        program = await cached_program()
    except DomainError:  # no program yet: the message as it is
        return error.message
    return error.describe(_words(program))


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
            {
                "base": _url(request, ""),
                "path": request.url.path.removeprefix(request.scope.get("root_path", "")),
                "actor": actor,
                "till_store": till_store(request, actor) if actor is not None else None,
                "flash": flash,
                "csrf": csrf,
                **context,
            },
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
                response = self.redirect(request, target, ("error", await _in_words(error)))
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

    async def choose_store(self, request: Request, actor: Actor) -> Response:
        """Pick the store this till works in, once per session (changeable): every action then happens there."""
        form = await request.form()
        back = _text(form, "back")
        back = back if _BACK.fullmatch(back) else "/lookup"
        store_code = check_store_code(_required(form, "store", "The store"), "store")
        actor.require(StaffRole.CASHIER, store_code)
        response = self.redirect(request, back, ("ok", f"Working in store {store_code}."))
        session.set_store(self.config, request, response, store_code)
        return response

    async def member_page(self, request: Request, actor: Actor) -> Response:
        at = clock.now()  # the page shows the member as of one instant
        member = await settle_member_if_due(await get_member(request.path_params["member_id"]), at)
        summary = await checkout_summary(member, await cached_program(), at)
        return self.render(
            request,
            "member.html",
            actor,
            summary=summary,
            in_wallet=await card_in_wallet(member.id),
            line_rows=range(LINE_ROWS),
            # A fresh key per rendered one-tap form: a double tap does one thing.
            offer_keys={item.offer.id: uuid.uuid4().hex for item in summary.offers},
            voucher_keys={item.voucher.id: uuid.uuid4().hex for item in summary.vouchers},
            cashback_key=uuid.uuid4().hex,
            # A suggestion the cashier may overwrite with the till's number; unique, so a busy second cannot collide.
            receipt_id=f"R-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
        )

    async def receipt_page(self, request: Request, actor: Actor) -> Response:
        """A return starts here: the receipt's lines, what is left of each, by lines or by amount."""
        member_id: int = request.path_params["member_id"]
        member = await get_member(member_id)
        receipt = await member_receipt(member_id, request.path_params["purchase_id"])
        return self.render(
            request,
            "receipt.html",
            actor,
            member=member,
            receipt=receipt,
            program=await cached_program(),
            refund_id=_refund_id(clock.now()),
        )

    # --- checkout actions -------------------------------------------------------------------------

    async def _purchase_request(self, request: Request, actor: Actor, form: FormData) -> PurchaseRequest:
        program = await cached_program()
        store_code = _store(request, actor)
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
                    amount=parse_money(amount, program.currency_exponent, "A line's amount"),
                )
            )
        return PurchaseRequest(
            member_id=request.path_params["member_id"],
            store_code=store_code,
            receipt_id=_required(form, "receipt_id", "The receipt id"),
            occurred_at=clock.now(),
            currency=program.currency,
            total=parse_money(_required(form, "total", "The total"), program.currency_exponent, "The total"),
            lines=tuple(lines),
        )

    async def purchase(self, request: Request, actor: Actor) -> Response:
        purchase = await self._purchase_request(request, actor, await request.form())
        recorded = await record_purchase(actor, purchase)
        message = (
            f"Receipt {purchase.receipt_id} recorded: {recorded.points} points, pending until the return window ends."
        )
        return self.redirect(request, f"/members/{purchase.member_id}", ("ok", message))

    async def preview(self, request: Request, actor: Actor) -> Response:
        """What the purchase form will earn, for the page's script to show before the cashier records it (JSON)."""
        try:
            breakdown = await preview_purchase(await self._purchase_request(request, actor, await request.form()))
        except DomainError as error:
            return JSONResponse({"ok": False, "text": await _in_words(error)}, headers=PAGE_HEADERS)
        extras = [*breakdown.campaigns, *breakdown.bonus_rules]
        text = f"This purchase earns {breakdown.points} points" + (f" ({', '.join(extras)})" if extras else "") + "."
        return JSONResponse({"ok": True, "points": breakdown.points, "text": text}, headers=PAGE_HEADERS)

    async def _redeemed(self, request: Request, voucher_id: int) -> Response:
        voucher = await Voucher.get(id=voucher_id)
        described = (await describe_vouchers([voucher]))[0]
        what = _what_to_do(described, _words(await cached_program()))
        message = f"Voucher {display_code(voucher.code)} redeemed. {what}."
        return self.redirect(request, f"/members/{voucher.member_id}", ("ok", message))

    async def voucher(self, request: Request, actor: Actor) -> Response:
        """A typed or scanned voucher code."""
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        store_code = _store(request, actor)
        code = _required(form, "code", "The voucher code")
        voucher = await redeem_voucher(actor, code=code, store_code=store_code, member_id=member_id)
        return await self._redeemed(request, voucher.id)

    async def voucher_tap(self, request: Request, actor: Actor) -> Response:
        """The one-tap button of a listed voucher."""
        form = await request.form()
        redemption = await redeem_member_voucher(
            actor,
            member_id=request.path_params["member_id"],
            voucher_id=request.path_params["voucher_id"],
            store_code=_store(request, actor),
            idempotency_key=_required(form, "idempotency_key", "The form key"),
        )
        return await self._redeemed(request, redemption.voucher_id)

    async def offer(self, request: Request, actor: Actor) -> Response:
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        total = _text(form, "purchase_total")
        result = await redeem_offer(
            actor,
            member_id=member_id,
            offer_id=request.path_params["offer_id"],
            store_code=_store(request, actor),
            purchase_total=parse_money(total, program.currency_exponent, "The purchase total") if total else None,
            idempotency_key=_required(form, "idempotency_key", "The form key"),
        )
        if result.benefit == OfferBenefit.BONUS_POINTS:
            applied = f"{result.points_credited} bonus points credited"
        elif result.free_item_sku is not None:
            applied = f"hand over the item (SKU {result.free_item_sku}) free"
        elif result.discount is not None:
            applied = f"take {_money_filter(result.discount, program)} off the basket"
        else:
            applied = f"take {result.percent_off}% off the basket"
        return self.redirect(request, f"/members/{member_id}", ("ok", f"Offer redeemed: {applied}."))

    async def activate(self, request: Request, actor: Actor) -> Response:
        """Activate an offer for the member at the till (as the app's button does); activating twice is a no-op."""
        member_id: int = request.path_params["member_id"]
        item = await activate_offer(member_id, request.path_params["offer_id"])
        return self.redirect(request, f"/members/{member_id}", ("ok", f"Offer activated: {item.offer.name}."))

    async def refund(self, request: Request, actor: Actor) -> Response:
        """A return from a receipt of the member on screen: by lines (quantities per line) or by amount."""
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        receipt = await member_receipt(member_id, request.path_params["purchase_id"])
        refund_id = _required(form, "refund_id", "The refund id")
        # Quantities per line, or an amount; whichever button was pressed (Enter in a field presses the first).
        lines: list[LineRefund] | None = [
            LineRefund(line.line_no, quantity)
            for line in receipt.lines
            if (quantity := _quantity(_text(form, f"return{line.line_no}"), default=0))
        ]
        amount_text = _text(form, "amount")
        amount: int | None = None
        if lines and amount_text:
            raise InvalidInput("Return items or refund an amount, not both.", field="amount")
        if amount_text:
            amount, lines = parse_money(amount_text, program.currency_exponent, "The amount"), None
        elif not lines:
            raise InvalidInput("Enter how many of which items come back, or an amount to refund.", field="lines")
        result = await refund_purchase(
            actor,
            store_code=receipt.purchase.store_code,  # a receipt is returned against the store that recorded it
            receipt_id=receipt.purchase.receipt_id,
            refund_id=refund_id,
            amount=amount,
            lines=lines,
            member_id=member_id,  # the console only returns receipts of the member on screen
        )
        message = (
            f"Return {refund_id} processed: {_money_filter(result.amount, program)} refunded, "
            f"{result.points_reversed} points taken back"
        )
        if result.unrecovered:
            message += f" ({result.unrecovered} already spent, recorded as unrecovered)"
        if result.cashback_returned:
            message += f"; {_money_filter(result.cashback_returned, program)} of cashback back to the member"
        return self.redirect(request, f"/members/{member_id}", ("ok", message + "."))

    async def cashback_spend(self, request: Request, actor: Actor) -> Response:
        """Pay part of a receipt with the member's cashback (the form's key: a double tap spends once)."""
        member_id: int = request.path_params["member_id"]
        form = await request.form()
        program = await cached_program()
        spent = await spend_cashback(
            actor,
            member_id,
            store_code=_store(request, actor),
            receipt_id=_required(form, "receipt_id", "The receipt id"),
            amount=parse_money(_required(form, "amount", "The amount"), program.currency_exponent, "The amount"),
            idempotency_key=_required(form, "idempotency_key", "The form key"),
        )
        message = (
            f"{_money_filter(spent.spent, program)} of cashback paid on receipt {spent.receipt_id}: take it off the "
            f"basket. {_money_filter(spent.balance, program)} left."
        )
        return self.redirect(request, f"/members/{member_id}", ("ok", message))
