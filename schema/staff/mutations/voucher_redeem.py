"""voucherRedeem: a cashier redeems a member's voucher at the till (single-use; wrong codes are throttled)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.checkout import describe_vouchers
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from loyalty.vouchers import redeem_voucher
from schema.errors import UserError, to_user_error
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.staff.vouchers import CheckoutVoucher


@strawberry.enum
class VoucherRedeemErrorCode(Enum):
    INVALID = "INVALID"
    INVALID_CODE = "INVALID_CODE"
    ALREADY_REDEEMED = "ALREADY_REDEEMED"
    ALREADY_CANCELLED = "ALREADY_CANCELLED"
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    TOO_MANY_ATTEMPTS = "TOO_MANY_ATTEMPTS"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class VoucherRedeemUserError(UserError):
    code: VoucherRedeemErrorCode


@strawberry.input
class VoucherRedeemInput:
    code: str = strawberry.field(description="The scanned barcode value or the typed code (dashes optional).")
    store_code: str
    member: strawberry.ID | None = strawberry.field(
        default=None, description="The member at the till (`MemberSummary.id`): a voucher of anyone else is refused."
    )


@strawberry.type
class VoucherRedeemPayload:
    voucher: CheckoutVoucher | None
    member: MemberSummary | None
    user_errors: list[VoucherRedeemUserError]


async def voucher_redeem(info: StaffInfo, input: VoucherRedeemInput) -> VoucherRedeemPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        member_id = member_id_of(input.member) if input.member is not None else None
        voucher = await redeem_voucher(actor, code=input.code, store_code=input.store_code, member_id=member_id)
    except DomainError as error:
        return VoucherRedeemPayload(
            voucher=None,
            member=None,
            user_errors=[to_user_error(VoucherRedeemUserError, VoucherRedeemErrorCode, error)],
        )
    [redeemed] = await describe_vouchers([voucher])
    member = await info.context.loaders.member.load(voucher.member_id)
    return VoucherRedeemPayload(
        voucher=CheckoutVoucher.from_domain(redeemed),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class VoucherRedeemMutation:
    voucher_redeem: VoucherRedeemPayload = strawberry.mutation(
        resolver=voucher_redeem,
        description="Redeem a voucher at the till: once only; after 5 wrong codes in 15 minutes, attempts are refused.",
    )
