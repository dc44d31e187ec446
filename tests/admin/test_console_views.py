"""The staff console over HTTP (httpx + ASGI): sign-in, CSRF, authorization, and the checkout actions."""

from __future__ import annotations

import re
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
    OutboxEvent,
    Program,
    Purchase,
    Reward,
    RewardKind,
    StaffRole,
    StaffUser,
    Voucher,
)
from loyalty.program import forget_cached_program
from loyalty.rewards import redeem_reward
from loyalty.staff import create_staff, deactivate_staff
from loyalty.vouchers import display_code, issue_voucher
from tests.admin.conftest import PASSWORD
from tests.conftest import START, app_settings
from tests.loyalty.ledger_helpers import credit_points
from tests.schema.staff.conftest import run_staff

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


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
        ("POST", "/admin/members/1/cashback"),
        ("POST", "/admin/members/1/purchases/preview"),
        ("POST", "/admin/members/1/vouchers/1"),
        ("POST", "/admin/members/1/offers/1"),
        ("POST", "/admin/members/1/offers/1/activate"),
        ("GET", "/admin/members/1/receipts/1"),
        ("POST", "/admin/members/1/receipts/1/refunds"),
        ("POST", "/admin/store"),
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
    assert "0 points of 500 points towards\n        <strong>Silver</strong>: 500 points to go" in page.text
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
    receipt = await http.get(f"{member_page}/receipts/{2**31}")
    receipt_page = await http.get(member_page)
    refund = await _post(
        http, member_page, f"{member_page}/receipts/{2**31}/refunds", {"refund_id": "F", "amount": "1"}
    )
    assert (receipt.headers["location"], refund.headers["location"]) == (member_page, f"{member_page}/receipts/{2**31}")
    assert "this member has no such receipt" in receipt_page.text
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
    # Given Cass, a cashier of S1 only
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    # When she tries to work in S2: by picking it, by forging the store cookie, by a store field in the form
    picked = await _post(http, member_page, "/admin/store", {"store": "S2", "back": f"/members/{anna.id}"})
    picked_page = await http.get(member_page)
    http.cookies.set("klubb_console_store", "S2", path="/admin")
    await _post(http, member_page, f"{member_page}/purchases", _purchase(store="S2"))

    # Then the pick is refused, and the purchase happens in her one store
    assert picked.headers["location"] == "/admin/lookup"
    assert "not allowed in store S2" in picked_page.text
    assert await Purchase.all().values_list("store_code", flat=True) == ["S1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"total": "40.00"}, "the lines that are not voided add up to €42.00, not €40.00"),
        ({"total": "12.345"}, "The total must be an amount like 12.50"),
        ({"total": "9e99999"}, "The total must be an amount like 12.50"),
        ({"total": "9e999999"}, "The total must be an amount like 12.50"),
        ({"amount0": "-1"}, "A line&#39;s amount must be an amount like 12.50"),
        ({"quantity0": "two"}, "a quantity is a whole number"),
        ({"receipt_id": ""}, "The receipt id is required"),
        ({"total": "10000.01", "amount0": "10000.01"}, "a receipt may total at most €10,000.00, not €10,000.01"),
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

    assert f"Voucher {shown} redeemed. Voucher: apply it to the basket." in page.text
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
    shown = re.findall(r"<li>\s*<span>([^<]+)</span><code>([^<]+)</code>", page.text)
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


async def test_a_return_by_amount_from_the_receipt_claws_back_points(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _purchase(amount="40.00"))
    receipt_page = f"{member_page}/receipts/{(await Purchase.get(receipt_id='R-1')).id}"

    response = await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F-1", "amount": "10"})

    assert response.headers["location"] == member_page
    assert "Return F-1 processed: €10.00 refunded, 10 points taken back." in (await http.get(member_page)).text
    assert (await Member.get(id=anna.id)).points_pending == 30
    assert await AuditLog.filter(action="purchase.refund", actor_id=cass.id).count() == 1


async def test_a_return_of_another_members_receipt_is_refused(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    bob, _ = await enroll_member("bob", display_name="Bob")
    await _sign_in(http)
    await _post(http, f"/admin/members/{bob.id}", f"/admin/members/{bob.id}/purchases", _purchase())
    bobs = await Purchase.get(receipt_id="R-1")
    member_page = f"/admin/members/{anna.id}"

    # Bob's receipt under Anna's page: neither its page nor a forged refund form reaches it
    shown = await http.get(f"{member_page}/receipts/{bobs.id}")
    await _post(http, member_page, f"{member_page}/receipts/{bobs.id}/refunds", {"refund_id": "F-1", "amount": "10"})

    assert shown.headers["location"] == member_page
    assert "this member has no such receipt" in (await http.get(member_page)).text
    assert (await Member.get(id=bob.id)).points_pending == 42
    assert await AuditLog.filter(action="purchase.refund").count() == 0


async def test_staff_of_every_store_type_the_store_once(http: httpx.AsyncClient, anna: Member) -> None:
    # Given Mia, a manager of every store, signed in: no store yet
    await create_staff("mia@example.com", PASSWORD, "manager", [], "Mia")
    await _sign_in(http, "mia@example.com")
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert "Pick the store you are working in" in page.text
    assert 'id="store-choice" name="store" required' in page.text
    await _post(http, member_page, f"{member_page}/purchases", _purchase(receipt="R-0"))
    assert "Pick the store you are working in first" in (await http.get(member_page)).text

    # When she types S7 once, records two purchases, then changes to S8 for a third
    picked = await _post(http, member_page, "/admin/store", {"store": "S7", "back": f"/members/{anna.id}"})
    after = await http.get(member_page)
    await _post(http, member_page, f"{member_page}/purchases", _purchase(receipt="R-1"))
    await _post(http, member_page, f"{member_page}/purchases", _purchase(receipt="R-2"))
    await _post(http, member_page, "/admin/store", {"store": "S8", "back": "https://evil.example/"})
    await _post(http, member_page, f"{member_page}/purchases", _purchase(receipt="R-3"))

    # Then the store came from the session every time, and an outside address is never a way back
    assert picked.headers["location"] == member_page
    assert "Working in store S7." in after.text
    assert "Mia · manager · store S7" in after.text
    assert await Purchase.all().order_by("receipt_id").values_list("receipt_id", "store_code") == [
        ("R-1", "S7"),
        ("R-2", "S7"),
        ("R-3", "S8"),
    ]
    assert "Mia · manager · store S8" in (await http.get("/admin/lookup")).text


async def test_a_manager_of_several_stores_picks_one_of_them(http: httpx.AsyncClient, anna: Member) -> None:
    await create_staff("max@example.com", PASSWORD, "manager", ["S1", "S2"], "Max")
    await _sign_in(http, "max@example.com")
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert '<option value="S1">S1</option><option value="S2">S2</option>' in page.text

    await _post(http, member_page, "/admin/store", {"store": "S2", "back": f"/members/{anna.id}"})
    await _post(http, member_page, "/admin/store", {"store": "S3", "back": f"/members/{anna.id}"})
    refused = await http.get("/admin/lookup")
    await _post(http, member_page, f"{member_page}/purchases", _purchase())

    assert "not allowed in store S3" in refused.text
    assert '<option value="S2" selected>S2</option>' in (await http.get(member_page)).text
    assert (await Purchase.get(receipt_id="R-1")).store_code == "S2"

    # Signing out forgets the store
    await _post(http, member_page, "/admin/logout", {})
    await _sign_in(http, "max@example.com")
    assert "Pick the store you are working in" in (await http.get(member_page)).text


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

    assert "this offer needs a purchase of at least €15.00" in too_little.text
    assert "Offer redeemed: take €2.00 off the basket." in (await http.get(member_page)).text


# --- receipts and returns ---------------------------------------------------------------------------


def _receipt_rows(page: httpx.Response) -> list[list[str]]:
    body = page.text.split('id="receipts"', 1)[1].split("</table>", 1)[0]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    ]


def _two_lines(receipt: str = "R-1") -> dict[str, str]:
    return {"receipt_id": receipt, "total": "50.00", "sku0": "COFFEE", "quantity0": "2", "amount0": "20.00",
            "sku1": "MUG", "quantity1": "1", "amount1": "30.00"}  # fmt: skip


async def test_the_member_page_lists_recent_receipts_with_what_is_left_to_refund(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, clock: FrozenClock
) -> None:
    # Given two receipts ten minutes apart, the first partly refunded
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _two_lines("R-1"))
    first = await Purchase.get(receipt_id="R-1")
    receipt_page = f"{member_page}/receipts/{first.id}"
    await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F-1", "amount": "12.50"})
    clock.advance(timedelta(minutes=10))
    await _post(http, member_page, f"{member_page}/purchases", _purchase("S1", "R-2", "42.00"))

    # When the cashier opens the member
    page = await http.get(member_page)

    # Then the receipts show newest first: store, time (program's zone), total, points kept, left to refund
    assert _receipt_rows(page) == [
        ["R-2", "S1", "02 Mar 2026 12:10", "€42.00", "42", "€42.00", "Return"],
        ["R-1", "S1", "02 Mar 2026 12:00", "€50.00", "38", "€37.50", "Return"],
    ]
    assert f'href="{receipt_page}"' in page.text


