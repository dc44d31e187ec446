"""The shared input checks, at their edges: each refusal is `InvalidInput` with the field and a message in words."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loyalty.checks import (
    FUTURE_TOLERANCE,
    MAX_MONEY,
    MAX_POINTS,
    MAX_STORE_CODE,
    check_amount,
    check_code,
    check_idempotency_key,
    check_occurred_at,
    check_store_code,
    check_text,
    clean_text,
    is_clean_text,
    is_whole,
)
from loyalty.clock import FrozenClock
from loyalty.errors import InvalidInput


def _refusal(check: object, *args: object, **kwargs: object) -> tuple[str, str | None, str]:
    assert callable(check)
    with pytest.raises(InvalidInput) as refused:
        check(*args, **kwargs)
    return refused.value.code, refused.value.field, refused.value.message


@pytest.mark.parametrize(
    ("value", "whole"),
    [(0, True), (10, True), (-1, False), (11, False), (True, False), (False, False), (1.0, False), ("1", False)],
)
def test_whole_numbers_are_ints_in_range_and_never_booleans(value: object, whole: bool) -> None:
    assert is_whole(value, 0, 10) is whole


@pytest.mark.parametrize("value", [1, MAX_MONEY])
def test_an_amount_from_1_to_the_maximum_passes(value: int) -> None:
    check_amount(value, "total")


@pytest.mark.parametrize("value", [0, -1, True, 2.5, None])
def test_an_amount_below_1_or_not_a_whole_number_is_refused(value: object) -> None:
    assert _refusal(check_amount, value, "purchase_total") == (
        "INVALID",
        "purchase_total",
        "purchase total must be a whole number of at least 1",
    )


@pytest.mark.parametrize("value", [MAX_MONEY + 1, 2**63, 10**25])
def test_an_amount_above_the_maximum_is_refused_with_the_maximum(value: int) -> None:
    assert _refusal(check_amount, value, "purchase_total") == (
        "INVALID",
        "purchase_total",
        f"purchase total must be at most {MAX_MONEY}",
    )


def test_zero_passes_where_allowed_but_a_negative_amount_or_false_does_not() -> None:
    check_amount(0, "total", allow_zero=True)

    assert _refusal(check_amount, -1, "total", allow_zero=True)[2] == "total must be a whole number of at least 0"
    assert _refusal(check_amount, False, "total", allow_zero=True)[1] == "total"


def test_an_amount_is_bounded_by_its_own_maximum_and_named_by_its_label() -> None:
    check_amount(MAX_POINTS, "amount", high=MAX_POINTS)

    assert _refusal(check_amount, MAX_POINTS + 1, "lines", high=MAX_POINTS, label="a quantity") == (
        "INVALID",
        "lines",
        f"a quantity must be at most {MAX_POINTS}",
    )


def test_a_text_of_exactly_its_length_passes_and_is_returned() -> None:
    assert check_text("r" * 64, "receipt_id", 64) == "r" * 64
    assert check_text("", "note", 200, required=False) == ""


@pytest.mark.parametrize("value", ["", "   ", "r" * 65, None, 7])
def test_a_required_text_that_is_missing_blank_too_long_or_not_text_is_refused(value: object) -> None:
    assert _refusal(check_text, value, "receipt_id", 64) == (
        "INVALID",
        "receipt_id",
        "receipt id must be 1 to 64 characters",
    )


def test_an_optional_text_may_be_empty_but_not_too_long() -> None:
    assert _refusal(check_text, "n" * 201, "note", 200, required=False, label="a note") == (
        "INVALID",
        "note",
        "a note must be at most 200 characters",
    )


@pytest.mark.parametrize("value", ["S", "S" * MAX_STORE_CODE])
def test_a_store_code_of_1_to_32_characters_passes(value: str) -> None:
    assert check_store_code(value) == value


@pytest.mark.parametrize("value", ["", "  ", "S" * (MAX_STORE_CODE + 1)])
def test_a_store_code_that_is_empty_blank_or_too_long_is_refused(value: str) -> None:
    assert _refusal(check_store_code, value) == ("INVALID", "store_code", "store code must be 1 to 32 characters")


@pytest.mark.parametrize("value", ["", " ", "\t\n", None])
def test_a_missing_or_blank_idempotency_key_is_refused(value: object) -> None:
    assert _refusal(check_idempotency_key, value) == ("INVALID", "idempotency_key", "an idempotency key is required")


def test_any_other_idempotency_key_passes() -> None:
    check_idempotency_key(" k ")


def test_a_business_time_up_to_the_tolerance_ahead_passes(clock: FrozenClock) -> None:
    check_occurred_at(clock.now() - timedelta(days=400))
    check_occurred_at(clock.now() + FUTURE_TOLERANCE)


def test_a_business_time_beyond_the_tolerance_ahead_is_refused(clock: FrozenClock) -> None:
    ahead = clock.now() + FUTURE_TOLERANCE + timedelta(microseconds=1)

    assert _refusal(check_occurred_at, ahead) == ("INVALID", "occurred_at", "the occurrence time is in the future")


def test_a_business_time_without_a_timezone_is_refused(clock: FrozenClock) -> None:
    naive: datetime = clock.now().replace(tzinfo=None)

    assert _refusal(check_occurred_at, naive) == ("INVALID", "occurred_at", "the occurrence time needs a timezone")


# --- what a text may contain ----------------------------------------------------------------------

UNCLEAN = "must not contain control characters or unpaired surrogates"


@pytest.mark.parametrize(
    "value",
    ["\x00", "a\x00", "\ud800", "a\udfffb", "\x1b[2J", "\x7f", "a\u0085", "\x9f", "a\nb", "a\tb", "a\rb"],
)
def test_nul_controls_and_lone_surrogates_make_a_text_unclean(value: str) -> None:
    # NUL: PostgreSQL refuses it in text; a lone surrogate has no UTF-8 encoding; C0, DEL and C1 are controls.
    assert is_clean_text(value) is False
    assert _refusal(check_text, value, "display_name", 100, label="name") == (
        "INVALID",
        "display_name",
        f"name {UNCLEAN}",
    )


@pytest.mark.parametrize("value", ["Anna", "مرحبا", "👩\u200d👩\u200d👧", "\u202eevil", "\u200b", "Zoë \U0001f600", ""])
def test_letters_emoji_joiners_and_direction_marks_are_clean(value: str) -> None:
    # Format characters (joiners, direction marks) are part of names and emoji: a text keeps them.
    assert is_clean_text(value) is True


def test_a_multiline_text_may_hold_tabs_and_line_breaks_but_no_other_control() -> None:
    assert check_text("first\n\tsecond\r\n", "note", 200, multiline=True) == "first\n\tsecond\r\n"
    assert _refusal(check_text, "a\x00\n", "note", 200, required=False, label="a note", multiline=True) == (
        "INVALID",
        "note",
        f"a note {UNCLEAN}",
    )


@pytest.mark.parametrize("value", ["S1", "Store 7", "R-2026/03/02#1", "Ö1"])
def test_a_code_of_printable_characters_passes(value: str) -> None:
    assert check_code(value, "receipt_id", 64) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("S\x001", f"receipt id {UNCLEAN}"),
        ("S\ud800", f"receipt id {UNCLEAN}"),
        ("S\n1", f"receipt id {UNCLEAN}"),
        ("S\u200b1", "receipt id must be printable characters only"),  # invisible
        ("\u202eS1", "receipt id must be printable characters only"),  # reverses what the cashier reads
        ("S\u00a01", "receipt id must be printable characters only"),  # a space that is not one
        ("S\u2028", "receipt id must be printable characters only"),  # a line separator
        ("r" * 65, "receipt id must be 1 to 64 characters"),
    ],
)
def test_a_code_with_control_invisible_or_line_breaking_characters_is_refused(value: str, message: str) -> None:
    assert _refusal(check_code, value, "receipt_id", 64) == ("INVALID", "receipt_id", message)


def test_a_store_code_is_a_code() -> None:
    assert _refusal(check_store_code, "S\u200b1") == (
        "INVALID",
        "store_code",
        "store code must be printable characters only",
    )


@pytest.mark.parametrize(("value", "message"), [("k\x00", UNCLEAN), ("k" * 101, "must be 1 to 100 characters")])
def test_an_idempotency_key_is_a_code_of_at_most_100_characters(value: str, message: str) -> None:
    check_idempotency_key("k" * 100)
    assert _refusal(check_idempotency_key, value) == ("INVALID", "idempotency_key", f"an idempotency key {message}")


def test_clean_text_drops_what_a_text_may_not_hold_and_cuts_to_length() -> None:
    # For names we are given rather than asked for (an identity provider's): kept, but cleaned.
    assert clean_text(" An\x00na\ud800 \u200dB ", 100) == "Anna \u200dB"
    assert clean_text("x" * 150, 100) == "x" * 100
