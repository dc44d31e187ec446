"""The checkout at the till in a real headless Chromium, against the real server.

SQLite only: this journey is about the console's pages and forms; the domain behind them is tested on SQLite and
PostgreSQL elsewhere (tests/loyalty, tests/admin).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from loyalty import clock
from loyalty.card import card_code
from loyalty.vouchers import display_code
from tests.e2e.conftest import CHROMIUM_ARGS, ROOT, STAFF_EMAIL, STAFF_PASSWORD, Console

SCREENSHOT = ROOT / "test-artifacts" / "checkout-console.png"
TABLET = {"width": 1180, "height": 820}  # a 10-11" tablet in landscape
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _points(page: Page, which: str) -> int:
    return int(page.locator(f"#points-{which}").inner_text())


@pytest.mark.e2e
def test_a_cashier_checks_a_member_out(console: Console, chromium: Path) -> None:
    seeded = console.seeded
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=TABLET)
            page.set_default_timeout(10_000)

            # Sign in: any console page sends a signed-out browser to the sign-in form.
            page.goto(f"{console.url}/")
            expect(page).to_have_url(f"{console.url}/login")
            page.get_by_label("Email").fill(STAFF_EMAIL)
            page.get_by_label("Password").fill(STAFF_PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page).to_have_url(f"{console.url}/lookup")
            expect(page.get_by_role("status")).to_have_text("Signed in as Cass Cashier.")

            # Scan the card: the scanner types into the focused field and presses Enter.
            expect(page.locator("#query")).to_be_focused()
            barcode = card_code(seeded.member, clock.now(), seeded.card_code_seconds).barcode_value
            page.keyboard.type(barcode)
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{console.url}/members/{seeded.member.id}")
            expect(page.locator("#member-name")).to_have_text("Anna Andersson")
            expect(page.locator("#member-tier")).to_have_text("Member")
            expect(page.locator("#points-available")).to_have_text("300")
            expect(page.locator("#points-pending")).to_have_text("0")
            voucher = display_code(seeded.voucher_code)
            expect(page.locator("#vouchers")).to_contain_text(voucher)
            expect(page.get_by_text(seeded.offer_name)).to_be_visible()
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)

            # Record a purchase: 2 coffees for 42.00 earn 42 points, pending for the return window.
            receipt = page.locator("#receipt-id").input_value()
            page.get_by_label("SKU 1").fill("COFFEE")
            page.get_by_label("Category 1").fill("drinks")
            page.get_by_label("Quantity 1").fill("2")
            page.get_by_label("Amount 1").fill("42.00")
            page.locator("#purchase-total").fill("42.00")
            page.get_by_role("button", name="Record purchase").click()
            expect(page.get_by_role("status")).to_contain_text(f"Receipt {receipt} recorded: 42 points")
            expect(page.locator("#points-pending")).to_have_text("42")

            # Redeem the voucher: it leaves the active list.
            page.get_by_label("Voucher code (scan or type)").fill(voucher)
            page.get_by_role("button", name="Redeem voucher").click()
            expect(page.get_by_role("status")).to_have_text(f"Voucher {voucher} redeemed: apply it to the basket.")
            expect(page.locator("#vouchers")).to_have_text("No active vouchers.")

            # Redeem the offer with its button: its bonus points are available at once.
            page.get_by_role("button", name="Redeem offer").click()
            expect(page.get_by_role("status")).to_have_text("Offer redeemed: 50 bonus points credited.")
            expect(page.locator("#points-available")).to_have_text("350")

            # A return of 12.00 of the receipt takes back 12 of its pending points.
            page.get_by_label("Receipt", exact=True).last.fill(receipt)
            page.get_by_label("Refund id").fill(f"{receipt}-RET1")
            page.get_by_label(re.compile("Amount refunded")).fill("12.00")
            page.get_by_role("button", name="Process return").click()
            expect(page.get_by_role("status")).to_have_text("Return processed: 12 points taken back.")
            assert (_points(page, "available"), _points(page, "pending")) == (350, 30)

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{console.url}/login")
            page.goto(f"{console.url}/lookup")
            expect(page).to_have_url(f"{console.url}/login")
        finally:
            browser.close()

    data = SCREENSHOT.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