async def test_a_return_by_lines_starts_from_the_receipt_with_a_refund_id_filled_in(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _two_lines())
    receipt_page = f"{member_page}/receipts/{(await Purchase.get(receipt_id='R-1')).id}"

    # The receipt page: its lines, what is left, and a fresh refund id each time (editable)
    page = await http.get(receipt_page)
    again = await http.get(receipt_page)
    refund_ids = [re.search(r'name="refund_id" required maxlength="64" value="([^"]+)"', p.text) for p in (page, again)]
    assert all(refund_ids)
    suggested = [m.group(1) for m in refund_ids if m]
    assert re.fullmatch(r"RET-20260302-120000-[0-9a-f]{4}", suggested[0])
    assert suggested[0] != suggested[1]
    assert 'name="return1"' in page.text
    assert 'name="return2"' in page.text
    assert "€50.00</strong> left to refund" in page.text.replace('<strong id="left-to-refund">', "</strong>")

    # When one of the two coffees comes back, under the suggested refund id
    response = await http.post(
        f"{receipt_page}/refunds",
        data={"refund_id": suggested[0], "return1": "1", "return2": "", "amount": "", "csrf": _csrf(page)},
    )

    # Then €10.00 and its 10 points go back; the line shows one returned
    assert response.headers["location"] == member_page
    assert (
        f"Return {suggested[0]} processed: €10.00 refunded, 10 points taken back." in (await http.get(member_page)).text
    )
    purchase = await Purchase.get(receipt_id="R-1")
    assert (purchase.refunded_total, purchase.points_reversed) == (1000, 10)
    assert "€40.00</strong> left to refund" in (await http.get(receipt_page)).text.replace(
        '<strong id="left-to-refund">', "</strong>"
    )


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"amount": "60.00"}, "only €50.00 of this purchase is left to refund"),
        ({"return1": "3"}, "line 1: only 2 left to refund"),
        ({"return1": "two"}, "a quantity is a whole number"),
        ({"return1": "99999999999"}, "a quantity is a whole number"),
        ({"return1": "1", "amount": "5"}, "Return items or refund an amount, not both."),
        ({}, "Enter how many of which items come back, or an amount to refund."),
        ({"amount": "5.001"}, "The amount must be an amount like 12.50"),
        ({"amount": "1", "refund_id": ""}, "The refund id is required"),
        ({"amount": "1", "refund_id": "x" * 65}, "refund_id"),
    ],
)
async def test_a_refused_return_says_why_in_the_programs_money_and_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, form: dict[str, str], message: str
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _two_lines())
    receipt_page = f"{member_page}/receipts/{(await Purchase.get(receipt_id='R-1')).id}"

    response = await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F-1", **form})

    assert response.headers["location"] == receipt_page
    page = (await http.get(receipt_page)).text
    assert 'class="flash error"' in page
    assert message in page
    assert await AuditLog.filter(action="purchase.refund").count() == 0
    purchase = await Purchase.get(receipt_id="R-1")
    assert (purchase.refunded_total, purchase.points_reversed) == (0, 0)


