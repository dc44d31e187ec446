"""The referral link's landing page, `GET`/`HEAD /r/<code>`: what a friend sees when they open a member's link.

Server-rendered (Jinja2, `api/templates/referral_page.html`), one small self-contained document: inline CSS allowed by
its hash in the CSP, no script, no image, no external asset, phone-first, light and dark. It shows the program's
name, the friend's offer (`[referrals]` policy: `referee_points`, `min_spend`, `apply_days`), the code (large,
`user-select: all`) and buttons to open the app (`open_app_url` with `{code}` replaced) and to the App Store and
Google Play, each only when configured; Open Graph and Twitter card tags for link previews (`og:url` = the canonical
link under `Settings.public_url`); `noindex`.

Answers:
- a member's code, canonical (`/r/ACDE3467`): 200, `Cache-Control: public, max-age=300`;
- a code typed loosely (`/r/acde-3467`): 301 to `/r/ACDE3467` (`Location: ACDE3467`, keeping a valid `?lang=`),
  looked up by nobody, so a known and an unknown code redirect alike;
- anything else (nobody's code, not a code at all, hostile text, referrals off or not configured): 404 with a
  friendly page ("this invitation link doesn't work — you can still join", or "invitations are paused") and the
  store buttons; it never repeats the path, so nothing typed into a link is echoed into the page;
- the program not seeded: 503; the database down: 503 (`ServiceUnavailableMiddleware`, as a page).

The page never says anything about the member behind a code (no name, number or count): `loyalty.invitations` does
not read the member's row. One statement per request (`loyalty.invitations.invitation`); none for a redirect.

Language: `?lang=`, then `Accept-Language`, then `Settings.referral_page_language` (`api/referral_texts.py`, English
and Swedish); `Content-Language` names it and `Vary: Accept-Language` tells caches. Every answer carries the
security headers (`SECURITY_HEADERS`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from api.referral_texts import LANGUAGES, choose_language, count, language_of, money, text
from api.unavailable import ServiceUnavailableMiddleware
from loyalty.errors import ProgramNotConfigured
from loyalty.invitations import Invitation, InvitationState, invitation
from loyalty.referrals import normalize_code

TEMPLATES: Final = Path(__file__).parent / "templates"
CSS: Final = (TEMPLATES / "referral_page.css").read_text(encoding="utf-8").strip()
_CSS_HASH: Final = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
SECURITY_HEADERS: Final = {
    "content-security-policy": (
        f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",  # the code stays out of what the stores and the app's site are told
    "x-frame-options": "DENY",
}
PAGE_CACHE: Final = "public, max-age=300"
NOT_FOUND_CACHE: Final = "public, max-age=60"
REDIRECT_CACHE: Final = "public, max-age=86400"  # a function of the path alone
_environment: Final = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_template: Final = _environment.get_template("referral_page.html")


@dataclass(frozen=True)
class Link:
    href: str
    label: str
    primary: bool = False


def _web_url(url: str) -> str | None:
    """`url` if it is one a button may point at (http or https), else None (not configured, or not a web URL)."""
    return url if url.startswith(("https://", "http://")) else None


def _links(facts: Invitation, language: str) -> list[Link]:
    """The buttons: open the app with the code (valid codes only), then the stores, each only when configured."""
    links = []
    if facts.code is not None and (open_app := _web_url(facts.open_app_url)):
        links.append(Link(open_app.replace("{code}", quote(facts.code, safe="")), text(language, "invited.open_app")))
    if store := _web_url(facts.app_store_url):
        links.append(Link(store, text(language, "app_store")))
    if store := _web_url(facts.play_store_url):
        links.append(Link(store, text(language, "play_store")))
    if links:
        links[0] = Link(links[0].href, links[0].label, primary=True)
    return links


def _offer(facts: Invitation, language: str) -> str:
    """What the friend gets, in one sentence."""
    if facts.referee_points <= 0:
        return text(language, "invited.no_offer")
    points = count(language, "points", facts.referee_points)
    if facts.min_spend <= 0:
        return text(language, "invited.offer", points=points)
    amount = money(language, facts.min_spend, facts.currency, facts.currency_exponent)
    return text(language, "invited.offer_min_spend", points=points, amount=amount)


@lru_cache(maxsize=1024)
def render(facts: Invitation, language: str, public_url: str) -> bytes:
    """The page for `facts` in `language`; `public_url` makes the canonical link. A function of its arguments alone,
    so it is kept: every unknown code and paused link shares one page per language, a code shared widely gets its
    page made once (an entry is 3-4 kB; a changed policy is another `facts`)."""
    program = facts.program_name
    others = [other for code, other in LANGUAGES.items() if code != language]
    values: dict[str, object] = {}
    if facts.state is InvitationState.VALID and facts.code is not None:
        heading = title = text(language, "invited.title", program=program)
        description = _offer(facts, language)
        hint = (
            text(language, "invited.code_hint_days", days=count(language, "days", facts.apply_days))
            if facts.apply_days > 0
            else text(language, "invited.code_hint")
        )
        values = {
            "code": facts.code,
            "code_label": text(language, "invited.code_label"),
            "code_hint": hint,
            "canonical": f"{public_url.rstrip('/')}/r/{facts.code}",
        }
    else:
        kind = "paused" if facts.state is InvitationState.PAUSED else "unknown"
        heading = text(language, f"{kind}.title")
        title = f"{heading} · {program}"
        description = text(language, f"{kind}.body", program=program)
    return _template.render(
        language=LANGUAGES[language],
        others=others,
        program=program,
        title=title,
        heading=heading,
        description=description,
        links=_links(facts, language),
        language_switch=text(language, "language_switch"),
        css=Markup(CSS),  # noqa: S704 - our own file, not input; the CSP allows exactly this text
        **values,
    ).encode()


def _answer(request: Request, status: int, body: bytes, headers: dict[str, str]) -> Response:
    """`body` with `headers` (and the security headers), or for HEAD the same headers without the body."""
    headers = {**SECURITY_HEADERS, **headers, "content-length": str(len(body))}
    return Response(b"" if request.method == "HEAD" else body, status, headers)


class ReferralPage:
    """The `/r/<code>` endpoint. `public_url` makes the canonical link; `default_language` is a catalogue language."""

    def __init__(self, public_url: str, default_language: str) -> None:
        if default_language not in LANGUAGES:
            raise ValueError(f"the referral page speaks {', '.join(LANGUAGES)}, not {default_language!r}")
        self.public_url = public_url
        self.default_language = default_language

    def routes(self) -> list[BaseRoute]:
        """`/r/{anything}` (a path, so that even a slash in the junk gets the friendly page), GET and HEAD, under a
        503 page while the database is down."""
        return [
            Mount(
                "/r",
                routes=[Route("/{code:path}", self.page, methods=["GET", "HEAD"])],
                middleware=[Middleware(ServiceUnavailableMiddleware, html=True)],
            )
        ]

    async def page(self, request: Request) -> Response:
        raw = request.path_params["code"]
        code = normalize_code(raw)
        lang = request.query_params.get("lang")
        if code is not None and code != raw:
            query = f"?lang={chosen}" if lang is not None and (chosen := language_of(lang)) else ""
            # A relative reference ("ACDE3467" next to "acde-3467": a code never holds a slash), right behind a proxy
            # that serves klubb under a path prefix too.
            return _answer(request, 301, b"", {"location": f"{code}{query}", "cache-control": REDIRECT_CACHE})
        language = choose_language(lang, request.headers.get("accept-language"), self.default_language)
        try:
            facts = await invitation(code)
        except ProgramNotConfigured:
            plain = {"content-type": "text/plain; charset=utf-8", "cache-control": "no-store"}
            return _answer(request, 503, b"the program is not configured yet", plain)
        valid = facts.state is InvitationState.VALID
        return _answer(
            request,
            200 if valid else 404,
            render(facts, language, self.public_url),
            {
                "content-type": "text/html; charset=utf-8",
                "content-language": language,
                "vary": "Accept-Language",
                "cache-control": PAGE_CACHE if valid else NOT_FOUND_CACHE,
            },
        )
