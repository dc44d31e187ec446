"""purchasePreview: "you will earn N" for a receipt, with the breakdown, writing nothing.

A query, not a mutation: it changes nothing, so tills may call it as often as they like (e.g. on every scan).
It takes the same input as purchaseRecord and refuses the same bad input with the same codes.
"""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.models import StaffRole
from loyalty.purchases import preview_purchase
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.earning_types import EarningBreakdown, PurchaseRecordInput
from schema.staff.lookup import member_id_of


@strawberry.enum
class PurchasePreviewErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    LINES_TOTAL_MISMATCH = "LINES_TOTAL_MISMATCH"
    PURCHASE_TOTAL_TOO_LARGE = "PURCHASE_TOTAL_TOO_LARGE"
    DAILY_PURCHASE_LIMIT_EXCEEDED = "DAILY_PURCHASE_LIMIT_EXCEEDED"


@strawberry.type
class PurchasePreviewUserError(UserError):
    code: PurchasePreviewErrorCode


@strawberry.type
class PurchasePreviewPayload:
    earning: EarningBreakdown | None
    user_errors: list[PurchasePreviewUserError]


async def purchase_preview(info: StaffInfo, input: PurchaseRecordInput) -> PurchasePreviewPayload:
    info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        breakdown = await preview_purchase(input.to_request(member_id_of(input.member)))
    except DomainError as error:
        return PurchasePreviewPayload(
            earning=None, user_errors=[to_user_error(PurchasePreviewUserError, PurchasePreviewErrorCode, error)]
        )
    return PurchasePreviewPayload(earning=EarningBreakdown.from_domain(breakdown), user_errors=[])


@strawberry.type
class PurchasePreviewQuery:
    purchase_preview: PurchasePreviewPayload = strawberry.field(
        resolver=purchase_preview,
        description="What purchaseRecord would credit for this receipt now (current tier); writes nothing.",
    )