async def test_the_issues_example_only_the_rest_of_the_purchase_is_left_in_euros(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given a 50.00 receipt of which 20.00 was refunded
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _two_lines())
    receipt_page = f"{member_page}/receipts/{(await Purchase.get(receipt_id='R-1')).id}"
    await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F-1", "amount": "20"})

    await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F-2", "amount": "31"})

    assert "only €30.00 of this purchase is left to refund" in (await http.get(receipt_page)).text


# --- the purchase form: preview -------------------------------------------------------------------


async def test_the_preview_says_what_the_purchase_will_earn_and_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert f'data-preview="{member_page}/purchases/preview"' in page.text
    csrf = _csrf(page)

    earns = await http.post(f"{member_page}/purchases/preview", data={**_two_lines(), "csrf": csrf})
    wrong = await http.post(f"{member_page}/purchases/preview", data={**_two_lines(), "total": "49", "csrf": csrf})
    forged = await http.post(f"{member_page}/purchases/preview", data=_two_lines())

    assert (earns.status_code, earns.json()) == (
        200,
        {"ok": True, "points": 50, "text": "This purchase earns 50 points."},
    )
    assert earns.headers["cache-control"] == "no-store"
    assert wrong.json() == {"ok": False, "text": "the lines that are not voided add up to €50.00, not €49.00"}
    assert forged.status_code == 403
    assert await Purchase.all().count() == 0
    assert (await Member.get(id=anna.id)).points_pending == 0


