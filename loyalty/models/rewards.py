"""The reward catalog, stamp cards (which earn a reward), and the vouchers for rewards, offers and full stamp cards."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.ledger import LedgerEntry
    from loyalty.models.members import Member
    from loyalty.models.offers import Offer
    from loyalty.models.program import Tier


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
    min_tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    min_tier_id: int | None
    # Early access for paid members: their plan's `early_access_rank` at least this (`loyalty.memberships`).
    min_membership_rank = fields.SmallIntField(null=True)
    stock = fields.IntField(null=True)  # remaining; NULL = unlimited
    per_member_limit = fields.IntField(null=True)
    valid_from = fields.DatetimeField(null=True)
    valid_until = fields.DatetimeField(null=True)
    voucher_valid_days = fields.IntField(default=30)
    active = fields.BooleanField(default=True)
    sort_order = fields.IntField(default=0)

    class Meta:
        table = "reward"


class StampCard(Model):
    # Buy `stamps_required` qualifying items (or make that many qualifying visits) -> a voucher for `reward`.
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    description = fields.CharField(max_length=500, default="")
    stamps_required = fields.SmallIntField()
    counts = fields.CharField(max_length=8, default="items")  # items | visits
    match_category = fields.CharField(max_length=64, null=True)
    match_sku = fields.CharField(max_length=64, null=True)
    min_spend = fields.BigIntField(null=True)  # for visits: minimum purchase total
    reward: fields.ForeignKeyRelation[Reward] = fields.ForeignKeyField(
        "loyalty.Reward", related_name=False, on_delete=fields.RESTRICT
    )
    reward_id: int
    active = fields.BooleanField(default=True)

    class Meta:
        table = "stamp_card"


class StampProgress(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    card: fields.ForeignKeyRelation[StampCard] = fields.ForeignKeyField(
        "loyalty.StampCard", related_name=False, on_delete=fields.CASCADE
    )
    card_id: int
    stamps = fields.SmallIntField(default=0)
    completed = fields.IntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "stamp_progress"
        unique_together = (("member_id", "card_id"),)


class VoucherStatus(StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Voucher(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    code = fields.CharField(max_length=32, unique=True)
    status = fields.CharEnumField(VoucherStatus, max_length=16, default=VoucherStatus.ACTIVE)
    reward: fields.ForeignKeyNullableRelation[Reward] = fields.ForeignKeyField(
        "loyalty.Reward", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    reward_id: int | None
    offer: fields.ForeignKeyNullableRelation[Offer] = fields.ForeignKeyField(
        "loyalty.Offer", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    offer_id: int | None
    stamp_card: fields.ForeignKeyNullableRelation[StampCard] = fields.ForeignKeyField(
        "loyalty.StampCard", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    stamp_card_id: int | None
    # The redemption entry that paid for it, so cancelling returns exactly those points.
    ledger_entry: fields.ForeignKeyNullableRelation[LedgerEntry] = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    ledger_entry_id: int | None
    points_cost = fields.IntField(default=0)
    issued_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    redeemed_at = fields.DatetimeField(null=True)
    redeemed_store = fields.CharField(max_length=32, null=True)
    cancelled_at = fields.DatetimeField(null=True)

    class Meta:
        table = "voucher"
        indexes = (("member_id", "status", "expires_at"),)


class DonationTotal(Model):
    """Per donation reward, how many of its vouchers are REDEEMED and the sum of their values (loyalty.donations).

    Kept by `loyalty.donations.count_donation` in the transaction that redeems each one; backfilled by migration 0008.
    """

    id = fields.IntField(primary_key=True)
    reward: fields.ForeignKeyRelation[Reward] = fields.ForeignKeyField(
        "loyalty.Reward", related_name=False, on_delete=fields.RESTRICT
    )
    reward_id: int
    amount = fields.BigIntField(default=0)  # minor units of the program's currency
    donations = fields.BigIntField(default=0)

    class Meta:
        table = "donation_total"
        unique_together = (("reward_id",),)  # the upsert's ON CONFLICT target (a unique FK alone makes no index)
