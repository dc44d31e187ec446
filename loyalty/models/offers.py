"""Personalized offers (targeted, optionally activated by the member)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.ledger import Purchase
    from loyalty.models.members import Member


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
    tier_names: fields.JSONField[list[str]] = fields.JSONField(default=list)
    min_tier_rank = fields.SmallIntField(null=True)  # early access for top tiers
    # Early access for paid members: their plan's `early_access_rank` at least this (`loyalty.memberships`).
    min_membership_rank = fields.SmallIntField(null=True)
    lifecycle_stages: fields.JSONField[list[str]] = fields.JSONField(default=list)
    birthday_month = fields.BooleanField(default=False)
    interests: fields.JSONField[list[str]] = fields.JSONField(default=list)
    min_spend = fields.BigIntField(null=True)  # minimum purchase total, minor units
    priority = fields.IntField(default=0)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "offer"


class OfferActivation(Model):
    id = fields.IntField(primary_key=True)
    offer: fields.ForeignKeyRelation[Offer] = fields.ForeignKeyField(
        "loyalty.Offer", related_name=False, on_delete=fields.CASCADE
    )
    offer_id: int
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    activated_at = fields.DatetimeField()

    class Meta:
        table = "offer_activation"
        unique_together = (("offer_id", "member_id"),)


class OfferRedemption(Model):
    id = fields.IntField(primary_key=True)
    offer: fields.ForeignKeyRelation[Offer] = fields.ForeignKeyField(
        "loyalty.Offer", related_name=False, on_delete=fields.RESTRICT
    )
    offer_id: int
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    store_code = fields.CharField(max_length=32)
    purchase: fields.ForeignKeyNullableRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    purchase_id: int | None
    redeemed_at = fields.DatetimeField()

    class Meta:
        table = "offer_redemption"
        indexes = (("offer_id", "member_id"),)
