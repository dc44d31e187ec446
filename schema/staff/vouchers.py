"""Vouchers as the checkout sees them: what each is for (`loyalty.checkout.CheckoutVoucher`), usable or redeemed."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

import strawberry

from loyalty import checkout, vouchers
from schema.global_ids import VOUCHER
from schema.types.voucher import VOUCHER_STATUSES, VoucherStatus


@strawberry.type
class VoucherFor:
    """What a voucher is for, as the till applies it (the fields usable and redeemed vouchers share)."""

    code: str = strawberry.field(description="For the cashier to read and type, grouped: XXXX-XXXX-XXXX-XXXX.")
    name: str = strawberry.field(description="What it is for: its reward, else the offer or stamp card that gave it.")
    kind: str | None = strawberry.field(
        description="free_product, amount_off, percent_off, cashback, donation, experience; null: only `name`."
    )
    value: int = strawberry.field(description="amount_off, cashback: minor units to apply; percent_off: percent.")
    sku: str | None

    @classmethod
    def of(cls, item: checkout.CheckoutVoucher, **fields: Any) -> Self:
        """`item` as this type; `fields` are the subtype's own."""
        return cls(
            code=vouchers.display_code(item.voucher.code),
            name=item.name,
            kind=item.kind.value if item.kind is not None else None,
            value=item.value,
            sku=item.sku,
            **fields,
        )


@strawberry.type(description="A voucher the member can use now, and what it is for.")
class UsableVoucher(VoucherFor):
    id: strawberry.ID = strawberry.field(description="The voucher's global id, as in the member app.")
    status: VoucherStatus
    expires_at: datetime

    @classmethod
    def from_domain(cls, item: checkout.CheckoutVoucher, now: datetime) -> UsableVoucher:
        voucher = item.voucher
        return cls.of(
            item,
            id=strawberry.ID(VOUCHER.encode(voucher.id)),
            status=VOUCHER_STATUSES.to_api(vouchers.effective_status(voucher, now)),
            expires_at=voucher.expires_at,
        )


@strawberry.type(description="A redeemed voucher: what to apply to the basket.")
class CheckoutVoucher(VoucherFor):
    redeemed_at: datetime
    store_code: str

    @classmethod
    def from_domain(cls, item: checkout.CheckoutVoucher) -> CheckoutVoucher:
        voucher = item.voucher
        assert voucher.redeemed_at is not None  # set by the redemption
        assert voucher.redeemed_store is not None
        return cls.of(item, redeemed_at=voucher.redeemed_at, store_code=voucher.redeemed_store)
