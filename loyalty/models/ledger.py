"""The points ledger: lots, append-only entries, allocations of debits to lots, purchases and refunds."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class LotStatus(StrEnum):
    PENDING = "pending"  # inside the return window, not spendable yet
    AVAILABLE = "available"
    EXPIRED = "expired"
    VOID = "void"  # fully clawed back or reversed


class EntryKind(StrEnum):
    EARN = "earn"
    MATURE = "mature"  # pending -> available at the end of the return window
    REDEEM = "redeem"
    EXPIRE = "expire"
    REFUND_CLAWBACK = "refund_clawback"
    ADJUSTMENT = "adjustment"
    REFERRAL_BONUS = "referral_bonus"
    BIRTHDAY = "birthday"
    REVERSAL = "reversal"


class PointsLot(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    amount = fields.BigIntField()
    remaining = fields.BigIntField()
    status = fields.CharEnumField(LotStatus, max_length=16)
    created_at = fields.DatetimeField()
    available_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)
    purchase: fields.ForeignKeyNullableRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    purchase_id: int | None

    class Meta:
        table = "points_lot"
        indexes = (
            ("member_id", "status", "expires_at"),
            ("status", "available_at"),
            ("status", "expires_at"),
            ("purchase_id",),  # a refund's own lots
        )


class LedgerEntry(Model):
    # One change of a member's points. Never updated, never deleted.

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    kind = fields.CharEnumField(EntryKind, max_length=24)
    delta_available = fields.BigIntField(default=0)
    delta_pending = fields.BigIntField(default=0)
    delta_lifetime = fields.BigIntField(default=0)
    # Points a debit should have taken but could not (refund clawback beyond the balance).
    unrecovered = fields.BigIntField(default=0)
    description = fields.CharField(max_length=200, default="")
    lot: fields.ForeignKeyNullableRelation[PointsLot] = fields.ForeignKeyField(
        "loyalty.PointsLot", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    lot_id: int | None
    purchase: fields.ForeignKeyNullableRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    purchase_id: int | None
    reverses: fields.ForeignKeyNullableRelation[LedgerEntry] = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, null=True, unique=True, on_delete=fields.RESTRICT
    )
    reverses_id: int | None
    created_at = fields.DatetimeField()
    # When it happened in business terms: a purchase's receipt time for its earn entry (a till may send a receipt
    # later); otherwise when it was written. NULL only on entries written before the column existed.
    occurred_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ledger_entry"
        indexes = (("member_id", "id"),)


class LotAllocation(Model):
    # How many points a debit entry took from one lot (or, for a reversal, gave back).

    id = fields.BigIntField(primary_key=True)
    entry: fields.ForeignKeyRelation[LedgerEntry] = fields.ForeignKeyField(
        "loyalty.LedgerEntry", related_name=False, on_delete=fields.RESTRICT
    )
    entry_id: int
    lot: fields.ForeignKeyRelation[PointsLot] = fields.ForeignKeyField(
        "loyalty.PointsLot", related_name=False, on_delete=fields.RESTRICT
    )
    lot_id: int
    amount = fields.BigIntField()

    class Meta:
        table = "lot_allocation"


class Purchase(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    store_code = fields.CharField(max_length=32)
    receipt_id = fields.CharField(max_length=64)
    occurred_at = fields.DatetimeField()
    currency = fields.CharField(max_length=3)
    total = fields.BigIntField()  # minor units
    points_earned = fields.BigIntField()
    qualifying_value = fields.BigIntField()
    refunded_total = fields.BigIntField(default=0)
    points_reversed = fields.BigIntField(default=0)
    # A fingerprint of the payment card, if the till sends one (referral abuse checks), stored hashed.
    payment_fingerprint = fields.CharField(max_length=64, null=True, db_index=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "purchase"
        unique_together = (("store_code", "receipt_id"),)
        indexes = (("member_id", "occurred_at"),)  # the daily purchase limit's sum


class Refund(Model):
    id = fields.IntField(primary_key=True)
    purchase: fields.ForeignKeyRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, on_delete=fields.RESTRICT
    )
    purchase_id: int
    refund_id = fields.CharField(max_length=64)
    amount = fields.BigIntField()
    points_reversed = fields.BigIntField()
    points_recovered = fields.BigIntField()
    unrecovered = fields.BigIntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "refund"
        unique_together = (("purchase", "refund_id"),)


class QualifyingCredit(Model):
    # Tier qualification, kept apart from the spendable balance so that redeeming never drops a tier.

    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    amount = fields.BigIntField()  # negative for refunds
    occurred_at = fields.DatetimeField()
    purchase: fields.ForeignKeyNullableRelation[Purchase] = fields.ForeignKeyField(
        "loyalty.Purchase", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    purchase_id: int | None

    class Meta:
        table = "qualifying_credit"
        indexes = (("member_id", "occurred_at"),)


class IdempotencyRecord(Model):
    # The first answer to an idempotent request; the unique key makes concurrent duplicates collide.

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=64)
    key = fields.CharField(max_length=128)
    request_hash = fields.CharField(max_length=64)
    response: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_record"
        unique_together = (("scope", "key"),)
