"""Domain fields become GraphQL input paths in one place."""

from __future__ import annotations

from enum import Enum

import pytest
import strawberry

from loyalty.errors import InvalidInput, MemberNotFound
from schema.errors import UserError, input_path, to_user_error


class _Codes(Enum):
    INVALID = "INVALID"


@strawberry.type
class _ErrorType(UserError):
    code: _Codes


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("receipt_id", ["input", "receiptId"]),
        ("idempotency_key", ["input", "idempotencyKey"]),
        ("lines", ["input", "lines"]),
        ("member_id", ["input", "member"]),
        (None, None),
    ],
)
def test_a_domain_field_becomes_the_path_of_its_input(field: str | None, path: list[str] | None) -> None:
    assert input_path(field) == path


def test_a_domain_error_becomes_a_user_error_with_the_input_path() -> None:
    # given a refusal with a code the mutation does not declare
    error = MemberNotFound("no such member", field="member_id")

    # when
    user_error = to_user_error(_ErrorType, _Codes, error)

    # then the code falls back to INVALID and the field is the input's path
    assert (user_error.code, user_error.message, user_error.field) == (
        _Codes.INVALID,
        "no such member",
        ["input", "member"],
    )


def test_a_domain_error_without_a_field_has_no_path() -> None:
    user_error = to_user_error(_ErrorType, _Codes, InvalidInput("no"))

    assert (user_error.code, user_error.message, user_error.field) == (_Codes.INVALID, "no", None)
