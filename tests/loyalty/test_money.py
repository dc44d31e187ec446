"""Money as text: one formatter for what a person reads, one parser for what a cashier types."""

from __future__ import annotations

import pytest

from loyalty.errors import InvalidInput, RefundExceedsPurchase
from loyalty.money import format_money, minor_digits, parse_money
from loyalty.offers import MinSpendNotMet
from loyalty.purchases import LinesTotalMismatch


@pytest.mark.parametrize(
    ("minor", "currency", "locale", "exponent", "text"),
    [
        (3000, "EUR", None, None, "€30.00"),
        (5, "EUR", None, None, "€0.05"),
        (0, "EUR", None, None, "€0.00"),
        (-1250, "EUR", None, None, "-€12.50"),
        (123456789, "EUR", None, None, "€1,234,567.89"),
        (3000, "EUR", "sv_SE", None, "30,00\xa0€"),
        (123456789, "EUR", "de_DE", None, "1.234.567,89\xa0€"),
        (300, "JPY", None, None, "¥300"),
        (1234, "KWD", None, None, "KWD1.234"),
        (3000, "SEK", "sv_SE", None, "30,00\xa0kr"),
        # A program whose exponent is not the ISO minor unit: its own digits, the locale's pattern.
        (300, "EUR", None, 0, "€300"),
        (12345, "JPY", None, 2, "¥123.45"),
        (12345, "EUR", "sv_SE", 3, "12,345\xa0€"),
    ],
)
def test_amounts_are_written_as_people_read_them(
    minor: int, currency: str, locale: str | None, exponent: int | None, text: str
) -> None:
    assert format_money(minor, currency, locale, exponent=exponent) == text


def test_minor_digits_are_iso_4217() -> None:
    assert [minor_digits(c) for c in ("EUR", "JPY", "KWD", "SEK")] == [2, 0, 3, 2]


@pytest.mark.parametrize(
    ("text", "exponent", "minor"),
    [("12.50", 2, 1250), ("12,50", 2, 1250), (" 12 ", 2, 1200), ("0", 2, 0), ("0.05", 2, 5), ("300", 0, 300)],
)
def test_typed_amounts_become_minor_units(text: str, exponent: int, minor: int) -> None:
    assert parse_money(text, exponent, "The total") == minor


@pytest.mark.parametrize(
    "text", ["", "abc", "-1", "12.345", "1.5e-3", "NaN", "Infinity", "9e99999", "9e999999", "1e30"]
)
def test_anything_else_typed_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_money(text, 2, "The total")

    assert refused.value.message == "The total must be an amount like 12.50"


def test_refusals_carry_their_amounts_typed_and_word_them_with_the_callers_formatter() -> None:
    def euros(minor: int) -> str:
        return format_money(minor, "EUR")

    refund = RefundExceedsPurchase("only 3000 of this purchase is left to refund", field="amount", amount_left=3000)
    lines = LinesTotalMismatch(lines_total=4200, total=4000)
    spend = MinSpendNotMet(min_spend=1500)
    items = RefundExceedsPurchase("line 1: only 2 left to refund", field="lines")

    assert (refund.amount_left, lines.lines_total, lines.total, spend.min_spend) == (3000, 4200, 4000, 1500)
    assert [e.describe(euros) for e in (refund, lines, spend, items)] == [
        "only €30.00 of this purchase is left to refund",
        "the lines that are not voided add up to €42.00, not €40.00",
        "this offer needs a purchase of at least €15.00",
        "line 1: only 2 left to refund",
    ]
    # The APIs' message keeps plain minor units, as before.
    assert [e.message for e in (refund, lines, spend)] == [
        "only 3000 of this purchase is left to refund",
        "the lines that are not voided add up to 4200, not 4000",
        "this offer needs a purchase of at least 1500",
    ]
    assert (lines.field, spend.field) == ("total", "purchase_total")
