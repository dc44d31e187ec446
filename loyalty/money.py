"""Money as a person reads it: integer minor units of a currency as text ("€30.00"), and back from what is typed.

Amounts are integer minor units everywhere in klubb; only what a person reads or types is text. The currency's
symbol, the grouping and where the symbol goes come from Babel's locale data (CLDR). The number of minor digits is
the program's `currency_exponent` where the caller has one (it is the one the earning rules use), else the ISO 4217
minor unit of the currency.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel import Locale
from babel.numbers import format_currency, get_currency_precision

from loyalty.checks import MAX_MONEY
from loyalty.errors import InvalidInput

DEFAULT_LOCALE = "en"
# The fraction digits of a CLDR currency pattern ("¤#,##0.00", "#,##0.00 ¤"), to put the program's exponent in.
_FRACTION = re.compile(r"0\.0+|0(?![0.])")


def minor_digits(currency: str) -> int:
    """The ISO 4217 minor unit of `currency` (EUR 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(currency))


def format_money(minor: int, currency: str, locale: str | None = None, *, exponent: int | None = None) -> str:
    """`minor` units of `currency` as a person reads them: format_money(3000, "EUR") == "€30.00".

    `exponent` is the number of minor digits (default: the currency's ISO minor unit); `locale` a CLDR locale
    name (default English: "€30.00"; "sv_SE" gives "30,00 €").
    """
    digits = minor_digits(currency) if exponent is None else exponent
    value = Decimal(minor).scaleb(-digits)
    place = Locale.parse(locale or DEFAULT_LOCALE)
    if digits == minor_digits(currency):
        return str(format_currency(value, currency, locale=place))
    # A program whose exponent is not the ISO one: the locale's pattern with that many fraction digits.
    fraction = "0" + ("." + "0" * digits if digits else "")
    pattern = place.currency_formats["standard"].pattern
    return str(format_currency(value, currency, _FRACTION.sub(fraction, pattern), locale=place, currency_digits=False))


def parse_money(text: str, exponent: int, label: str) -> int:
    """Minor units from what a person types ("12.50", "12,50", "12"); `InvalidInput` naming `label` otherwise.

    Refused: not a number, negative, more decimals than the currency has, above `checks.MAX_MONEY`.
    """
    try:
        minor = Decimal(text.strip().replace(",", ".")).scaleb(exponent)
    except ArithmeticError:  # not a number (InvalidOperation), or beyond Decimal's exponent range (Overflow)
        minor = Decimal("NaN")
    # Bounded before int(): "9e99999" must not become a hundred-thousand-digit number.
    if not minor.is_finite() or not 0 <= minor <= MAX_MONEY or minor != minor.to_integral_value():
        example = f"{Decimal(1250).scaleb(-exponent):.{exponent}f}"
        raise InvalidInput(f"{label} must be an amount like {example}")
    return int(minor)
