"""GraphiQL works without internet: in a real browser, the page loads only from klubb and shows the schema."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Request, Route, expect, sync_playwright

from tests.e2e.conftest import CHROMIUM_ARGS, Console

pytestmark = pytest.mark.e2e


def test_graphiql_loads_everything_from_klubb_and_reads_the_schema(console: Console, chromium: Path) -> None:
    base = console.url.removesuffix("/admin")
    elsewhere: list[str] = []

    def only_klubb(route: Route, request: Request) -> None:
        # any other host is refused (and noted), as it would be on a machine without internet
        if urlsplit(request.url).netloc != urlsplit(base).netloc:
            elsewhere.append(request.url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_klubb)
            # Given the staff endpoint's GraphiQL; when it loads, it introspects the schema over POST
            with page.expect_response(
                lambda r: r.url == f"{base}/staff/graphql" and r.request.method == "POST"
            ) as sent:
                page.goto(f"{base}/staff/graphql")
            # Then the IDE is up, its schema came from klubb, and nothing was asked of another host
            expect(page.locator(".graphiql-container")).to_be_visible()
            assert sent.value.status == 200
            assert "staffMe" in sent.value.text()
            assert elsewhere == []
        finally:
            browser.close()
