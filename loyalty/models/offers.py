"""Personalized offers (targeted, optionally activated by the member) and stamp cards."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class OfferBenefit(StrEnum):
    BONUS_POINTS = "bonus_points"  # value: points
    AMOUNT_OFF = "amount_off"  # value: minor units
    PERCENT_OFF = "percent_off"  # value: percent
    FREE_ITEM = "free_item"  # sku


class LifecycleStage(StrEnum):
    NEW = "new"
    ACTIVE = "active"
    LAPSING = "lapsing"
    LAPSED = "lapsed"


class Offer(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    description = fields.CharField(max_length=500, default="")
    benefit = fields.CharEnumField(OfferBenefit, max_length=16)
    value = fields.IntField(default=0)
    sku = fields.CharField(max_length=64, null=True)
    valid_from = fields.DatetimeField()
    valid_until = fields.DatetimeField()
    per_member_limit = fields.IntField(default=1)
    requires_activation = fields.BooleanField(default=False)
    # Targeting; an empty list or NULL means "anyone".
    tier_names = fields.JSONField(default=list)
    min_tier_rank = fields.SmallIntField(null=True)  # early access for top tiers
    lifecycle_stages = fields.JSONField(default=list)
    birthday_month = fields.BooleanField(default=False)
    interests = fields.JSONField(default=list)
    min_spend = fields.BigIntField(null=True)  # minimum purchase total, minor units
    priority = fields.IntField(default=0)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "offer"


class OfferActivation(Model):
    id = fields.IntField(primary_key=True)
    offer = fields.ForeignKeyField("loyalty.Offer", related_name=False, on_delete=fields.CASCADE)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    activated_at = fields.DatetimeField()

    class Meta:
        table = "offer_activation"
        unique_together = (("offer_id", "member_id"),)


class OfferRedemption(Model):
    id = fields.IntField(primary_key=True)
    offer = fields.ForeignKeyField("loyalty.Offer", related_name=False, on_delete=fields.RESTRICT)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.RESTRICT)
    store_code = fields.CharField(max_length=32)
    purchase = fields.ForeignKeyField("loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT)
    redeemed_at = fields.DatetimeField()

    class Meta:
        table = "offer_redemption"
        indexes = (("offer_id", "member_id"),)


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
    reward = fields.ForeignKeyField("loyalty.Reward", related_name=False, on_delete=fields.RESTRICT)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "stamp_card"


class StampProgress(Model):
    id = fields.IntField(primary_key=True)
    member = fields.ForeignKeyField("loyalty.Member", related_name=False, on_delete=fields.CASCADE)
    card = fields.ForeignKeyField("loyalty.StampCard", related_name=False, on_delete=fields.CASCADE)
    stamps = fields.SmallIntField(default=0)
    completed = fields.IntField(default=0)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "stamp_progress"
        unique_together = (("member_id", "card_id"),)
