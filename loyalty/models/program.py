"""Program configuration: one program per deployment, its tiers and earning parameters."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields
from tortoise.models import Model


class TierPeriod(StrEnum):
    CALENDAR_YEAR = "calendar_year"
    ROLLING_12_MONTHS = "rolling_12_months"


class TierMetric(StrEnum):
    POINTS = "points"  # base points earned on purchases (before multipliers)
    SPEND = "spend"  # net spend in minor units


class Program(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    currency = fields.CharField(max_length=3)
    currency_exponent = fields.SmallIntField(default=2)
    # Points per major currency unit (1.0 = one point per euro); fractions are floored per purchase.
    earn_rate = fields.DecimalField(max_digits=10, decimal_places=4)
    pending_days = fields.IntField(default=14)
    # Lifetime of a lot once it is available; NULL means points never expire.
    expiry_days = fields.IntField(null=True)
    expiring_soon_days = fields.IntField(default=30)
    allow_negative_balance = fields.BooleanField(default=False)
    tier_metric = fields.CharEnumField(TierMetric, max_length=16, default=TierMetric.POINTS)
    tier_period = fields.CharEnumField(TierPeriod, max_length=24, default=TierPeriod.CALENDAR_YEAR)
    card_code_seconds = fields.IntField(default=60)
    timezone = fields.CharField(max_length=64, default="UTC")
    # Line categories that never earn (gift cards, deposits).
    excluded_categories: fields.JSONField[list[str]] = fields.JSONField(default=list)
    birthday_points = fields.IntField(default=0)
    # Lifecycle: new for `new_member_days` after enrollment; lapsing/lapsed after that many days without a purchase.
    new_member_days = fields.IntField(default=30)
    lapsing_after_days = fields.IntField(default=60)
    lapsed_after_days = fields.IntField(default=180)
    # Manual adjustments above this many points need a manager.
    adjustment_cap = fields.IntField(default=500)
    # Sanity limits (minor units): a receipt above `max_purchase_total`, or a member's receipts of one day (in the
    # program's timezone, net of refunds) above `max_daily_purchase_total`, is refused (a typo must not mint points).
    max_purchase_total = fields.BigIntField(default=1_000_000, db_default=1_000_000)
    max_daily_purchase_total = fields.BigIntField(default=2_500_000, db_default=2_500_000)
    # Bumped by database triggers (migration 0005) on every write to the configuration tables (program, tier,
    # campaign, bonus rule, stamp card, reward): `loyalty.program.current_configuration` compares it with its
    # cached snapshot's, so a write by any process invalidates the snapshot in every process.
    version = fields.BigIntField(default=1, db_default=1)

    tiers: fields.ReverseRelation[Tier]

    class Meta:
        table = "program"


class Tier(Model):
    id = fields.IntField(primary_key=True)
    program: fields.ForeignKeyRelation[Program] = fields.ForeignKeyField(
        "loyalty.Program", related_name="tiers", on_delete=fields.CASCADE
    )
    program_id: int
    name = fields.CharField(max_length=64)
    rank = fields.SmallIntField()  # 0 = entry tier, higher is better
    threshold = fields.BigIntField()  # qualifying value needed in one period
    multiplier = fields.DecimalField(max_digits=6, decimal_places=3, default=1)
    benefits: fields.JSONField[list[str]] = fields.JSONField(default=list)

    class Meta:
        table = "tier"
        unique_together = (("program", "rank"),)
        ordering = ["rank"]
