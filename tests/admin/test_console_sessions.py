"""Console sessions: each sign-in is its own session (the token's `sid`), kept while the till is in use, and wrong
voucher codes lock that till only, not the other tills signed in with the same login."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from api.app import create_app
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, Program, StaffUser
from loyalty.staff import create_staff
from tests.conftest import app_settings

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def app(db: str, tmp_path: Path) -> Any:
    return create_app(app_settings(db, tmp_path))


async def _browser(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two tablets (two cookie jars) on one console."""
    async with await _browser(app) as first, await _browser(app) as second:
        yield first, second


@pytest.fixture
async def till_login(program: Program) -> StaffUser:
    return await create_staff("till@example.com", PASSWORD, "cashier", ["S1"], "Till")


def _csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match is not None, "the page has no CSRF field"
    return match.group(1)


async def _sign_in(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/admin/login")
    response = await browser.post(
        "/admin/login", data={"email": "till@example.com", "password": PASSWORD, "csrf": _csrf(page)}
    )
    assert response.status_code == 303


def _session_id(browser: httpx.AsyncClient) -> str:
    sid: str = jwt.decode(browser.cookies["klubb_console"], options={"verify_signature": False})["sid"]
    return sid


async def _try_code(browser: httpx.AsyncClient, member: Member, code: str) -> str:
    """What the member page says after the code was entered."""
    member_page = f"/admin/members/{member.id}"
    page = await browser.get(member_page)
    await browser.post(f"{member_page}/vouchers", data={"store": "S1", "code": code, "csrf": _csrf(page)})
    text = (await browser.get(member_page)).text
    if "too many failed attempts" in text:
        return "locked"
    if "no voucher with this code" in text:
        return "wrong"
    return "?"


async def test_each_sign_in_has_its_own_session_which_renewal_keeps(
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient], till_login: StaffUser, clock: FrozenClock
) -> None:
    first, second = browsers
    await _sign_in(first)
    await _sign_in(second)
    session = _session_id(first)
    token = first.cookies["klubb_console"]

    clock.advance(timedelta(seconds=600))  # of 900: the next request renews the token
    assert (await first.get("/admin/lookup")).status_code == 200

    assert first.cookies["klubb_console"] != token
    assert _session_id(first) == session
    assert re.fullmatch("[0-9a-f]{32}", session)
    assert _session_id(second) != session


async def test_wrong_codes_lock_the_till_that_typed_them_not_the_others_with_the_same_login(
    browsers: tuple[httpx.AsyncClient, httpx.AsyncClient], till_login: StaffUser
) -> None:
    # given two tills signed in with one login, serving Anna and Bo
    first, second = browsers
    await _sign_in(first)
    await _sign_in(second)
    anna, _ = await enroll_member("uid-anna")
    bo, _ = await enroll_member("uid-bo")
    for_anna = [await _try_code(first, anna, f"{n:016d}") for n in range(5)]

    # when each till tries another code for Bo
    on_first = await _try_code(first, bo, "0000000000000099")
    on_second = await _try_code(second, bo, "0000000000000099")

    # then the first till is locked, the second is not
    assert for_anna == ["wrong"] * 5
    assert (on_first, on_second) == ("locked", "wrong")
