"""Money for people to read: the one formatter of amounts in messages and the console."""

from __future__ import annotations

import pytest

from loyalty.money import format_money


@pytest.mark.parametrize(
    ("minor", "currency", "exponent", "shown"),
    [
        (3_000, "EUR", 2, "€30.00"),
        (5, "EUR", 2, "€0.05"),
        (0, "EUR", 2, "€0.00"),
        (2**31, "EUR", 2, "€21,474,836.48"),
        (-150, "SEK", 2, "-1.50 SEK"),
        (123_456_789, "SEK", 2, "1,234,567.89 SEK"),
        (1_000, "JPY", 0, "¥1,000"),
        (1_234_567, "KWD", 3, "1,234.567 KWD"),
        (-99, "USD", 2, "-$0.99"),
    ],
)
def test_amounts_are_shown_in_their_currency(minor: int, currency: str, exponent: int, shown: str) -> None:
    assert format_money(minor, currency, exponent) == shown
