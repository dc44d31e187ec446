"""purchaseRefund: a return at the till claws back the points, by amount or by lines."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.models import StaffRole
from loyalty.purchases import LineRefund, refund_purchase
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary


@strawberry.enum
class PurchaseRefundErrorCode(Enum):
    INVALID = "INVALID"
    PURCHASE_NOT_FOUND = "PURCHASE_NOT_FOUND"
    REFUND_EXCEEDS_PURCHASE = "REFUND_EXCEEDS_PURCHASE"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class PurchaseRefundUserError(UserError):
    code: PurchaseRefundErrorCode


@strawberry.input(description="Refund `quantity` items of receipt line `lineNo` (1-based).")
class RefundLineInput:
    line_no: int
    quantity: int


@strawberry.input(description="Give either `amount` (minor units) or `lines`.")
class PurchaseRefundInput:
    store_code: str
    receipt_id: str
    refund_id: str = strawberry.field(description="Unique per store: a retry with it returns the first result.")
    amount: int | None = None
    lines: list[RefundLineInput] | None = None
    occurred_at: datetime | None = strawberry.field(
        default=None, description="When the goods came back, if not now: the member's activity shows this time."
    )


@strawberry.type(description="What a refund took back.")
class PurchaseRefundResult:
    amount: int = strawberry.field(description="Money refunded, minor units (from the lines for a refund by lines).")
    points_reversed: int
    points_recovered: int
    unrecovered: int = strawberry.field(description="Points the member had already spent and could not give back.")
    cashback_returned: int = strawberry.field(
        description="Cashback the receipt was paid with that came back to the member, minor units."
    )


@strawberry.type
class PurchaseRefundPayload:
    refund: PurchaseRefundResult | None
    member: MemberSummary | None
    user_errors: list[PurchaseRefundUserError]


async def purchase_refund(info: StaffInfo, input: PurchaseRefundInput) -> PurchaseRefundPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    lines = [LineRefund(x.line_no, x.quantity) for x in input.lines] if input.lines is not None else None
    try:
        result = await refund_purchase(
            actor,
            store_code=input.store_code,
            receipt_id=input.receipt_id,
            refund_id=input.refund_id,
            amount=input.amount,
            lines=lines,
            occurred_at=input.occurred_at,
        )
    except DomainError as error:
        return PurchaseRefundPayload(
            refund=None,
            member=None,
            user_errors=[to_user_error(PurchaseRefundUserError, PurchaseRefundErrorCode, error)],
        )
    member = await info.context.loaders.member.load(result.member_id)
    return PurchaseRefundPayload(
        refund=PurchaseRefundResult(
            amount=result.amount,
            points_reversed=result.points_reversed,
            points_recovered=result.points_recovered,
            unrecovered=result.unrecovered,
            cashback_returned=result.cashback_returned,
        ),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class PurchaseRefundMutation:
    purchase_refund: PurchaseRefundPayload = strawberry.mutation(
        resolver=purchase_refund,
        description="Refund a purchase by amount or by lines (cashier or above, in its store); idempotent on refundId.",
    )