async def test_the_script_is_served_by_klubb_and_allowed_by_the_pages_policy(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    page = await http.get(f"/admin/members/{anna.id}")

    script = await http.get("/admin/static/console.js")

    assert '<script src="/admin/static/console.js" defer></script>' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (script.status_code, script.headers["content-type"].split(";")[0]) == (200, "text/javascript")
    assert "purchase-preview" in script.text


# --- one-tap vouchers and offers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reward", "what"),
    [
        ({"kind": RewardKind.FREE_PRODUCT, "sku": "COFFEE", "name": "Free coffee"},
         "Free coffee: hand over the item (SKU COFFEE)."),
        ({"kind": RewardKind.AMOUNT_OFF, "value": 500, "name": "5 EUR off"}, "5 EUR off: take €5.00 off the basket."),
        ({"kind": RewardKind.PERCENT_OFF, "value": 15, "name": "15% off"}, "15% off: take 15% off the basket."),
        ({"kind": RewardKind.DONATION, "value": 100, "name": "Plant a tree"},
         "Plant a tree: €1.00 is donated, nothing to take off."),
    ],
)  # fmt: skip
async def test_a_listed_voucher_is_redeemed_with_one_tap_and_says_what_to_hand_over(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, reward: dict[str, object], what: str
) -> None:
    # Given Anna's voucher for a reward
    async with in_transaction() as conn:
        voucher = await issue_voucher(conn, anna.id, reward=await Reward.create(points_cost=10, **reward))
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    key = re.search(rf'vouchers/{voucher.id}" class="tap">\s*<input[^>]+>\s*<input type="hidden" '
                    r'name="idempotency_key" value="([0-9a-f]+)"', page.text)  # fmt: skip
    assert key is not None

    # When the cashier taps its button twice
    form = {"idempotency_key": key.group(1), "csrf": _csrf(page)}
    first = await http.post(f"{member_page}/vouchers/{voucher.id}", data=form)
    second = await http.post(f"{member_page}/vouchers/{voucher.id}", data=form)

    # Then it is redeemed once, and both answers say what to hand over or take off
    assert first.headers["location"] == second.headers["location"] == member_page
    after = await http.get(member_page)
    assert f"Voucher {display_code(voucher.code)} redeemed. {what}" in after.text
    assert "No active vouchers." in after.text
    assert await AuditLog.filter(action="voucher.redeem").count() == 1
    assert (await Voucher.get(id=voucher.id)).redeemed_store == "S1"


