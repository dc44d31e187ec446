"""Typed domain failures. Each has a stable `code` (the API's error code) and may name the input at fault.

`field` is the domain's own name of that input: the parameter or attribute, snake_case (`receipt_id`,
`idempotency_key`). The API layers translate it into their own names.
"""

from __future__ import annotations

from collections.abc import Callable

# Words an amount of the program's money (minor units) for a person: `loyalty.money.format_money` with the program.
MoneyText = Callable[[int], str]


class DomainError(Exception):
    """A business rule refused the operation; nothing was written."""

    code = "INVALID"
    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field

    def describe(self, money: MoneyText) -> str:
        """The message for a person at a till, its amounts worded by `money` ("only €30.00 ... left").

        `message` (what the APIs return) keeps amounts as plain minor units; a refusal that names amounts keeps
        them as typed attributes and words them here, so no caller re-parses a message.
        """
        return self.message


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
    """More money (`amount_left`: what is left to refund, minor units) or items than were bought and not yet
    returned."""

    code = "REFUND_EXCEEDS_PURCHASE"

    def __init__(self, message: str, *, field: str | None = None, amount_left: int | None = None) -> None:
        super().__init__(message, field=field)
        self.amount_left = amount_left

    def describe(self, money: MoneyText) -> str:
        if self.amount_left is None:
            return self.message
        return f"only {money(self.amount_left)} of this purchase is left to refund"


class AlreadyReversed(DomainError):
    code = "ALREADY_REVERSED"


class ProgramNotConfigured(DomainError):
    code = "PROGRAM_NOT_CONFIGURED"


class LedgerInconsistency(Exception):
    """The cached balance and the lots disagree: a bug, never a business outcome."""
