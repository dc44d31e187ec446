"""Cashback: money (minor units of the program currency) in its own append-only ledger, apart from points."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member
    from loyalty.models.rewards import Voucher


class CashbackKind(StrEnum):
    CREDIT = "credit"  # a cashback reward redeemed
    SPEND = "spend"  # spent at a till against a receipt
    PAYOUT = "payout"  # paid out by an integration (to a card, a bank account)
    RETURN = "return"  # a refund of a receipt paid partly with cashback gives it back
    ADJUSTMENT = "adjustment"


class CashbackEntry(Model):
    # One change of a member's cashback balance (`Member.cashback_balance`). Never updated, never deleted.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.RESTRICT
    )
    member_id: int
    kind = fields.CharEnumField(CashbackKind, max_length=16)
    amount = fields.BigIntField()  # minor units: positive credits, negative debits
    currency = fields.CharField(max_length=3)
    voucher: fields.ForeignKeyNullableRelation[Voucher] = fields.ForeignKeyField(
        "loyalty.Voucher", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    voucher_id: int | None
    # A spend's (and its returns') receipt, and a payout's reference in the paying system.
    store_code = fields.CharField(max_length=32, null=True)
    receipt_id = fields.CharField(max_length=64, null=True)
    reference = fields.CharField(max_length=64, null=True)
    # A return: the spend it gives back (part of).
    spend: fields.ForeignKeyNullableRelation[CashbackEntry] = fields.ForeignKeyField(
        "loyalty.CashbackEntry", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    spend_id: int | None
    description = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "cashback_entry"
        indexes = (("member_id", "id"), ("store_code", "receipt_id"))
