"""The referral landing page `/r/<code>` (api/referral_page.py, loyalty/invitations.py, api/referral_texts.py): what a
friend sees in English and Swedish, the language chosen, the link previews' tags, the buttons, the friendly page for
everything that is not a member's code (never echoing it), nothing about the member, the canonical redirect, HEAD,
the headers, referrals off, and one SQL statement per request."""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.referral_page import CSS, ReferralPage
from api.referral_texts import LANGUAGES, MESSAGES, Plural, accepted_language, choose_language
from api.settings import Settings
from loyalty.members import enroll_member
from loyalty.models import Member, Program, ReferralPolicy
from loyalty.program import apply_program_config
from loyalty.referrals import CODE_ALPHABET, apply_referral_config, code_of
from tests.conftest import TEST_PROGRAM, app_settings
from tests.schema.conftest import SQLCounter

CODE = "ACDE3467"  # Anna's
OTHER_CODE = "TUVW9XY4"  # Bo's
UNKNOWN_CODE = "QRTU6796"  # nobody's
POLICY: dict[str, Any] = {
    "referee_points": 200,
    "referrer_points": 300,
    "min_spend": 2000,
    "apply_days": 14,
    "app_store_url": "https://apps.apple.com/app/id123",
    "play_store_url": "https://play.google.com/store/apps/details?id=com.example.klubb",
    "open_app_url": "https://app.example.com/invite/{code}",
}
SECURITY = {
    "content-security-policy": (
        "default-src 'none'; "
        f"style-src 'sha256-{base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
STORES_EN = [
    ("https://apps.apple.com/app/id123", "Download on the App Store", True),
    ("https://play.google.com/store/apps/details?id=com.example.klubb", "Get it on Google Play", False),
]


class Page(HTMLParser):
    """What a person and a link preview read of the page: texts by role, the meta tags, the buttons."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, Any] = {"meta": {}, "buttons": [], "languages": []}
        self._into: str | None = None
        self._link: dict[str, str] = {}
        self.style = ""
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "html":
            self.found["lang"] = a["lang"]
        elif tag == "meta" and ("property" in a or "name" in a):
            key = a.get("property") or a["name"]
            assert key not in self.found["meta"], f"{key} twice"
            self.found["meta"][key] = a["content"]
        elif tag == "link" and a.get("rel") == "canonical":
            self.found["canonical"] = a["href"]
        elif tag == "a":
            self._link = a
            self._into = "a"
        elif tag in ("title", "h1", "h2", "style") or (tag == "p" and a.get("class")):
            self._into = tag if tag != "p" else a["class"]

    def handle_data(self, data: str) -> None:
        if self._into == "style":
            self.style += data
        elif self._into == "a":
            if "button" in self._link.get("class", ""):
                primary = "primary" in self._link["class"].split()
                self.found["buttons"].append((self._link["href"], data, primary))
            else:
                self.found["languages"].append((self._link["href"], data))
        elif self._into is not None:
            assert self._into not in self.found, f"{self._into} twice"
            self.found[self._into] = data

    def handle_endtag(self, tag: str) -> None:
        self._into = None


def read(response: httpx.Response) -> dict[str, Any]:
    return Page(response.text).found


def english_page(code: str = CODE, **changes: Any) -> dict[str, Any]:
    """The page of a member's code in English with POLICY, as `read` sees it."""
    offer = "Get 200 bonus points with your first purchase of €20.00 or more."
    page = {
        "lang": "en",
        "title": "You're invited to Test Club",
        "meta": {
            "robots": "noindex",
            "viewport": "width=device-width, initial-scale=1",
            "description": offer,
            "og:type": "website",
            "og:site_name": "Test Club",
            "og:title": "You're invited to Test Club",
            "og:description": offer,
            "og:url": f"https://klubb.example.com/r/{code}",
            "og:locale": "en_US",
            "og:locale:alternate": "sv_SE",
            "twitter:card": "summary",
            "twitter:title": "You're invited to Test Club",
            "twitter:description": offer,
        },
        "canonical": f"https://klubb.example.com/r/{code}",
        "program": "Test Club",
        "h1": "You're invited to Test Club",
        "offer": offer,
        "h2": "Your friend's code",
        "code-value": code,
        "hint": "Enter it when you join in the app, or within 14 days after joining.",
        "buttons": [
            (f"https://app.example.com/invite/{code}", "Open in the app", True),
            (STORES_EN[0][0], STORES_EN[0][1], False),
            STORES_EN[1],
        ],
        "languages": [("?lang=sv", "Svenska")],
    }
    page.update(changes)
    return page


def friendly_page(title: str, body: str, **changes: Any) -> dict[str, Any]:
    """The page of a link that does not work (English, POLICY's stores)."""
    page = {
        "lang": "en",
        "title": f"{title} · Test Club",
        "meta": {
            "robots": "noindex",
            "viewport": "width=device-width, initial-scale=1",
            "description": body,
            "og:type": "website",
            "og:site_name": "Test Club",
            "og:title": f"{title} · Test Club",
            "og:description": body,
            "og:locale": "en_US",
            "og:locale:alternate": "sv_SE",
            "twitter:card": "summary",
            "twitter:title": f"{title} · Test Club",
            "twitter:description": body,
        },
        "program": "Test Club",
        "h1": title,
        "offer": body,
        "buttons": STORES_EN,
        "languages": [("?lang=sv", "Svenska")],
    }
    page.update(changes)
    return page


UNKNOWN_PAGE = friendly_page(
    "This invitation link doesn't work", "Ask your friend for a new one — or join Test Club anyway."
)
PAUSED_PAGE = friendly_page("Invitations are paused", "You can still join Test Club.")


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def http(db: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(app_settings(db, tmp_path)):
        yield client


@pytest.fixture
async def anna(program: Program) -> Member:
    """A member with a name, email, phone and number the page must never show, and the code CODE."""
    member, _ = await enroll_member("uid-anna", email="anna.andersson@example.com", display_name="Anna Andersson")
    await Member.filter(id=member.id).update(referral_code=CODE, phone="+46701234567")
    return await Member.get(id=member.id)


@pytest.fixture
async def policy(program: Program) -> ReferralPolicy:
    configured = await apply_referral_config(POLICY)
    assert configured is not None
    return configured


@pytest.fixture
def sql() -> Iterator[SQLCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = SQLCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    yield counter
    logger.removeHandler(counter)
    logger.setLevel(previous)


async def _written() -> dict[str, int]:
    """What a page could have written: members and the policy (it writes nothing)."""
    return {"members": await Member.all().count(), "policies": await ReferralPolicy.all().count()}


# --- a member's code --------------------------------------------------------------------------------------------------


async def test_a_members_code_shows_the_program_the_offer_the_code_and_the_buttons_in_english(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # given Anna's code and the policy (200 points from a first purchase of €20.00, all three links)
    # when a friend without language preferences opens her link
    response = await http.get(f"/r/{CODE}")

    # then the English page: program, offer, code, hint, three buttons (the app first), a switch to Swedish
    assert response.status_code == 200
    assert read(response) == english_page()


async def test_swedish_words_numbers_and_money(http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy) -> None:
    # given Anna's code; when a Swedish browser opens it
    response = await http.get(f"/r/{CODE}", headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"})

    # then the page is Swedish, money and points formatted the Swedish way
    offer = "Du får 200 poäng i välkomstbonus när du handlar för minst 20,00\u00a0€ första gången."
    assert response.status_code == 200
    assert response.headers["content-language"] == "sv"
    assert read(response) == english_page(
        lang="sv",
        title="Du är inbjuden till Test Club",
        meta={
            **english_page()["meta"],
            "description": offer,
            "og:title": "Du är inbjuden till Test Club",
            "og:description": offer,
            "og:locale": "sv_SE",
            "og:locale:alternate": "en_US",
            "twitter:title": "Du är inbjuden till Test Club",
            "twitter:description": offer,
        },
        h1="Du är inbjuden till Test Club",
        offer=offer,
        h2="Din väns kod",
        hint="Ange koden när du blir medlem i appen, eller inom 14 dagar efteråt.",
        buttons=[
            ("https://app.example.com/invite/ACDE3467", "Öppna i appen", True),
            (STORES_EN[0][0], "Hämta i App Store", False),
            (STORES_EN[1][0], "Ladda ned på Google Play", False),
        ],
        languages=[("?lang=en", "English")],
    )


@pytest.mark.parametrize(
    ("currency", "language", "points", "min_spend", "apply_days", "offer", "hint"),
    [
        ("SEK", "sv", 200, 2000, 14,
         "Du får 200 poäng i välkomstbonus när du handlar för minst 20,00\u00a0kr första gången.",
         "Ange koden när du blir medlem i appen, eller inom 14 dagar efteråt."),
        ("SEK", "en", 200, 2000, 14, "Get 200 bonus points with your first purchase of SEK20.00 or more.",  # CLDR
         "Enter it when you join in the app, or within 14 days after joining."),
        ("EUR", "en", 1000, 123456, 1, "Get 1,000 bonus points with your first purchase of €1,234.56 or more.",
         "Enter it when you join in the app, or within 1 day after joining."),
        ("EUR", "sv", 1000, 123456, 1,
         "Du får 1\u00a0000 poäng i välkomstbonus när du handlar för minst 1\u00a0234,56\u00a0€ första gången.",
         "Ange koden när du blir medlem i appen, eller inom 1 dag efteråt."),
        ("EUR", "en", 1, 0, 0, "Get 1 bonus point with your first purchase.", "Enter it when you join in the app."),
        ("EUR", "sv", 1, 0, 0, "Du får 1 poäng i välkomstbonus när du handlar första gången.",
         "Ange koden när du blir medlem i appen."),
        ("EUR", "en", 0, 2000, 14, "Join with your friend's code.",
         "Enter it when you join in the app, or within 14 days after joining."),
        ("EUR", "sv", 0, 2000, 14, "Bli medlem med din väns kod.",
         "Ange koden när du blir medlem i appen, eller inom 14 dagar efteråt."),
    ],
)  # fmt: skip
async def test_the_offer_follows_the_policy_and_the_language(
    http: httpx.AsyncClient,
    anna: Member,
    currency: str,
    language: str,
    points: int,
    min_spend: int,
    apply_days: int,
    offer: str,
    hint: str,
) -> None:
    # given the program in `currency` and a policy with `points` for a first purchase of `min_spend`
    await apply_program_config({**TEST_PROGRAM, "program": {**TEST_PROGRAM["program"], "currency": currency}})
    await apply_referral_config({"referee_points": points, "min_spend": min_spend, "apply_days": apply_days})

    # when the page is read in `language`
    page = read(await http.get(f"/r/{CODE}?lang={language}"))

    # then the offer (points and money in the language's format; no bonus: no promise) and the hint (the days left)
    assert (page["offer"], page["meta"]["og:description"], page["hint"]) == (offer, offer, hint)


async def test_program_names_and_configured_urls_are_escaped(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # given a program name and an app link with markup in them (the policy's URL check allows printable text)
    await apply_program_config({**TEST_PROGRAM, "program": {**TEST_PROGRAM["program"], "name": "Club <b>\"&'"}})
    await apply_referral_config({"open_app_url": 'https://app.example.com/i?c={code}&x="><script>alert(1)</script>'})

    # when the page is read
    response = await http.get(f"/r/{CODE}")

    # then every one of them is text: escaped in the markup, read back unchanged
    assert "<script>" not in response.text
    assert "<b>" not in response.text
    assert 'href="https://app.example.com/i?c=ACDE3467&amp;x=&#34;&gt;&lt;script&gt;' in response.text
    page = read(response)
    assert (page["program"], page["meta"]["og:site_name"], page["buttons"][0]) == (
        "Club <b>\"&'",
        "Club <b>\"&'",
        ('https://app.example.com/i?c=ACDE3467&x="><script>alert(1)</script>', "Open in the app", True),
    )


# --- the buttons ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "buttons"),
    [
        ({}, None),
        ({"play_store_url": POLICY["play_store_url"]}, [(POLICY["play_store_url"], "Get it on Google Play", True)]),
        ({"app_store_url": POLICY["app_store_url"]}, [(POLICY["app_store_url"], "Download on the App Store", True)]),
        (
            {"open_app_url": "https://app.example.com/join?code={code}&again={code}"},
            [("https://app.example.com/join?code=ACDE3467&again=ACDE3467", "Open in the app", True)],
        ),
        (
            {"open_app_url": "https://app.example.com/join", "play_store_url": POLICY["play_store_url"]},
            [
                ("https://app.example.com/join", "Open in the app", True),
                (POLICY["play_store_url"], "Get it on Google Play", False),
            ],
        ),
    ],
)
async def test_only_configured_links_become_buttons_with_the_code_in_the_app_link(
    http: httpx.AsyncClient, anna: Member, links: dict[str, str], buttons: list[tuple[str, str, bool]] | None
) -> None:
    # given a policy with only `links`
    await apply_referral_config({"referee_points": 200, **links})

    # when the page is read
    page = read(await http.get(f"/r/{CODE}"))

    # then exactly those buttons, the first one primary ({code} replaced everywhere); none: no button row at all
    assert page["buttons"] == (buttons or [])
    assert ('class="actions"' in (await http.get(f"/r/{CODE}")).text) is bool(buttons)


async def test_a_link_that_is_no_web_address_is_not_shown(http: httpx.AsyncClient, anna: Member) -> None:
    # given URLs written past the policy's checks (straight into the table): a script and a relative one
    await apply_referral_config({"referee_points": 200, "play_store_url": POLICY["play_store_url"]})
    await ReferralPolicy.all().update(app_store_url="javascript:alert(1)", open_app_url="//evil.example/{code}")

    # when the page is read
    response = await http.get(f"/r/{CODE}")

    # then only the web link is a button
    assert read(response)["buttons"] == [(POLICY["play_store_url"], "Get it on Google Play", True)]
    assert "javascript" not in response.text
    assert "evil" not in response.text


# --- which language -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        (None, None),
        ("", None),
        ("sv", "sv"),
        ("SV-se", "sv"),
        ("sv_SE", None),  # not a language range: ignored
        ("en-GB,en;q=0.9", "en"),
        ("de-DE,de;q=0.9,sv;q=0.2", "sv"),  # German first, but Swedish is acceptable and English is not
        ("de, fr;q=0.9", None),  # nothing we speak
        ("en;q=0.5, sv;q=0.8", "sv"),  # q, not order
        ("sv;q=0.5, en;q=0.5", "sv"),  # a tie: the first named
        ("sv-FI;q=0.1, en;q=0.5, sv;q=0.9", "sv"),  # a language's best range counts
        ("sv;q=0, en", "en"),
        ("sv;q=0", None),  # sv refused, nothing else named
        ("sv;q=0, en;q=0", None),
        ("sv;q=0.000, en;q=0.001", "en"),
        ("*", "en"),  # anything: the default first
        ("sv;q=0.4, *;q=0.5", "en"),  # the wildcard covers the default, above sv
        ("en;q=0, *", "sv"),  # the wildcard does not revive a refused language
        ("*;q=0, sv", "sv"),
        ("*;q=0", None),
        ("sv;q=1.5, en", "en"),  # q above 1: that entry ignored
        ("sv;q=0.1234, en", "en"),  # four decimals: ignored
        ("sv;q=abc, en;q=0.2", "en"),
        ("sv;q=, en;q=0.2", "en"),
        ("sv;level=1, en;q=0.2", "en"),  # a parameter other than q: ignored
        ("sv ; q = 0.8 , en ; q = 0.7", "sv"),  # whitespace around parameters is fine
        ("sv;Q=0.8, en;q=0.7", "sv"),
        (";;;,,,=,sv", "sv"),  # junk entries skipped, the good one kept
        ("<script>, sv", "sv"),
        ("sv\x00, en", "en"),
        ("toolonglanguage, sv", "sv"),  # a 15-letter subtag is no language range
        ("x" * 2000 + ", sv", None),  # an oversized header is ignored whole
        (",".join(["de"] * 40) + ",sv", None),  # only the first 32 entries count
    ],
)
def test_accept_language_is_read_with_q_values_and_its_edges(header: str | None, chosen: str | None) -> None:
    assert accepted_language(header, "en") == chosen


@pytest.mark.parametrize(
    ("lang", "header", "default", "chosen"),
    [
        ("sv", "en", "en", "sv"),  # ?lang= wins over the header
        ("SV", None, "en", "sv"),
        ("sv-SE", None, "en", "sv"),
        ("sv_FI", None, "en", "sv"),
        ("en", "sv", "sv", "en"),
        ("de", "sv", "en", "sv"),  # not ours: the header decides
        ("", "sv", "en", "sv"),
        ("s" * 100, None, "en", "en"),
        ("<sv>", None, "sv", "sv"),
        (None, None, "sv", "sv"),  # neither: the default
        (None, "de", "sv", "sv"),
        (None, "sv;q=0", "sv", "sv"),  # nothing acceptable: still a page, in the default
    ],
)
def test_lang_parameter_then_accept_language_then_the_default(
    lang: str | None, header: str | None, default: str, chosen: str
) -> None:
    assert choose_language(lang, header, default) == chosen


async def test_lang_overrides_the_browser_and_the_headers_say_which(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # given a Swedish browser; when it asks for English with ?lang=en, and for an unknown language with ?lang=de
    english = await http.get(f"/r/{CODE}?lang=en", headers={"Accept-Language": "sv"})
    unknown = await http.get(f"/r/{CODE}?lang=de", headers={"Accept-Language": "sv"})
    junk = await http.get(f"/r/{CODE}?lang=%00%3Cx%3E", headers={"Accept-Language": "sv"})

    # then English for the first; the browser's Swedish for the others (an unknown lang is ignored, never echoed)
    assert (english.headers["content-language"], read(english)["lang"]) == ("en", "en")
    assert (unknown.headers["content-language"], read(unknown)["lang"]) == ("sv", "sv")
    assert (junk.headers["content-language"], read(junk)["lang"]) == ("sv", "sv")
    assert "<x>" not in junk.text
    assert "&lt;x&gt;" not in junk.text
    assert {english.headers["vary"], unknown.headers["vary"]} == {"Accept-Language"}


async def test_the_default_language_is_a_setting(db: str, tmp_path: Path, anna: Member, policy: ReferralPolicy) -> None:
    # given KLUBB_REFERRAL_PAGE_LANGUAGE=sv
    settings = app_settings(db, tmp_path).model_copy(update={"referral_page_language": "sv"})
    async for http in _client(settings):
        # when a browser without preferences, and one preferring only German, open the link
        plain = await http.get(f"/r/{CODE}")
        german = await http.get(f"/r/{CODE}", headers={"Accept-Language": "de"})
        english = await http.get(f"/r/{CODE}", headers={"Accept-Language": "de, en;q=0.1"})

    # then Swedish for both, English where the browser accepts it
    assert [r.headers["content-language"] for r in (plain, german, english)] == ["sv", "sv", "en"]
    # and a language the catalogue lacks is refused at start-up
    with pytest.raises(ValueError, match="the referral page speaks en, sv, not 'de'"):
        ReferralPage("https://klubb.example.com", "de")


def test_every_language_has_every_message_with_the_same_placeholders() -> None:
    def shape(message: str | Plural) -> tuple[str, ...]:
        texts = (message.one, message.other) if isinstance(message, Plural) else (message,)
        return tuple(sorted({part.split("}")[0] for t in texts for part in t.split("{")[1:]}))

    english = {key: shape(message) for key, message in MESSAGES["en"].items()}
    assert set(MESSAGES) == set(LANGUAGES) == {"en", "sv"}
    assert {key: shape(message) for key, message in MESSAGES["sv"].items()} == english


# --- link previews ------------------------------------------------------------------------------------------------


async def test_open_graph_and_twitter_tags_use_the_canonical_link(
    db: str, tmp_path: Path, anna: Member, policy: ReferralPolicy
) -> None:
    # given a public URL with a path and a trailing slash
    settings = app_settings(db, tmp_path).model_copy(update={"public_url": "https://club.example.org/klubb/"})
    async for http in _client(settings):
        # when the link is previewed (a crawler: no language)
        response = await http.get(f"/r/{CODE}?utm_source=share")

    # then the tags name the canonical link (no query), the program, the offer and the language
    offer = "Get 200 bonus points with your first purchase of €20.00 or more."
    page = read(response)
    assert {key: value for key, value in page["meta"].items() if key.startswith(("og:", "twitter:"))} == {
        "og:type": "website",
        "og:site_name": "Test Club",
        "og:title": "You're invited to Test Club",
        "og:description": offer,
        "og:url": "https://club.example.org/klubb/r/ACDE3467",
        "og:locale": "en_US",
        "og:locale:alternate": "sv_SE",
        "twitter:card": "summary",
        "twitter:title": "You're invited to Test Club",
        "twitter:description": offer,
    }
    assert (page["canonical"], page["meta"]["robots"]) == ("https://club.example.org/klubb/r/ACDE3467", "noindex")


# --- what does not work ---------------------------------------------------------------------------------------------

HOSTILE = [
    UNKNOWN_CODE,  # well formed, nobody's
    "ACDE346",  # seven characters
    "ACDE34679",  # nine
    "ACDE3460",  # a zero: no look-alikes in codes
    "ACDE346O",  # the letter O
    "ACDE346I",
    "ACDE346L",
    "ACDE3461",
    "ACDE346S",
    "ACDE3465",
    "".join(chr(ord(c) + 0xFEE0) for c in CODE),  # CODE in full-width look-alikes
    "ACDE%003467",  # NUL
    "A" * 10240,  # 10 kB
    "%25%30%30",  # percent-encoded percent-encoding
    "%C3%28",  # invalid UTF-8
    "%E2%80%AEACDE3467",  # right-to-left override
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",
    "ACDE3467/..%2F..%2Fadmin",
    "ACDE3467/extra",
    "",
    "'%20OR%201=1--",
]


@pytest.mark.parametrize("path", HOSTILE)
async def test_anything_but_a_members_code_gets_the_same_friendly_page(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy, path: str
) -> None:
    # given Anna's code works; when a link with `path` is opened
    before = await _written()
    response = await http.get(f"/r/{path}")

    # then a 404 with the friendly page (stores still offered), byte for byte the page of any unknown code
    assert response.status_code == 404
    assert read(response) == UNKNOWN_PAGE
    assert response.text == (await http.get(f"/r/{UNKNOWN_CODE}")).text
    # nothing typed into the link is in the page, and nothing was written
    assert not any(echo in response.text for echo in ("<script", "alert(", "onerror", "AAAAAAAA", "admin", "extra"))
    assert await _written() == before


async def test_a_valid_page_says_nothing_about_the_member(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # given Anna and Bo, who has invited people before (his code given by code_of)
    bo, _ = await enroll_member("uid-bo", email="bo@example.com", display_name="Bo Berg")
    await Member.filter(id=bo.id).update(referral_code=OTHER_CODE)
    assert await code_of(bo.id) == OTHER_CODE

    # when both links are opened
    hers = (await http.get(f"/r/{CODE}")).text
    his = (await http.get(f"/r/{OTHER_CODE}")).text

    # then neither page has a name, an email, a phone or a member number in it
    for text_of_member in ("Anna", "Andersson", "anna.andersson", "@example.com", "46701234567", anna.member_number):
        assert text_of_member not in hers
    for text_of_member in ("Bo Berg", "bo@", bo.member_number):
        assert text_of_member not in his
    # and the two pages differ by the code alone
    assert hers.replace(CODE, OTHER_CODE) == his


@pytest.mark.parametrize("switch", ["off", "never configured"])
async def test_referrals_off_every_link_gets_the_paused_page(
    http: httpx.AsyncClient, anna: Member, sql: SQLCounter, switch: str
) -> None:
    # given referrals switched off (or no [referrals] policy at all)
    if switch == "off":
        await apply_referral_config({**POLICY, "enabled": False})
    await http.get(f"/r/{UNKNOWN_CODE}")  # the configuration snapshot is loaded
    sql.statements.clear()

    # when Anna's link and an unknown one are opened
    hers = await http.get(f"/r/{CODE}")
    unknown = await http.get(f"/r/{UNKNOWN_CODE}")

    # then both get the paused page (the stores if configured), alike, for one statement each
    stores = STORES_EN if switch == "off" else []
    assert (hers.status_code, unknown.status_code) == (404, 404)
    assert read(hers) == friendly_page("Invitations are paused", "You can still join Test Club.", buttons=stores)
    assert hers.text == unknown.text
    assert len(sql.statements) == 2


async def test_switching_referrals_back_on_shows_at_once(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # given the page read while referrals were on, then off
    assert (await http.get(f"/r/{CODE}")).status_code == 200
    await apply_referral_config({"enabled": False})
    paused = await http.get(f"/r/{CODE}")

    # when they are on again with a bigger bonus
    await apply_referral_config({"enabled": True, "referee_points": 500})
    again = await http.get(f"/r/{CODE}")

    # then each page followed the policy at once (the configuration's version, not a timer)
    assert (paused.status_code, read(paused)) == (404, PAUSED_PAGE)
    assert (again.status_code, read(again)["offer"]) == (
        200,
        "Get 500 bonus points with your first purchase of €20.00 or more.",
    )


async def test_before_the_program_is_seeded_the_page_is_unavailable(http: httpx.AsyncClient, db: str) -> None:
    # given an empty database; when a link is opened
    response = await http.get(f"/r/{CODE}")

    # then 503, plain text, not cached
    assert (response.status_code, response.text, response.headers["cache-control"]) == (
        503,
        "the program is not configured yet",
        "no-store",
    )


# --- redirect, HEAD, headers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "location"),
    [
        ("acde3467", "ACDE3467"),
        ("ACDE-3467", "ACDE3467"),
        ("acde%203467", "ACDE3467"),
        ("a.c.d.e_3-4-6-7", "ACDE3467"),
        ("Acde3467?lang=sv-SE", "ACDE3467?lang=sv"),
        ("acde3467?lang=de", "ACDE3467"),  # a language we lack is dropped
        ("acde3467?lang=%0D%0ALocation:%20x", "ACDE3467"),
        ("qrtu-6796", "QRTU6796"),  # nobody's code redirects alike: the redirect looks nothing up
    ],
)
async def test_a_code_typed_loosely_redirects_to_the_canonical_link(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy, sql: SQLCounter, typed: str, location: str
) -> None:
    # when the link is opened as typed (GET and HEAD)
    sql.statements.clear()
    responses = [await http.request(method, f"/r/{typed}") for method in ("GET", "HEAD")]

    # then a permanent redirect to the canonical path (relative: /r/<location>), cacheable, with the security headers
    # and no statement; followed, it is the page
    for response in responses:
        assert (response.status_code, response.content) == (301, b"")
        assert dict(response.headers) == {
            **SECURITY,
            "location": location,
            "cache-control": "public, max-age=86400",
            "content-length": "0",
        }
    assert sql.statements == []
    followed = await http.get(f"/r/{typed}", follow_redirects=True)
    assert (followed.url.path, followed.status_code) == (
        f"/r/{location.split('?')[0]}",
        404 if "QRTU" in location else 200,
    )


async def test_head_answers_like_get_without_the_body(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    for path, status in ((CODE, 200), (UNKNOWN_CODE, 404), ("%00", 404)):
        # when the same link is asked for with GET and HEAD
        get = await http.get(f"/r/{path}", headers={"Accept-Language": "sv"})
        head = await http.head(f"/r/{path}", headers={"Accept-Language": "sv"})

        # then the same status and headers (Content-Length of the page), and no body
        assert (head.status_code, get.status_code, head.content) == (status, status, b"")
        assert dict(head.headers) == dict(get.headers)
        assert head.headers["content-length"] == str(len(get.content))


async def test_the_headers_of_a_page_and_of_the_friendly_page(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy
) -> None:
    # when a member's code and an unknown one are opened
    valid = await http.get(f"/r/{CODE}")
    unknown = await http.get(f"/r/{UNKNOWN_CODE}", headers={"Accept-Language": "sv"})

    # then cacheable HTML in the chosen language, varying by Accept-Language, with the security headers
    common = {**SECURITY, "content-type": "text/html; charset=utf-8", "vary": "Accept-Language"}
    assert dict(valid.headers) == {
        **common,
        "content-language": "en",
        "cache-control": "public, max-age=300",
        "content-length": str(len(valid.content)),
    }
    assert dict(unknown.headers) == {
        **common,
        "content-language": "sv",
        "cache-control": "public, max-age=60",
        "content-length": str(len(unknown.content)),
    }
    # the one style element is exactly what the CSP's hash allows; no script, no external asset
    for response in (valid, unknown):
        page = Page(response.text)
        assert page.style == CSS
        assert "<script" not in response.text
        assert "src=" not in response.text
        assert "@import" not in response.text
        assert "url(" not in response.text
        assert '<link rel="stylesheet"' not in response.text
        assert len(response.content) < 8 * 1024


async def test_other_methods_are_refused(http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy) -> None:
    responses = [await http.request(method, f"/r/{CODE}") for method in ("POST", "PUT", "DELETE")]

    assert [r.status_code for r in responses] == [405, 405, 405]


# --- cost -----------------------------------------------------------------------------------------------------------


async def test_one_statement_per_request_whatever_the_code(
    http: httpx.AsyncClient, anna: Member, policy: ReferralPolicy, sql: SQLCounter
) -> None:
    # given the configuration snapshot loaded by a first request
    await http.get(f"/r/{UNKNOWN_CODE}")
    statements: dict[str, int] = {}

    for name, path in (("valid", CODE), ("unknown", UNKNOWN_CODE), ("malformed", "%00"), ("head", CODE)):
        # when a link is opened
        sql.statements.clear()
        await http.request("HEAD" if name == "head" else "GET", f"/r/{path}")
        statements[name] = len(sql.statements)

    # then one statement each: the program's version with the code's holder, or the version alone
    assert statements == {"valid": 1, "unknown": 1, "malformed": 1, "head": 1}


async def test_a_member_given_a_code_by_code_of_is_found(
    http: httpx.AsyncClient, program: Program, policy: ReferralPolicy
) -> None:
    # given a member whose code was drawn on first use
    member, _ = await enroll_member("uid-cara", email="cara@example.com", display_name="Cara")
    code = await code_of(member.id)
    assert len(code) == 8
    assert set(code) <= set(CODE_ALPHABET)

    # when their link is opened
    response = await http.get(f"/r/{code}")

    # then it is their page
    assert (response.status_code, read(response)) == (200, english_page(code))
