"""userErrors: business failures are returned in payloads (Shopify style), never as top-level errors.

Each mutation has its own error type with its own code enum (Saleor style), all implementing `UserError`. A
`DomainError` names the input at fault by the domain's own (snake_case) name; `input_path` turns that into the path of
the GraphQL input field.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Final, Protocol, TypeVar

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionContext
from strawberry.utils.logging import StrawberryLogger
from strawberry.utils.str_converters import to_camel_case

from loyalty.db import database_unavailable
from loyalty.errors import DomainError

log = logging.getLogger("klubb.graphql")


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
    """True for errors safe to show clients: our PublicErrors, GraphQL validation errors, graphql-core's own
    refusals of a variable's value (no path: raised before any resolver ran), and an operation type the transport
    does not run (a query over the member websocket)."""
    original = error.original_error
    return (
        isinstance(original, PublicError | InvalidOperationTypeError)
        or original is None
        or (error.path is None and type(original) is GraphQLError)
    )


class MaskFaults(MaskErrors):
    """Production's masking of errors that are not public: the client reads "Unexpected error.", but the masked
    error keeps its cause (never serialized), so the fault is still logged with its traceback and an unreachable
    database still answers 503 (strawberry's MaskErrors drops the cause before either sees it)."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=lambda error: not is_public(error))

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.original_error = error.original_error
        return masked


class LoggedSchema(strawberry.Schema):
    """A schema that logs expected errors as one line: a refused request (unauthenticated, forbidden, malformed, any
    `PublicError` or validation error) is the client's doing and gets one INFO line with its code; so does an
    unreachable database (the HTTP layer answers 503 and logs the outage's WARNING line). Anything else is a fault:
    strawberry's full traceback."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        for error in errors:
            original = error.original_error
            if original is not None and database_unavailable(original):
                log.info("database unavailable: %s: %s", type(original).__name__, original)
            elif is_public(error):
                code = (error.extensions or {}).get("code", "GRAPHQL_VALIDATION_FAILED")
                log.info("request refused [%s]: %s (path %s)", code, error.message, _path(error))
            else:
                StrawberryLogger.error(error, execution_context)


def _path(error: GraphQLError) -> str:
    return ".".join(str(part) for part in error.path) if error.path else "-"
