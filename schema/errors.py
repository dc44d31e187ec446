"""userErrors: business failures are returned in payloads (Shopify style), never as top-level errors.

Each mutation has its own error type with its own code enum (Saleor style), all implementing `UserError`. A
`DomainError` names the input at fault by the domain's own (snake_case) name; `input_path` turns that into the path of
the GraphQL input field.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, Protocol, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.utils.str_converters import to_camel_case

from loyalty.errors import DomainError


@strawberry.interface(description="A business rule refused the mutation; nothing was written.")
class UserError:
    message: str
    field: list[str] | None = strawberry.field(description="Path to the input field at fault, e.g. [input, amount].")


CodeT = TypeVar("CodeT", bound=Enum)
CodeT_contra = TypeVar("CodeT_contra", bound=Enum, contravariant=True)
UserErrorT_co = TypeVar("UserErrorT_co", bound=UserError, covariant=True)


class UserErrorType(Protocol[CodeT_contra, UserErrorT_co]):
    """A mutation's error type: a strawberry type beside its mutation, implementing UserError with its own code
    enum (`class RewardRedeemUserError(UserError): code: RewardRedeemErrorCode`)."""

    def __call__(self, *, code: CodeT_contra, message: str, field: list[str] | None) -> UserErrorT_co: ...


# Inputs named otherwise than the domain's parameter. Mutations take the member as a global id called `member` (the
# domain's `member_id`); the member endpoint's errors keep that path too, as they always had.
INPUT_NAMES: Final = {"member_id": "member"}


def input_path(field: str | None) -> list[str] | None:
    """The path of the mutation input a domain field names: `["input", "receiptId"]` for `receipt_id`.

    camelCase as the schemas' default name converter (`auto_camel_case`) names the input fields, except `INPUT_NAMES`.
    """
    if field is None:
        return None
    return ["input", INPUT_NAMES.get(field) or to_camel_case(field)]


def to_user_error(
    error_type: UserErrorType[CodeT, UserErrorT_co], codes: type[CodeT], error: DomainError
) -> UserErrorT_co:
    """Map a domain failure onto a mutation's error type (unknown codes fall back to INVALID)."""
    code = codes[error.code] if error.code in codes.__members__ else codes["INVALID"]
    return error_type(code=code, message=error.message, field=input_path(error.field))


class PublicError(GraphQLError):
    """A top-level error whose message is safe to show even in production (not masked)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, extensions={"code": code})


class NotAuthenticated(PublicError):
    def __init__(self, message: str = "sign in first: send `Authorization: Bearer <access token>`") -> None:
        super().__init__(message, "UNAUTHENTICATED")


class BadRequest(PublicError):
    def __init__(self, message: str) -> None:
        super().__init__(message, "BAD_REQUEST")


def is_public(error: GraphQLError) -> bool:
    """True for errors safe to show clients: our PublicErrors, GraphQL validation errors, and graphql-core's own
    refusals of a variable's value (no path: raised before any resolver ran)."""
    original = error.original_error
    return (
        isinstance(original, PublicError) or original is None or (error.path is None and type(original) is GraphQLError)
    )