async def test_a_typed_voucher_code_also_says_what_to_take_off(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    five_off = await Reward.create(name="5 EUR off", kind=RewardKind.AMOUNT_OFF, points_cost=50, value=500)
    async with in_transaction() as conn:
        voucher = await issue_voucher(conn, anna.id, reward=five_off)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    await _post(http, member_page, f"{member_page}/vouchers", {"code": voucher.code})

    shown = display_code(voucher.code)
    assert f"Voucher {shown} redeemed. 5 EUR off: take €5.00 off the basket." in (await http.get(member_page)).text


async def test_one_tap_on_another_members_voucher_or_a_reused_key_is_refused(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    bob, _ = await enroll_member("bob")
    async with in_transaction() as conn:
        bobs = await issue_voucher(conn, bob.id)
        annas = await issue_voucher(conn, anna.id)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    await _post(http, member_page, f"{member_page}/vouchers/{bobs.id}", {"idempotency_key": "k1"})
    foreign = await http.get(member_page)
    await _post(http, member_page, f"{member_page}/vouchers/{2**31}", {"idempotency_key": "k2"})
    too_big = await http.get(member_page)
    await _post(http, member_page, f"{member_page}/vouchers/{annas.id}", {"idempotency_key": ""})
    no_key = await http.get(member_page)

    assert "no such voucher" in foreign.text
    assert "no such voucher" in too_big.text
    assert "The form key is required" in no_key.text
    assert await Voucher.filter(status="active").count() == 2
    assert await AuditLog.all().count() == 0


async def test_an_offer_that_needs_activation_is_activated_with_one_tap_then_redeemed(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    offer = await Offer.create(
        name="Clip me",
        benefit=OfferBenefit.BONUS_POINTS,
        value=25,
        requires_activation=True,
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=30),
    )
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    before = await http.get(member_page)
    assert "not activated yet" in before.text
    assert f'{member_page}/offers/{offer.id}/activate"' in before.text

    await _post(http, member_page, f"{member_page}/offers/{offer.id}/activate", {})
    await _post(http, member_page, f"{member_page}/offers/{offer.id}/activate", {})  # a double tap
    activated = await http.get(member_page)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', activated.text)
    assert key is not None
    await http.post(
        f"{member_page}/offers/{offer.id}", data={"idempotency_key": key.group(1), "csrf": _csrf(activated)}
    )

    assert "Offer activated: Clip me." in activated.text
    assert " · activated" in activated.text
    assert await OutboxEvent.filter(type="offer.activated").count() == 1
    assert "Offer redeemed: 25 bonus points credited." in (await http.get(member_page)).text
    assert (await Member.get(id=anna.id)).points_available == 325


# --- the tier bar ---------------------------------------------------------------------------------


def _tier(page: httpx.Response) -> tuple[str, str, str]:
    text = re.search(r'<p id="tier-text">(.*?)</p>', page.text, re.S)
    bar = re.search(r'<progress id="tier-bar" max="(\d+)" value="(\d+)"', page.text)
    assert text is not None
    assert bar is not None
    return " ".join(re.sub(r"<[^>]+>", "", text.group(1)).split()), bar.group(2), bar.group(1)


@pytest.mark.parametrize(
    ("spent", "text", "value", "maximum"),
    [
        ("0", "0 points of 500 points towards Silver: 500 points to go", "0", "500"),
        ("120", "120 points of 500 points towards Silver: 380 points to go", "120", "500"),
        ("800", "800 points of 2000 points towards Gold: 1200 points to go", "800", "2000"),
        ("2500", "Top tier: 2500 points this period", "1", "1"),
    ],
)
async def test_the_tier_bar_shows_the_numbers_of_its_text(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, spent: str, text: str, value: str, maximum: str
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    if spent != "0":
        await _post(http, member_page, f"{member_page}/purchases", _purchase(amount=spent))

    shown, bar_value, bar_max = _tier(await http.get(member_page))

    assert (shown, bar_value, bar_max) == (text, value, maximum)
    if maximum != "1":  # the text's two numbers are the bar's
        assert re.findall(r"\d+", shown)[:2] == [bar_value, bar_max]


async def test_on_spend_the_tier_bar_and_text_are_money(http: httpx.AsyncClient, cass: StaffUser, anna: Member) -> None:
    await Program.all().update(tier_metric="spend")
    forget_cached_program()
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    await _post(http, member_page, f"{member_page}/purchases", _purchase(amount="1.20"))

    assert _tier(await http.get(member_page)) == ("€1.20 of €5.00 towards Silver: €3.80 to go", "120", "500")


async def test_the_member_page_reads_money_in_the_programs_currency(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await Offer.create(
        name="Big spender",
        benefit=OfferBenefit.AMOUNT_OFF,
        value=500,
        min_spend=2500,
        valid_from=START - timedelta(days=1),
        valid_until=START + timedelta(days=30),
    )
    await _sign_in(http)

    page = await http.get(f"/admin/members/{anna.id}")

    assert "min. spend €25.00" in page.text
    assert "Purchase total (EUR)" in page.text


@pytest.mark.parametrize("store", ["S 1", "Ström", "a;b=c", 'q"uote', "x" * 32])
async def test_any_store_code_the_domain_accepts_round_trips_through_the_session(
    http: httpx.AsyncClient, anna: Member, store: str
) -> None:
    await create_staff("mia@example.com", PASSWORD, "manager", [], "Mia")
    await _sign_in(http, "mia@example.com")
    member_page = f"/admin/members/{anna.id}"

    await _post(http, member_page, "/admin/store", {"store": store, "back": f"/members/{anna.id}"})
    await _post(http, member_page, f"{member_page}/purchases", _purchase())

    assert (await Purchase.get(receipt_id="R-1")).store_code == store


@pytest.mark.parametrize("store", ["x" * 33, "", "   "])
async def test_a_store_code_the_domain_refuses_is_not_picked(http: httpx.AsyncClient, anna: Member, store: str) -> None:
    await create_staff("mia@example.com", PASSWORD, "manager", [], "Mia")
    await _sign_in(http, "mia@example.com")
    member_page = f"/admin/members/{anna.id}"

    picked = await _post(http, member_page, "/admin/store", {"store": store, "back": f"/members/{anna.id}"})

    assert picked.headers["location"] == "/admin/lookup"
    assert "klubb_console_store" not in http.cookies
    assert 'class="flash error"' in (await http.get("/admin/lookup")).text


# --- cashback -------------------------------------------------------------------------------------------


async def _cashback(member: Member, amount: int) -> None:
    await credit_points(member.id, 100, kind=EntryKind.ADJUSTMENT, idempotency_key="seed-cashback")
    reward = await Reward.create(name="Cashback", kind=RewardKind.CASHBACK, points_cost=100, value=amount)
    await redeem_reward(member.id, reward.id, idempotency_key="cashback")


async def test_the_member_page_shows_the_cashback_and_spends_it_once_per_form(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given €5.00 of cashback
    await _cashback(anna, 500)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"
    page = await http.get(member_page)
    assert re.search(r'id="cashback-balance">€5.00<', page.text)
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)">\s*<label for="cashback-receipt"', page.text)
    assert key is not None

    # When the cashier pays €3.20 of receipt R-9 with it, and the form is sent twice
    form = {"receipt_id": "R-9", "amount": "3.20", "idempotency_key": key.group(1), "csrf": _csrf(page)}
    first = await http.post(f"{member_page}/cashback", data=form)
    second = await http.post(f"{member_page}/cashback", data=form)

    # Then it was spent once, and the page says what to take off and what is left
    assert first.headers["location"] == second.headers["location"] == member_page
    after = await http.get(member_page)
    assert "€3.20 of cashback paid on receipt R-9: take it off the basket. €1.80 left." in after.text
    assert re.search(r'id="cashback-balance">€1.80<', after.text)
    assert (await Member.get(id=anna.id)).cashback_balance == 180
    assert await AuditLog.filter(action="cashback.spend", store_code="S1").count() == 1


async def test_spending_more_cashback_than_the_balance_says_what_is_available(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    # Given €5.00 of cashback
    await _cashback(anna, 500)
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    # When the cashier asks for €5.01
    await _post(http, member_page, f"{member_page}/cashback", {"receipt_id": "R-9", "amount": "5.01",
                                                               "idempotency_key": "k1"})  # fmt: skip

    # Then the page says what is available, in euros, and nothing was spent
    assert "only €5.00 of cashback is available" in (await http.get(member_page)).text
    assert (await Member.get(id=anna.id)).cashback_balance == 500
    assert await AuditLog.filter(action="cashback.spend").count() == 0


async def test_a_member_without_cashback_has_no_cashback_form(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)

    page = await http.get(f"/admin/members/{anna.id}")

    assert re.search(r'id="cashback-balance">€0.00<', page.text)
    assert 'id="cashback-title"' not in page.text
