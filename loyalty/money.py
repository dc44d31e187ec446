"""Money as people read it: integer minor units shown in the program's currency ("€30.00", "1,234.50 SEK").

The one formatter for every message a cashier or member reads (domain errors, the console). Amounts stay integer
minor units everywhere else.
"""

from __future__ import annotations

# Currencies written with a symbol before the amount; every other currency is written as the amount and its code.
_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


def format_money(minor: int, currency: str, exponent: int = 2) -> str:
    """`minor` units of `currency` (with `exponent` decimals, the program's `currency_exponent`) for display.

    Grouped thousands and exactly `exponent` decimals, e.g. `format_money(300000, "EUR")` is "€3,000.00",
    `format_money(-150, "SEK")` is "-1.50 SEK", `format_money(1000, "JPY", 0)` is "¥1,000".
    """
    sign = "-" if minor < 0 else ""
    major, fraction = divmod(abs(minor), 10**exponent)
    number = f"{major:,}" + (f".{fraction:0{exponent}d}" if exponent > 0 else "")
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"
