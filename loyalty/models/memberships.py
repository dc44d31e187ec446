"""Paid membership: the plans of the program, each member's membership, and the payment events that drive it."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class PlanPeriod(StrEnum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


class MembershipPlan(Model):
    id = fields.IntField(primary_key=True)
    code = fields.CharField(max_length=32, unique=True)  # what the payment system names the plan by
    name = fields.CharField(max_length=100)
    price = fields.BigIntField()  # minor units
    currency = fields.CharField(max_length=3)
    period = fields.CharEnumField(PlanPeriod, max_length=16)
    # Benefits while the membership is active or in grace.
    earn_multiplier = fields.DecimalField(max_digits=6, decimal_places=3, default=1)
    included_offers: fields.JSONField[list[str]] = fields.JSONField(default=list)  # offer names
    free_delivery = fields.BooleanField(default=False)
    # Offers and rewards with `min_membership_rank` are for members whose plan's rank is at least that.
    early_access_rank = fields.SmallIntField(default=0)
    grace_days = fields.IntField(default=7)  # after a failed renewal, benefits stay this long
    active = fields.BooleanField(default=True)  # retired plans take no new members; existing ones run on

    class Meta:
        table = "membership_plan"


class MembershipStatus(StrEnum):
    ACTIVE = "active"
    GRACE = "grace"  # a renewal failed; benefits stay until `grace_until`
    CANCELLED = "cancelled"  # will not renew: benefits until `period_end`, then lapsed
    LAPSED = "lapsed"


class Membership(Model):
    # A member's paid membership (one row per member; a new payment after a lapse starts it again).
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, unique=True, on_delete=fields.RESTRICT
    )
    member_id: int
    plan: fields.ForeignKeyRelation[MembershipPlan] = fields.ForeignKeyField(
        "loyalty.MembershipPlan", related_name=False, on_delete=fields.RESTRICT
    )
    plan_id: int
    status = fields.CharEnumField(MembershipStatus, max_length=16)
    started_at = fields.DatetimeField()
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField()
    grace_until = fields.DatetimeField(null=True)
    cancelled_at = fields.DatetimeField(null=True)
    lapsed_at = fields.DatetimeField(null=True)
    # When the lapse job must look at it next: period end (cancelled, or active without renewal) or grace end.
    due_at = fields.DatetimeField(db_index=True)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "membership"
        indexes = (("status", "due_at"),)


class PaymentOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUNDED = "refunded"


class MembershipPayment(Model):
    # One payment event from the shop's payment system; the payment id (with the outcome) makes it idempotent.
    id = fields.IntField(primary_key=True)
    payment_id = fields.CharField(max_length=64)
    outcome = fields.CharEnumField(PaymentOutcome, max_length=16)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    plan: fields.ForeignKeyRelation[MembershipPlan] = fields.ForeignKeyField(
        "loyalty.MembershipPlan", related_name=False, on_delete=fields.RESTRICT
    )
    plan_id: int
    amount = fields.BigIntField()  # minor units; for a refund, the amount refunded
    currency = fields.CharField(max_length=3)
    refunded_amount = fields.BigIntField(default=0)  # on a succeeded payment: the sum of its refunds
    # The period a succeeded payment paid for.
    period_start = fields.DatetimeField(null=True)
    period_end = fields.DatetimeField(null=True)
    occurred_at = fields.DatetimeField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "membership_payment"
        unique_together = (("payment_id", "outcome"),)
        indexes = (("member_id", "occurred_at"),)
