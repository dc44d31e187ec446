"""The console's forms with text no column can hold (NUL, controls, over-long): the same checks as the APIs, a
message on the page, nothing written, never a database error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from loyalty.members import enroll_member
from loyalty.models import Member, Program, Purchase, Refund, StaffUser
from loyalty.staff import create_staff
from tests.admin.test_console_views import PASSWORD, _post, _purchase, _sign_in
from tests.conftest import app_settings
from tests.loyalty.purchase_helpers import buy, line

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
    member, _ = await enroll_member("anna", email="anna@example.com", display_name="Anna")
    return member


async def test_signing_in_with_a_nul_in_the_email_is_a_wrong_email_or_password(
    http: httpx.AsyncClient, cass: StaffUser
) -> None:
    response = await _sign_in(http, email="cass@example.com\x00")

    assert (response.status_code, response.headers["location"]) == (303, "/admin/login")
    assert "klubb_console" not in http.cookies
    assert "wrong email or password" in (await http.get("/admin/login")).text


@pytest.mark.parametrize("query", ["anna@example.com\x00", "\x00@", "+46\x00701234567"])
async def test_a_lookup_with_a_nul_finds_nobody(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, query: str
) -> None:
    await _sign_in(http)

    response = await _post(http, "/admin/lookup", "/admin/lookup", {"query": query})

    assert response.status_code == 303
    assert response.headers["location"] == "/admin/lookup"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"receipt_id": "R\x001"}, "receipt id must not contain control characters or unpaired surrogates"),
        ({"receipt_id": "R\u200b1"}, "receipt id must be printable characters only"),
        ({"sku0": "COF\x00FEE"}, "a line&#39;s sku must not contain control characters or unpaired surrogates"),
        ({"quantity0": "10001"}, "a line&#39;s quantity must be at most 10000"),
        ({"quantity0": "9" * 200}, "a quantity is a whole number"),  # refused by the form before int()
    ],
)
async def test_a_purchase_form_with_hostile_text_shows_the_reason_and_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member, change: dict[str, str], message: str
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(http, member_page, f"{member_page}/purchases", {**_purchase(), **change})

    assert response.headers["location"] == member_page
    assert message in (await http.get(member_page)).text
    assert await Purchase.all().count() == 0


async def test_a_voucher_code_with_a_nul_is_an_invalid_code(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await _sign_in(http)
    member_page = f"/admin/members/{anna.id}"

    response = await _post(
        http, member_page, f"{member_page}/vouchers", {"store": "S1", "code": "ABCD-\x00EFG-HJKM-NPQR"}
    )

    assert response.headers["location"] == member_page
    assert "no voucher with this code" in (await http.get(member_page)).text


async def test_a_return_with_a_nul_in_its_refund_id_writes_nothing(
    http: httpx.AsyncClient, cass: StaffUser, anna: Member
) -> None:
    await buy(anna.id, "R-1", [line("COFFEE", 4200)])
    await _sign_in(http)
    receipt_page = f"/admin/members/{anna.id}/receipts/{(await Purchase.get(receipt_id='R-1')).id}"

    response = await _post(http, receipt_page, f"{receipt_page}/refunds", {"refund_id": "F\x001", "amount": "10.00"})

    assert response.headers["location"] == receipt_page
    assert "refund id must not contain control characters" in (await http.get(receipt_page)).text
    assert await Refund.all().count() == 0
