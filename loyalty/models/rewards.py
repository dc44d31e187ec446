"""The reward catalog and the vouchers members get for rewards, offers and completed stamp cards."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class RewardKind(StrEnum):
    FREE_PRODUCT = "free_product"
    AMOUNT_OFF = "amount_off"  # value: minor units
    PERCENT_OFF = "percent_off"  # value: percent
    CASHBACK = "cashback"  # value: minor units credited to the member
    DONATION = "donation"  # value: minor units donated to `cause`
    EXPERIENCE = "experience"  # events, early access


class Reward(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    description = fields.CharField(max_length=500, default="")
    kind = fields.CharEnumField(RewardKind, max_length=16)
    points_cost = fields.IntField()
    value = fields.IntField(default=0)
    sku = fields.CharField(max_length=64, null=True)  # the product, for free_product
    cause = fields.CharField(max_length=100, null=True)  # for donation
    min_tier = fields.ForeignKeyField("loyalty.Tier", related_name=False, null=True, on_delete=fields.RESTRICT)
    stock = fields.IntField(null=True)  # remaining; NULL = unlimited
    per_member_limit = fields.IntField(null=True)
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    voucher_valid_days = fields.IntField(default=30)
    active = fields.BooleanField(default=True)
    sort_order = fields.IntField(default=0)

    class Meta:
        table = "reward"


class VoucherStatus(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Voucher(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.RESTRICT)
    code = fields.CharField(max_length=32, unique=True)
    status = fields.CharEnumField(VoucherStatus, max_length=16, default=VoucherStatus.ACTIVE)
    reward = fields.ForeignKeyField("loyalty.Reward", related_name=False, null=True, on_delete=fields.RESTRICT)
    offer = fields.ForeignKeyField("loyalty.Offer", related_name=False, null=True, on_delete=fields.RESTRICT)
    stamp_card = fields.ForeignKeyField("loyalty.StampCard", related_name=False, null=True, on_delete=fields.RESTRICT)
    # The redemption entry that paid for it, so cancelling returns exactly those points.
    ledger_entry = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    points_cost = fields.IntField(default=0)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    redeemed_at = fields.DatetimeField(null=True)
    redeemed_store = fields.CharField(max_length=32, null=True)
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "voucher"
        indexes = (("member_id", "status", "expires_at"),)
