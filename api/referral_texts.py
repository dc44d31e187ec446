"""The referral landing page's words in each language, and which language a request gets.

One catalogue, `MESSAGES`: message id → text per language, `{name}` placeholders filled by `text`; a text that
depends on a number is a `Plural` (CLDR's plural category of that number in the language, from Babel). Numbers and
money are formatted per language by Babel (`points`, `days`, `money` through `loyalty.money.format_money`): "1,000
bonus points" / "1 000 poäng", "€20.00" / "20,00 €", "SEK 20.00" / "20,00 kr".

`choose_language(lang, accept_language, default)`: `?lang=` when it names a language of the catalogue ("sv",
"SV", "sv-SE", "sv_FI"), else the `Accept-Language` header (RFC 9110 §12.5.4: q-values, `*`, `q=0` = not
acceptable; entries that do not parse are ignored, an oversized header is ignored whole), else `default`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from babel import Locale
from babel.numbers import format_decimal

from loyalty.money import format_money


@dataclass(frozen=True)
class Language:
    code: str  # the page's `lang`, Content-Language and ?lang= value
    name: str  # in itself: the language switch's label
    babel: str  # the CLDR locale numbers and money are formatted in
    og_locale: str  # Open Graph's language_TERRITORY


LANGUAGES: Final = {
    "en": Language("en", "English", "en", "en_US"),
    "sv": Language("sv", "Svenska", "sv_SE", "sv_SE"),
}


@dataclass(frozen=True)
class Plural:
    one: str
    other: str


MESSAGES: Final[dict[str, dict[str, str | Plural]]] = {
    "en": {
        "points": Plural("{n} bonus point", "{n} bonus points"),
        "days": Plural("{n} day", "{n} days"),
        "invited.title": "You're invited to {program}",
        "invited.offer_min_spend": "Get {points} with your first purchase of {amount} or more.",
        "invited.offer": "Get {points} with your first purchase.",
        "invited.no_offer": "Join with your friend's code.",
        "invited.code_label": "Your friend's code",
        "invited.code_hint": "Enter it when you join in the app.",
        "invited.code_hint_days": "Enter it when you join in the app, or within {days} after joining.",
        "invited.open_app": "Open in the app",
        "unknown.title": "This invitation link doesn't work",
        "unknown.body": "Ask your friend for a new one — or join {program} anyway.",
        "paused.title": "Invitations are paused",
        "paused.body": "You can still join {program}.",
        "app_store": "Download on the App Store",
        "play_store": "Get it on Google Play",
        "language_switch": "Language",
    },
    "sv": {
        "points": Plural("{n} poäng", "{n} poäng"),
        "days": Plural("{n} dag", "{n} dagar"),
        "invited.title": "Du är inbjuden till {program}",
        "invited.offer_min_spend": "Du får {points} i välkomstbonus när du handlar för minst {amount} första gången.",
        "invited.offer": "Du får {points} i välkomstbonus när du handlar första gången.",
        "invited.no_offer": "Bli medlem med din väns kod.",
        "invited.code_label": "Din väns kod",
        "invited.code_hint": "Ange koden när du blir medlem i appen.",
        "invited.code_hint_days": "Ange koden när du blir medlem i appen, eller inom {days} efteråt.",
        "invited.open_app": "Öppna i appen",
        "unknown.title": "Den här inbjudningslänken fungerar inte",
        "unknown.body": "Be din vän om en ny, eller bli medlem i {program} ändå.",
        "paused.title": "Inbjudningar är pausade just nu",
        "paused.body": "Du kan fortfarande bli medlem i {program}.",
        "app_store": "Hämta i App Store",
        "play_store": "Ladda ned på Google Play",
        "language_switch": "Språk",
    },
}

_LOCALES: Final = {code: Locale.parse(language.babel) for code, language in LANGUAGES.items()}


def text(language: str, message_id: str, /, **values: object) -> str:
    """The message `message_id` in `language`, its `{placeholders}` filled from `values`."""
    message = MESSAGES[language][message_id]
    if isinstance(message, Plural):
        raise TypeError(f"{message_id} is a plural: use count()")
    return message.format(**values)


def count(language: str, message_id: str, n: int) -> str:
    """The plural message `message_id` for `n` in `language`, `n` formatted per locale ("1 000 poäng")."""
    message = MESSAGES[language][message_id]
    if not isinstance(message, Plural):
        raise TypeError(f"{message_id} is not a plural")
    form = message.one if _LOCALES[language].plural_form(n) == "one" else message.other
    return form.format(n=format_decimal(n, locale=_LOCALES[language]))


def money(language: str, minor: int, currency: str, exponent: int) -> str:
    """`minor` units of `currency` as read in `language` ("€20.00", "20,00 kr")."""
    return format_money(minor, currency, LANGUAGES[language].babel, exponent=exponent)


# --- which language ------------------------------------------------------------------------------------------------

MAX_HEADER: Final = 1024  # a longer Accept-Language is ignored (browsers send well under 200 characters)
MAX_ENTRIES: Final = 32
_RANGE: Final = re.compile(r"\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_QVALUE: Final = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_PARAMETER: Final = re.compile(r"[qQ]\s*=\s*(.*)")


def language_of(tag: str) -> str | None:
    """The catalogue's language a language tag names ("sv-SE" → "sv"), or None."""
    if len(tag) > 35:  # RFC 5646's longest well-formed tags are shorter
        return None
    primary = tag.replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None


def _ranges(header: str) -> list[tuple[str, float]]:
    """(language range lower-cased, q) of each well-formed entry, in the header's order."""
    if len(header) > MAX_HEADER:
        return []
    found = []
    for entry in header.split(",")[:MAX_ENTRIES]:
        tag, *parameters = (part.strip() for part in entry.split(";"))
        if not _RANGE.fullmatch(tag):
            continue
        q = 1.0
        for parameter in parameters:
            weight = _PARAMETER.fullmatch(parameter)
            if weight is None or not _QVALUE.fullmatch(weight.group(1).strip()):
                break
            q = float(weight.group(1))
        else:
            found.append((tag.lower(), q))
    return found


def accepted_language(header: str | None, default: str) -> str | None:
    """The catalogue's language `header` (an Accept-Language value) prefers, or None when it accepts none.

    A language's weight is the highest q of the ranges naming it ("sv-FI;q=0.3, sv;q=0.8" → 0.8), or the
    wildcard's for a language no range names (`*` then offers `default` first); q=0 excludes; ties go to the
    first named.
    """
    weights: dict[str, float] = {}
    order: list[str] = []
    wildcard: float | None = None
    for tag, q in _ranges(header or ""):
        if tag == "*":
            wildcard = q if wildcard is None else max(wildcard, q)
            continue
        language = language_of(tag)
        if language is None:
            continue
        if language not in weights:
            order.append(language)
        weights[language] = max(weights.get(language, 0.0), q)
    if wildcard is not None:
        for language in (default, *LANGUAGES):
            if language not in weights:
                weights[language] = wildcard
                order.append(language)
    best = max(order, key=lambda language: (weights[language], -order.index(language)), default=None)
    return best if best is not None and weights[best] > 0 else None


def choose_language(lang: str | None, accept_language: str | None, default: str) -> str:
    """The page's language: `?lang=` if it names one of ours, else the best of `Accept-Language`, else `default`."""
    if lang is not None and (chosen := language_of(lang)) is not None:
        return chosen
    return accepted_language(accept_language, default) or default
