"""Referrals: one code per member, the referral a referee attached, and the program's referral policy."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.ledger import LedgerEntry, Purchase
    from loyalty.models.members import Member
    from loyalty.models.staff import StaffUser


class ReferralStatus(StrEnum):
    APPLIED = "applied"  # code attached, waiting for the referee's first qualifying purchase
    FLAGGED = "flagged"  # an abuse check matched: earns nothing until a manager approves it
    CONVERTED = "converted"  # qualifying purchase recorded: bonuses pending until its return window ends
    REWARDED = "rewarded"  # the return window ended: bonuses available
    CANCELLED = "cancelled"  # the qualifying purchase was refunded inside its return window
    REJECTED = "rejected"  # a manager rejected a flagged referral


class Referral(Model):
    # The referral a referee attached (at most one per referee, ever).
    id = fields.IntField(primary_key=True)
    referrer: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    referrer_id: int
    referee: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, unique=True, on_delete=fields.RESTRICT
    )
    referee_id: int
    code = fields.CharField(max_length=16)  # as applied
    status = fields.CharEnumField(ReferralStatus, max_length=16)
    # The abuse checks that matched: [{"check": "SELF_REFERRAL_EMAIL", "detail": "..."}]; kept after review.
    flags: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    # A hash of the app installation the referee applied from (abuse checks: one device, many referees).
    device_hash = fields.CharField(max_length=64, null=True, db_index=True)
    applied_at = fields.DatetimeField()
    # The referee's first qualifying purchase, and when its return window ends (the bonuses become available).
    purchase: fields.ForeignKeyNullableRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    purchase_id: int | None
    converted_at = fields.DatetimeField(null=True)
    available_at = fields.DatetimeField(null=True)
    rewarded_at = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    # The bonuses as configured when the referral converted (0 for a referrer over a cap), and their entries.
    referee_points = fields.BigIntField(default=0)
    referrer_points = fields.BigIntField(default=0)
    referee_entry: fields.ForeignKeyNullableRelation[LedgerEntry] = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    referee_entry_id: int | None
    referrer_entry: fields.ForeignKeyNullableRelation[LedgerEntry] = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    referrer_entry_id: int | None
    # A manager's review of a flagged referral.
    reviewed_by: fields.ForeignKeyNullableRelation[StaffUser] = fields.ForeignKeyField(
        "loyalty.StaffUser", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    reviewed_by_id: int | None
    reviewed_at = fields.DatetimeField(null=True)
    review_note = fields.CharField(max_length=200, default="")
    updated_at = fields.DatetimeField()

    class Meta:
        table = "referral"
        indexes = (
            ("referrer_id", "status"),  # the referrer's counts and caps
            ("referrer_id", "converted_at"),  # the monthly cap
            ("status", "available_at"),  # the job that rewards converted referrals whose window ended
        )


class ReferralPolicy(Model):
    # The program's referral settings (one row, `[referrals]` in the program TOML). Points of 0 turn a side off.
    id = fields.IntField(primary_key=True)
    enabled = fields.BooleanField(default=True)
    referee_points = fields.IntField(default=0)  # the friend's welcome bonus
    referrer_points = fields.IntField(default=0)
    min_spend = fields.BigIntField(default=0)  # minor units: the first purchase at least this much qualifies
    apply_days = fields.IntField(default=14)  # a code can be attached this many days after enrolment
    referrer_cap_per_month = fields.IntField(null=True)  # rewarded referrals per referrer and calendar month
    referrer_cap_lifetime = fields.IntField(null=True)
    # Many referees from one device: more than `device_max_referees` within `device_window_hours` are flagged.
    device_max_referees = fields.IntField(default=2)
    device_window_hours = fields.IntField(default=72)
    # The landing page's links; empty means not shown.
    app_store_url = fields.CharField(max_length=500, default="")
    play_store_url = fields.CharField(max_length=500, default="")
    open_app_url = fields.CharField(max_length=500, default="")  # a universal link / deep link; {code} is replaced
    updated_at = fields.DatetimeField()

    class Meta:
        table = "referral_policy"
