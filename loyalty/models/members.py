"""Members and their cached balances (always equal to the sum of their ledger entries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.program import Tier


class Member(Model):
    id = fields.IntField(primary_key=True)
    firebase_uid = fields.CharField(max_length=128, unique=True)
    member_number = fields.CharField(max_length=16, unique=True)
    email = fields.CharField(max_length=254, null=True, db_index=True)
    phone = fields.CharField(max_length=32, null=True, db_index=True)
    # The email as the person behind it is identified (case, and dots and +tags where the provider ignores
    # them: `loyalty.referrals.email_key`), for the referral abuse checks.
    email_key = fields.CharField(max_length=254, null=True, db_index=True)
    # The member's referral code (`loyalty.referrals`); given on first use.
    referral_code = fields.CharField(max_length=16, null=True, unique=True)
    display_name = fields.CharField(max_length=100, default="")
    birthday = fields.DateField(null=True)
    interests: fields.JSONField[list[str]] = fields.JSONField(default=list)
    marketing_consent = fields.BooleanField(default=False)
    marketing_consent_at = fields.DatetimeField(null=True)
    timezone = fields.CharField(max_length=64, default="UTC")
    card_secret = fields.CharField(max_length=64)

    tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    tier_id: int | None
    tier_since = fields.DatetimeField(null=True)
    tier_held_until = fields.DatetimeField(null=True)
    manual_tier: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    manual_tier_id: int | None
    manual_tier_until = fields.DatetimeField(null=True)
    # The standing before the member's latest run of upgrades in the current period (`tier_upgraded_at` set):
    # a refund that takes away the qualifying value an upgrade rested on restores it (`loyalty.tiers`).
    tier_upgraded_at = fields.DatetimeField(null=True)
    tier_before_upgrade: fields.ForeignKeyNullableRelation[Tier] = fields.ForeignKeyField(
        "loyalty.Tier", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    tier_before_upgrade_id: int | None
    tier_before_upgrade_held_until = fields.DatetimeField(null=True)

    # Cached balances; the ledger is the truth and an invariant test checks they agree.
    points_available = fields.BigIntField(default=0)
    points_pending = fields.BigIntField(default=0)
    lifetime_earned = fields.BigIntField(default=0)
    # Cached cashback balance (minor units of the program currency); the cashback ledger is the truth.
    cashback_balance = fields.BigIntField(default=0, db_default=0)
    # Earliest moment a lot of this member matures or expires: reads settle the member when it is due.
    next_settle_at = fields.DatetimeField(null=True)

    last_purchase_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "member"
