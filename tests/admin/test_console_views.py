"""The staff console over HTTP (httpx + ASGI): sign-in, CSRF, authorization, and the checkout actions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from tortoise.transactions import in_transaction

from api.app import create_app
from api.settings import Environment
from loyalty.actors import Actor
from loyalty.card import card_code
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import (
    AuditLog,
    EntryKind,
    Member,
    Offer,
    OfferBenefit,
    Program,
    Purchase,
    Reward,
    RewardKind,
    StaffRole,
    StaffUser,
    Voucher,
)
from loyalty.staff import create_staff, deactivate_staff
from loyalty.vouchers import display_code, issue_voucher
from tests.conftest import START, app_settings
from tests.loyalty import ledger_helpers
from tests.schema.staff.conftest import run_staff

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
async def http(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(app_settings(db, tmp_path)))  # the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def cass(program: Program) -> StaffUser:
    return await create_staff("cass@example.com", PASSWORD, "cashier", ["S1"], "Cass")


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("anna", email="anna@example.com", display_name="Anna Andersson")
    await ledger_helpers.credit_points(member.id, 300, kind=EntryKind.ADJUSTMENT, idempotency_key="seed")
    return await Member.get(id=member.id)


def _csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


async def _sign_in(
    http: httpx.AsyncClient, email: str = "cass@example.com", password: str = PASSWORD
) -> httpx.Response:
    page = await http.get("/admin/login")
    return await http.post("/admin/login", data={"email": email, "password": password, "csrf": _csrf(page)})


async def _post(http: httpx.AsyncClient, page_path: str, action: str, data: dict[str, str]) -> httpx.Response:
    """Submit a form the way the browser does: with the CSRF field of the page it is on."""
    page = await http.get(page_path)
    return await http.post(action, data={**data, "csrf": _csrf(page)})


def _purchase(store: str = "S1", receipt: str = "R-1", amount: str = "42.00") -> dict[str, str]:
    return {"store": store, "receipt_id": receipt, "total": amount, "sku0": "COFFEE", "category0": "drinks",
            "quantity0": "2", "amount0": amount}  # fmt: skip


def _set_cookies(response: httpx.Response) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


# --- sign-in ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/"),
        ("GET", "/admin/lookup"),
        ("POST", "/admin/lookup"),
        ("GET", "/admin/members/1"),
        ("POST", "/admin/members/1/purchases"),
        ("POST", "/admin/members/1/vouchers"),
        ("POST", "/admin/members/1/offers/1"),
        ("POST", "/admin/members/1/refunds"),
        ("POST", "/admin/logout"),
    ],
)
async def test_every_page_needs_a_signed_in_staff_member(
    http: httpx.AsyncClient, anna: Member, method: str, path: str
) -> None:
    response = await http.request(method, path)

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


async def test_the_console_root_leads_to_the_sign_in_form(http: httpx.AsyncClient, cass: StaffUser) -> None:
    response = await http.get("/admin", follow_redirects=True)

    assert (response.status_code, response.url.path) == (200, "/admin/login")
    assert 'name="password"' in response.text


async def test_sign_in_sets_strict_http_only_cookies_and_shows_the_lookup(
    http: httpx.AsyncClient, cass: StaffUser
) -> None:
    response = await _sign_in(http, "Cass@Example.com")

    assert (response.status_code, response.headers["location"]) == (303, "/admin/lookup")
    cookies = _set_cookies(response)
    for name in ("klubb_console", "klubb_console_csrf"):
        attributes = cookies[name].lower()
        assert "httponly" in attributes
        assert "samesite=strict" in attributes
        assert "path=/admin" in attributes
        assert "secure" not in attributes  # not in production: the test server is plain http
    lookup = await http.get("/admin/lookup")
    assert lookup.status_code == 200
    assert "Signed in as Cass." in lookup.text
    assert "Cass · cashier · store S1" in lookup.text
    assert lookup.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in lookup.headers["content-security-policy"]


async def test_cookies_are_secure_in_production(
    db: str, tmp_path: Path, cass: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)  # production refuses to start with it
    app = create_app(app_settings(db, tmp_path, Environment.PRODUCTION))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://testserver") as client:
        response = await _sign_in(client)

    assert response.status_code == 303
    assert all("secure" in header.lower() for header in _set_cookies(response).values())


async def test_a_wrong_password_is_refused_with_a_message(http: httpx.AsyncClient, cass: StaffUser) -> None:
    response = await _sign_in(http, password="not the password")

    assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    assert "klubb_console" not in http.cookies
    page = await http.get("/admin/login")
    assert "wrong email or password" in page.text
    assert (await http.get("/admin/lookup")).headers["location"] == "/admin/login"


async def test_sign_out_ends_the_session(http: httpx.AsyncClient, cass: StaffUser) -> None:
    await _sign_in(http)

    response = await _post(http, "/admin/lookup", "/admin/logout", {})

    assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    assert "Signed out." in (await http.get("/admin/login")).text
    assert (await http.get("/admin/lookup")).headers["location"] == "/admin/login"


async def test_a_deactivated_account_is_signed_out_at_once(http: httpx.AsyncClient, cass: StaffUser) -> None:
    await _sign_in(http)
    assert (await http.get("/admin/lookup")).status_code == 200

    await deactivate_staff(cass.id)

    assert (await http.get("/admin/lookup")).headers["location"] == "/admin/login"


async def test_the_session_is_renewed_in_the_second_half_of_its_life(
    http: httpx.AsyncClient, cass: StaffUser, clock: FrozenClock
) -> None:
    await _sign_in(http)
    first = http.cookies["klubb_console"]

    clock.advance(timedelta(seconds=600))  # of 900
    assert (await http.get("/admin/lookup")).status_code == 200
    clock.advance(timedelta(seconds=600))  # past the first token's expiry

    assert http.cookies["klubb_console"] != first
    assert (await http.get("/admin/lookup")).status_code == 200


# --- CSRF ------------------------------------------------------------------------------------------


async def test_a_sign_in_without_the_csrf_field_is_forbidden(http: httpx.AsyncClient, cass: StaffUser) -> None:
    await http.get("/admin/login")

    response = await http.post("/admin/login", data={"email": "cass@example.com", "password": PASSWORD})

    assert response.status_code == 403
    assert "klubb_console" not in http.cookies


@pytest.mark.parametrize("csrf", [None, "", "forged", "förfalskad"])
async def test_a_form_without_the_right_csrf_token_is_forbidden_and_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, csrf: str | None
) -> None:
    await _sign_in(http)
    data = _purchase() if csrf is None else {**_purchase(), "csrf": csrf}

    response = await http.post(f"/admin/members/{anna.id}/purchases", data=data)

    assert response.status_code == 403
    assert await Purchase.all().count() == 0


# --- lookup ----------------------------------------------------------------------------------------


async def test_lookup_by_card_code_shows_the_summary_and_the_code_works_once(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, program: Program, clock: FrozenClock
) -> None:
    await _sign_in(http)
    barcode = card_code(anna, clock.now(), program.card_code_seconds).barcode_value

    found = await _post(http, "/admin/lookup", "/admin/lookup", {"query": barcode})
    page = await http.get(found.headers["location"])
    again = await _post(http, "/admin/lookup", "/admin/lookup", {"query": barcode})

    assert found.headers["location"] == f"/admin/members/{anna.id}"
    assert "Anna Andersson" in page.text
    assert anna.member_number in page.text
    assert re.search(r'id="member-tier">Member<', page.text)
    assert re.search(r'id="points-available">300<', page.text)
    assert "500 towards <strong>Silver</strong>" in page.text
    assert again.headers["location"] == "/admin/lookup"
    assert "No member found" in (await http.get("/admin/lookup")).text


async def test_lookup_by_email_and_an_unknown_member(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    await _sign_in(http)

    by_email = await _post(http, "/admin/lookup", "/admin/lookup", {"query": "anna@example.com"})
    unknown = await http.get("/admin/members/999999")

    assert by_email.headers["location"] == f"/admin/members/{anna.id}"
    assert unknown.headers["location"] == "/admin/lookup"
    assert "no such member" in (await http.get("/admin/lookup")).text


async def test_an_id_no_row_can_have_is_no_such_member_or_offer(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given ids above the 32-bit primary-key columns (a database error on PostgreSQL if they reached a query)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    # When the cashier opens such a member, and redeems such an offer for Anna
    missing = await http.get(f"/admin/members/{2**31}")
    missing_page = await http.get("/admin/lookup")
    offer = await _post(http, member_page, f"{member_page}/offers/{2**31}", {"store": "S1", "idempotency_key": "k"})

    # Then they are misses like unknown ids, and nothing was written
    assert missing.headers["location"] == "/admin/lookup"
    assert "no such member" in missing_page.text
    assert offer.headers["location"] == member_page
    assert "no such offer" in (await http.get(member_page)).text
    assert await AuditLog.all().count() == 0


# --- checkout actions ------------------------------------------------------------------------------


async def test_a_purchase_is_recorded_pending_and_audited(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(http, member_page, f"{member_page}/purchases", _purchase(amount="42.50"))

    assert response.headers["location"] == member_page
    purchase = await Purchase.get(store_code="S1", receipt_id="R-1")
    assert (purchase.member_id, purchase.total, purchase.points_earned) == (anna.id, 4250, 42)
    member = await Member.get(id=anna.id)
    assert (member.points_available, member.points_pending) == (300, 42)
    audit = await AuditLog.get(action="purchase.record")
    assert (audit.actor_type, audit.actor_id, audit.store_code, audit.member_id) == ("staff", cass.id, "S1", anna.id)
    page = await http.get(member_page)
    assert "Receipt R-1 recorded: 42 points" in page.text
    assert re.search(r'id="points-pending">42<', page.text)


async def test_a_cashier_of_another_store_is_refused(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(http, member_page, f"{member_page}/purchases", _purchase(store="S2"))

    assert response.headers["location"] == member_page
    assert await Purchase.all().count() == 0
    assert "not allowed in store S2" in (await http.get(member_page)).text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total": "40.00"}, "the lines that are not voided add up to 4200, not 4000"),
        ({"total": "12.345"}, "The total must be an amount like 12.50"),
        ({"total": "9e99999"}, "The total must be an amount like 12.50"),
        ({"total": "9e999999"}, "The total must be an amount like 12.50"),
        ({"amount0": "-1"}, "A line&#39;s amount must be an amount like 12.50"),
        ({"quantity0": "two"}, "a quantity is a whole number"),
        ({"receipt_id": ""}, "The receipt id is required"),
    ],
)
async def test_a_refused_purchase_shows_the_reason_and_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, change: dict[str, str], message: str
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(http, member_page, f"{member_page}/purchases", {**_purchase(), **change})

    assert response.headers["location"] == member_page
    assert message in (await http.get(member_page)).text
    assert await Purchase.all().count() == 0


async def test_a_voucher_is_redeemed_once_and_leaves_the_list(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    async with in_transaction() as conn:
        voucher = await issue_voucher(conn, anna.id)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    shown = display_code(voucher.code)
    assert shown in (await http.get(member_page)).text

    await _post(http, member_page, f"{member_page}/vouchers", {"store": "S1", "code": shown.lower()})
    page = await http.get(member_page)
    await _post(http, member_page, f"{member_page}/vouchers", {"store": "S1", "code": shown})

    assert f"Voucher {shown} redeemed" in page.text
    assert "No active vouchers." in page.text
    assert (await Voucher.get(id=voucher.id)).redeemed_store == "S1"
    assert "already been redeemed" in (await http.get(member_page)).text
    assert await AuditLog.filter(action="voucher.redeem").count() == 1


async def test_the_member_page_lists_the_vouchers_as_the_staff_api_does(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given a 5 EUR voucher, expiring first, and a voucher from nowhere
    five_off = await Reward.create(
        name="5 EUR off", kind=RewardKind.AMOUNT_OFF, points_cost=50, value=500, voucher_valid_days=5
    )
    async with in_transaction() as conn:
        by_reward = await issue_voucher(conn, anna.id, reward=five_off)
        plain = await issue_voucher(conn, anna.id)
    await _sign_in(http)

    # When the cashier opens the member, and an integration looks the member up
    page = await http.get(f"/admin/members/{anna.id}")
    till = Actor(kind="staff", id=cass.id, role=StaffRole.CASHIER, store_codes=("S1",))
    api = await run_staff(
        "query($q: String!) { memberLookup(query: $q) { activeVouchers { name code } } }",
        till,
        {"q": anna.member_number},
    )

    # Then both name them alike (the one read model, `loyalty.checkout`)
    shown = re.findall(r"<li><span>([^<]+)</span><code>([^<]+)</code>", page.text)
    assert shown == [(v["name"], v["code"]) for v in api.data["memberLookup"]["activeVouchers"]]
    assert shown == [("5 EUR off", display_code(by_reward.code)), ("Voucher", display_code(plain.code))]


async def test_another_members_voucher_is_an_invalid_code(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    bob, _ = await enroll_member("bob")
    async with in_transaction() as conn:
        voucher = await issue_voucher(conn, bob.id)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    await _post(http, member_page, f"{member_page}/vouchers", {"store": "S1", "code": voucher.code})

    assert "no voucher with this code" in (await http.get(member_page)).text
    assert (await Voucher.get(id=voucher.id)).redeemed_at is None


async def test_an_offer_is_redeemed_with_its_button(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    offer = await Offer.create(
        name="Welcome bonus",
        benefit=OfferBenefit.BONUS_POINTS,
        value=50,
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=30),
    )
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text)
    assert "Welcome bonus" in page.text
    assert key is not None

    form = {"store": "S1", "idempotency_key": key.group(1), "csrf": _csrf(page)}
    await http.post(f"{member_page}/offers/{offer.id}", data=form)
    await http.post(f"{member_page}/offers/{offer.id}", data=form)  # a double tap

    assert (await Member.get(id=anna.id)).points_available == 350
    after = await http.get(member_page)
    assert "Offer redeemed: 50 bonus points credited." in after.text
    assert "No offers for this member right now." in after.text


async def test_a_return_claws_back_points(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _purchase(amount="40.00"))

    data = {"store": "S1", "receipt_id": "R-1", "refund_id": "F-1", "amount": "10"}
    response = await _post(http, member_page, f"{member_page}/refunds", data)

    assert response.headers["location"] == member_page
    assert "Return processed: 10 points taken back." in (await http.get(member_page)).text
    assert (await Member.get(id=anna.id)).points_pending == 30
    assert await AuditLog.filter(action="purchase.refund", actor_id=cass.id).count() == 1


async def test_a_return_of_another_members_receipt_is_refused(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    bob, _ = await enroll_member("bob", display_name="Bob")
    await _sign_in(http)
    await _post(http, f"/admin/members/{bob.id}", f"/admin/members/{bob.id}/purchases", _purchase())
    member_page = f"/admin/members/{anna.id}"

    data = {"store": "S1", "receipt_id": "R-1", "refund_id": "F-1", "amount": "10"}
    await _post(http, member_page, f"{member_page}/refunds", data)

    assert "this member has no receipt R-1 in store S1" in (await http.get(member_page)).text
    assert (await Member.get(id=bob.id)).points_pending == 42


async def test_staff_of_every_store_type_the_store(http: httpx.AsyncClient, anna: Member) -> None:
    await create_staff("mia@example.com", PASSWORD, "manager", [], "Mia")
    await _sign_in(http, "mia@example.com")
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert 'id="purchase-store" name="store" required' in page.text

    await _post(http, member_page, f"{member_page}/purchases", _purchase(store="S7"))

    assert (await Purchase.get(receipt_id="R-1")).store_code == "S7"


async def test_a_discount_offer_asks_for_the_purchase_total(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    offer = await Offer.create(
        name="Ten percent off",
        benefit=OfferBenefit.PERCENT_OFF,
        value=10,
        min_spend=1500,
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=30),
    )
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert f'id="offer-total-{offer.id}" name="purchase_total"' in page.text
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page.text)
    assert key is not None
    form = {"store": "S1", "idempotency_key": key.group(1), "csrf": _csrf(page)}

    await http.post(f"{member_page}/offers/{offer.id}", data={**form, "purchase_total": "12.00"})
    too_little = await http.get(member_page)
    await http.post(f"{member_page}/offers/{offer.id}", data={**form, "purchase_total": "20.00"})

    assert "this offer needs a purchase of at least 1500" in too_little.text
    assert "Offer redeemed: take 2.00 EUR off." in (await http.get(member_page)).text


async def test_a_purchase_above_the_sanity_limits_shows_the_limit_in_money(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given the default limits (10,000.00 EUR a receipt, 25,000.00 EUR a member and day) and a cashier who typed
    # 2^31 cents
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(http, member_page, f"{member_page}/purchases", _purchase(amount="21474836.48"))

    assert response.headers["location"] == member_page
    assert "a receipt may total at most €10,000.00, not €21,474,836.48" in (await http.get(member_page)).text
    assert await Purchase.all().count() == 0
