"""voucherCancel: the member cancels an unused voucher and gets exactly its points back."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty import models
from loyalty.errors import DomainError
from loyalty.vouchers import VoucherNotFound, cancel_voucher
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.global_ids import VOUCHER
from schema.types.member import Member
from schema.types.voucher import Voucher


@strawberry.enum
class VoucherCancelErrorCode(Enum):
    INVALID = "INVALID"
    VOUCHER_NOT_FOUND = "VOUCHER_NOT_FOUND"
    ALREADY_REDEEMED = "ALREADY_REDEEMED"
    ALREADY_CANCELLED = "ALREADY_CANCELLED"
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    NOT_CANCELLABLE = "NOT_CANCELLABLE"


@strawberry.type
class VoucherCancelUserError(UserError):
    code: VoucherCancelErrorCode


@strawberry.input
class VoucherCancelInput:
    voucher_id: strawberry.ID


@strawberry.type
class VoucherCancelPayload:
    voucher: Voucher | None
    member: Member | None = strawberry.field(description="With the points given back.")
    user_errors: list[VoucherCancelUserError]


async def voucher_cancel(info: Info, input: VoucherCancelInput) -> VoucherCancelPayload:
    member_id = info.context.require_member()
    try:
        voucher_id = VOUCHER.decode(input.voucher_id)
        if voucher_id is None:
            raise VoucherNotFound("no such voucher", field="voucher_id")
        voucher = await cancel_voucher(member_id, voucher_id)
    except DomainError as error:
        return VoucherCancelPayload(
            voucher=None,
            member=None,
            user_errors=[to_user_error(VoucherCancelUserError, VoucherCancelErrorCode, error)],
        )
    member = await models.Member.get(id=member_id)
    return VoucherCancelPayload(
        voucher=Voucher.from_model(voucher, info.context.now), member=Member.from_model(member), user_errors=[]
    )
