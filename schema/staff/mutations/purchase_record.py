"""purchaseRecord: the till records a receipt; the member earns points (pending for the return window) and stamps."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.models import StaffRole
from loyalty.purchases import record_purchase
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.earning_types import EarningBreakdown, PurchaseRecordInput, StampsAdded
from schema.staff.lookup import MemberSummary, member_id_of


@strawberry.enum
class PurchaseRecordErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    LINES_TOTAL_MISMATCH = "LINES_TOTAL_MISMATCH"
    PURCHASE_TOTAL_TOO_LARGE = "PURCHASE_TOTAL_TOO_LARGE"
    DAILY_PURCHASE_LIMIT_EXCEEDED = "DAILY_PURCHASE_LIMIT_EXCEEDED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class PurchaseRecordUserError(UserError):
    code: PurchaseRecordErrorCode


@strawberry.type(description="A recorded purchase and what it earned.")
class RecordedPurchase:
    store_code: str
    receipt_id: str
    points: int
    available_at: datetime = strawberry.field(description="When the points become spendable (end of return window).")
    tier: str = strawberry.field(description="The member's tier after this purchase.")
    earning: EarningBreakdown
    stamps: list[StampsAdded]


@strawberry.type
class PurchaseRecordPayload:
    purchase: RecordedPurchase | None
    member: MemberSummary | None
    user_errors: list[PurchaseRecordUserError]


async def purchase_record(info: StaffInfo, input: PurchaseRecordInput) -> PurchaseRecordPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        member_id = member_id_of(input.member)
        recorded = await record_purchase(actor, input.to_request(member_id))
    except DomainError as error:
        return PurchaseRecordPayload(
            purchase=None,
            member=None,
            user_errors=[to_user_error(PurchaseRecordUserError, PurchaseRecordErrorCode, error)],
        )
    member = await info.context.loaders.member.load(member_id)
    return PurchaseRecordPayload(
        purchase=RecordedPurchase(
            store_code=input.store_code,
            receipt_id=input.receipt_id,
            points=recorded.points,
            available_at=recorded.available_at,
            tier=recorded.tier,
            earning=EarningBreakdown.from_domain(recorded.breakdown),
            stamps=[StampsAdded.from_domain(s) for s in recorded.stamps],
        ),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class PurchaseRecordMutation:
    purchase_record: PurchaseRecordPayload = strawberry.mutation(
        resolver=purchase_record,
        description=(
            "Record a receipt (cashier or above, in its store). Idempotent on (storeCode, receiptId): a retry returns "
            "the first result; the same receipt with other content is IDEMPOTENCY_KEY_REUSED."
        ),
    )
