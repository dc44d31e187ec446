"""Keys from outside: canonical decimal within the column's range, or nothing."""

from __future__ import annotations

import pytest

from loyalty.keys import INT32, INT64, KeyRange, primary_keys
from loyalty.models import LedgerEntry, Member, Offer


def test_primary_keys_are_the_columns_range_from_one() -> None:
    assert primary_keys(Member) == primary_keys(Offer) == KeyRange(1, 2**31 - 1)  # IntField
    assert primary_keys(LedgerEntry) == KeyRange(1, 2**63 - 1)  # BigIntField


@pytest.mark.parametrize(
    ("keys", "text", "value"),
    [
        (INT32, "0", 0),
        (INT32, "-7", -7),
        (INT32, str(2**31 - 1), 2**31 - 1),
        (INT32, str(-(2**31)), -(2**31)),
        (INT32, str(2**31), None),
        (INT32, str(-(2**31) - 1), None),
        (INT64, str(2**63), None),
        (INT64, "9" * 5000, None),  # refused by its length: int() itself raises beyond 4300 digits
        (KeyRange(1, 10**30), "1" + "0" * 30, 10**30),
        (KeyRange(1, 9), "-1", None),  # no sign where the range has no negatives
        (INT32, "-0", None),
        (INT32, "-07", None),
        (INT32, "07", None),
        (INT32, "+7", None),
        (INT32, "- 7", None),
        (INT32, "7.0", None),
        (INT32, "\N{SUPERSCRIPT TWO}", None),
        (INT32, "\N{ARABIC-INDIC DIGIT SEVEN}", None),
        (INT32, "\N{MINUS SIGN}7", None),
        (INT32, "", None),
        (INT32, "-", None),
    ],
)
def test_a_key_is_read_only_in_canonical_decimal_within_its_range(keys: KeyRange, text: str, value: int | None) -> None:
    assert keys.parse(text) == value
