"""Earning rules beyond the base rate: campaigns, category/SKU bonuses, purchase lines, engagement events."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.ledger import Purchase
    from loyalty.models.members import Member


class Campaign(Model):
    # A time-windowed points multiplier ("double points weekend"), optionally for some tiers only.
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    multiplier = fields.DecimalField(max_digits=6, decimal_places=3)
    starts_at = fields.DatetimeField()
    ends_at = fields.DatetimeField()
    tier_names: fields.JSONField[list[str]] = fields.JSONField(default=list)  # empty = every tier
    active = fields.BooleanField(default=True)

    class Meta:
        table = "campaign"


class BonusRule(Model):
    # Extra points for lines matching a category or SKU: per item and/or per currency unit.
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    match_type = fields.CharField(max_length=16)  # category | sku
    match_value = fields.CharField(max_length=64)
    points_per_item = fields.IntField(default=0)
    extra_rate = fields.DecimalField(max_digits=10, decimal_places=4, default=0)
    starts_at = fields.DatetimeField(null=True)
    ends_at = fields.DatetimeField(null=True)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "bonus_rule"


class PurchaseLine(Model):
    id = fields.BigIntField(primary_key=True)
    purchase: fields.ForeignKeyRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, on_delete=fields.CASCADE
    )
    purchase_id: int
    line_no = fields.SmallIntField()
    sku = fields.CharField(max_length=64)
    category = fields.CharField(max_length=64, default="")
    quantity = fields.IntField()
    amount = fields.BigIntField()  # line total, minor units
    voided = fields.BooleanField(default=False)
    excluded = fields.BooleanField(default=False)  # gift cards and other non-earning lines
    points = fields.BigIntField(default=0)
    refunded_quantity = fields.IntField(default=0)

    class Meta:
        table = "purchase_line"
        unique_together = (("purchase_id", "line_no"),)


class EngagementRule(Model):
    id = fields.IntField(primary_key=True)
    event_type = fields.CharField(max_length=32, unique=True)  # review_written, social_share, app_installed, ...
    points = fields.IntField()
    per_day_limit = fields.IntField(null=True)
    per_month_limit = fields.IntField(null=True)
    active = fields.BooleanField(default=True)

    class Meta:
        table = "engagement_rule"


class EngagementEvent(Model):
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    event_type = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=128)
    occurred_at = fields.DatetimeField()
    points = fields.IntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "engagement_event"
        unique_together = (("event_type", "external_id"),)
        indexes = (("member_id", "event_type", "occurred_at"),)
