"""Typed domain failures. Each has a stable `code` (the API's error code) and may name the input at fault.

`field` is the domain's own name of that input: the parameter or attribute, snake_case (`receipt_id`,
`idempotency_key`). The API layers translate it into their own names.
"""

from __future__ import annotations


class DomainError(Exception):
    """A business rule refused the operation; nothing was written."""

    code = "INVALID"
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidInput(DomainError):
    code = "INVALID"


class NotFound(DomainError):
    code = "NOT_FOUND"


class MemberNotFound(NotFound):
    code = "MEMBER_NOT_FOUND"


class PurchaseNotFound(NotFound):
    code = "PURCHASE_NOT_FOUND"


class InsufficientPoints(DomainError):
    code = "INSUFFICIENT_POINTS"


class CurrencyMismatch(DomainError):
    code = "CURRENCY_MISMATCH"


class DuplicateIdempotencyKey(DomainError):
    """The idempotency key was used before with a different request."""

    code = "IDEMPOTENCY_KEY_REUSED"


class RefundExceedsPurchase(DomainError):
    code = "REFUND_EXCEEDS_PURCHASE"


class AlreadyReversed(DomainError):
    code = "ALREADY_REVERSED"


class ProgramNotConfigured(DomainError):
    code = "PROGRAM_NOT_CONFIGURED"


class LedgerInconsistency(Exception):
    """The cached balance and the lots disagree: a bug, never a business outcome."""
