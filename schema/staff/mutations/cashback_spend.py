"""cashbackSpend: the till pays part of a receipt with the member's cashback (partial amounts, never the balance +1)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.cashback import InsufficientCashback, spend_cashback
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, input_path, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.cashback import Money


@strawberry.enum
class CashbackSpendErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    INSUFFICIENT_CASHBACK = "INSUFFICIENT_CASHBACK"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class CashbackSpendUserError(UserError):
    code: CashbackSpendErrorCode
    available: Money | None = strawberry.field(
        default=None, description="INSUFFICIENT_CASHBACK: the balance the member has, to spend instead."
    )


@strawberry.input
class CashbackSpendInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    store_code: str
    receipt_id: str = strawberry.field(description="The receipt it pays: a refund of it gives the cashback back.")
    amount: int = strawberry.field(description="Minor units of the program's currency; at most the balance.")
    idempotency_key: str = strawberry.field(description="A retry with the same key returns the first result.")


@strawberry.type
class CashbackSpendPayload:
    member: MemberSummary | None
    spent: Money | None
    balance: Money | None = strawberry.field(description="What is left after the spend.")
    user_errors: list[CashbackSpendUserError]


def _refusal(error: DomainError, currency: str) -> CashbackSpendUserError:
    if isinstance(error, InsufficientCashback):
        return CashbackSpendUserError(
            code=CashbackSpendErrorCode.INSUFFICIENT_CASHBACK,
            message=error.message,
            field=input_path(error.field),
            available=Money(amount=error.available, currency=currency),
        )
    return to_user_error(CashbackSpendUserError, CashbackSpendErrorCode, error)


async def cashback_spend(info: StaffInfo, input: CashbackSpendInput) -> CashbackSpendPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        result = await spend_cashback(
            actor,
            member_id_of(input.member),
            store_code=input.store_code,
            receipt_id=input.receipt_id,
            amount=input.amount,
            idempotency_key=input.idempotency_key,
        )
    except DomainError as error:
        currency = (await info.context.program()).currency
        return CashbackSpendPayload(member=None, spent=None, balance=None, user_errors=[_refusal(error, currency)])
    member = await info.context.loaders.member.load(result.member_id)
    return CashbackSpendPayload(
        member=MemberSummary.from_model(member) if member is not None else None,
        spent=Money(amount=result.spent, currency=result.currency),
        balance=Money(amount=result.balance, currency=result.currency),
        user_errors=[],
    )


@strawberry.type
class CashbackSpendMutation:
    cashback_spend: CashbackSpendPayload = strawberry.mutation(
        resolver=cashback_spend,
        description="Pay part of a receipt with the member's cashback (cashier or above, in its store); idempotent "
        "on idempotencyKey.",
    )
