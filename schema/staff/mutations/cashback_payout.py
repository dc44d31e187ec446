"""cashbackPayout: an integration records that it paid the member's cashback out (manager role; idempotent on the
paying system's reference)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.cashback import InsufficientCashback, payout_cashback
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from schema.errors import UserError, input_path, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.cashback import Money


@strawberry.enum
class CashbackPayoutErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    INSUFFICIENT_CASHBACK = "INSUFFICIENT_CASHBACK"
    FORBIDDEN = "FORBIDDEN"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class CashbackPayoutUserError(UserError):
    code: CashbackPayoutErrorCode
    available: Money | None = strawberry.field(
        default=None, description="INSUFFICIENT_CASHBACK: the balance the member has."
    )


@strawberry.input
class CashbackPayoutInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    amount: int = strawberry.field(description="Minor units of the program's currency; at most the balance.")
    reference: str = strawberry.field(
        description="The paying system's id of the payout: a retry with it returns the first result."
    )


@strawberry.type
class CashbackPayoutPayload:
    member: MemberSummary | None
    paid_out: Money | None
    balance: Money | None = strawberry.field(description="What is left after the payout.")
    user_errors: list[CashbackPayoutUserError]


def _refusal(error: DomainError, currency: str) -> CashbackPayoutUserError:
    if isinstance(error, InsufficientCashback):
        return CashbackPayoutUserError(
            code=CashbackPayoutErrorCode.INSUFFICIENT_CASHBACK,
            message=error.message,
            field=input_path(error.field),
            available=Money(amount=error.available, currency=currency),
        )
    return to_user_error(CashbackPayoutUserError, CashbackPayoutErrorCode, error)


async def cashback_payout(info: StaffInfo, input: CashbackPayoutInput) -> CashbackPayoutPayload:
    actor = info.context.require(StaffRole.MANAGER)
    try:
        result = await payout_cashback(
            actor, member_id_of(input.member), amount=input.amount, reference=input.reference
        )
    except DomainError as error:
        currency = (await info.context.program()).currency
        return CashbackPayoutPayload(member=None, paid_out=None, balance=None, user_errors=[_refusal(error, currency)])
    member = await info.context.loaders.member.load(result.member_id)
    return CashbackPayoutPayload(
        member=MemberSummary.from_model(member) if member is not None else None,
        paid_out=Money(amount=result.paid_out, currency=result.currency),
        balance=Money(amount=result.balance, currency=result.currency),
        user_errors=[],
    )


@strawberry.type
class CashbackPayoutMutation:
    cashback_payout: CashbackPayoutPayload = strawberry.mutation(
        resolver=cashback_payout,
        description="Record a payout of the member's cashback by the paying system (manager role, or an API key "
        "with it); idempotent on reference.",
    )
