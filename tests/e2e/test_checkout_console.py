"""The checkout at the till in a real headless Chromium, against the real server, on an upright tablet.

SQLite only: this journey is about the console's pages, forms and script; the domain behind them is tested on
SQLite and PostgreSQL elsewhere (tests/loyalty, tests/admin).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from loyalty import clock
from loyalty.card import card_code
from loyalty.vouchers import display_code
from tests.e2e.conftest import CHROMIUM_ARGS, STAFF_EMAIL, STAFF_PASSWORD, Console
from tests.server import ROOT

SCREENSHOT = ROOT / "test-artifacts" / "checkout-console.png"
PORTRAIT = {"width": 820, "height": 1180}  # a 10-11" tablet held upright
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _points(page: Page, which: str) -> int:
    return int(page.locator(f"#points-{which}").inner_text())


def _top(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["y"])


@pytest.mark.e2e
def test_a_cashier_checks_a_member_out_on_an_upright_tablet(console: Console, chromium: Path) -> None:
    seeded = console.seeded
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PORTRAIT)
            page.set_default_timeout(10_000)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            # Every request answers (the browser's own favicon.ico aside: the console has none).
            page.on(
                "response",
                lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
            )

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

            # Upright: the scan field, then the purchase form, then the member's summary, all in one column.
            assert _top(page, "section.scan") < _top(page, "section.purchase") < _top(page, "section.summary")
            assert _top(page, "#purchase-form") < PORTRAIT["height"]  # no scrolling to start a purchase

            # The tier bar and its text agree.
            expect(page.locator("#tier-text")).to_have_text("0 points of 500 points towards Silver: 500 points to go")
            assert page.locator("#tier-bar").evaluate("bar => [bar.value, bar.max]") == [0, 500]

            # Record a purchase: the total adds itself up and the points show before recording.
            receipt = page.locator("#receipt-id").input_value()
            page.get_by_label("SKU 1").fill("COFFEE")
            page.get_by_label("Quantity 1").fill("2")
            page.get_by_label("Amount 1").fill("20.00")
            page.get_by_label("SKU 2").fill("MUG")
            page.get_by_label("Amount 2").fill("22,00")
            expect(page.locator("#purchase-total")).to_have_value("42.00")
            expect(page.locator("#purchase-preview")).to_have_text("This purchase earns 42 points.")
            page.get_by_label("Amount 2").fill("22.005")  # not an amount: the total waits, the preview says why
            expect(page.locator("#purchase-preview")).to_have_text("A line's amount must be an amount like 12.50")
            page.get_by_label("Amount 2").fill("22")
            expect(page.locator("#purchase-preview")).to_have_text("This purchase earns 42 points.")
            assert _points(page, "pending") == 0  # the preview recorded nothing
            page.get_by_role("button", name="Record purchase").click()
            expect(page.get_by_role("status")).to_contain_text(f"Receipt {receipt} recorded: 42 points")
            expect(page.locator("#points-pending")).to_have_text("42")

            # A return from the receipt: one of the two coffees comes back.
            expect(page.locator("#receipts")).to_contain_text("€42.00")
            page.get_by_role("link", name=f"Return from {receipt}").click()
            expect(page.get_by_role("heading", name=f"Return from receipt {receipt}")).to_be_visible()
            refund_id = page.get_by_label("Refund id").input_value()
            assert refund_id.startswith("RET-")
            page.get_by_label("Return of line 1").fill("1")
            page.get_by_role("button", name="Return these items").click()
            expect(page.get_by_role("status")).to_have_text(
                f"Return {refund_id} processed: €10.00 refunded, 10 points taken back."
            )
            assert (_points(page, "available"), _points(page, "pending")) == (300, 32)

            # Asking for more than is left is refused in euros.
            page.get_by_role("link", name=f"Return from {receipt}").click()
            page.get_by_label("Or refund an amount").fill("40")
            page.get_by_role("button", name="Refund this amount").click()
            expect(page.get_by_role("alert")).to_have_text("only €32.00 of this purchase is left to refund")
            page.get_by_role("link", name="Anna Andersson").click()

            # One tap on the listed voucher says what to hand over.
            page.get_by_role("button", name="Redeem Free coffee").click()
            expect(page.get_by_role("status")).to_have_text(
                f"Voucher {voucher} redeemed. Free coffee: hand over the item (SKU COFFEE)."
            )
            expect(page.locator("#vouchers")).to_have_text("No active vouchers.")

            # Redeem the offer with its button: its bonus points are available at once.
            page.get_by_role("button", name=f"Redeem {seeded.offer_name}").click()
            expect(page.get_by_role("status")).to_have_text("Offer redeemed: 50 bonus points credited.")
            expect(page.locator("#points-available")).to_have_text("350")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=SCREENSHOT, full_page=True)

            page.get_by_role("button", name="Sign out").click()
            expect(page).to_have_url(f"{console.url}/login")
            page.goto(f"{console.url}/lookup")
            expect(page).to_have_url(f"{console.url}/login")
            assert errors == []
        finally:
            browser.close()

    data = SCREENSHOT.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 10_000
