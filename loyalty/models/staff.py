"""Staff accounts, integration API keys and the append-only audit log of staff actions."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class StaffRole(StrEnum):
    CASHIER = "cashier"
    MANAGER = "manager"
    ADMIN = "admin"


class StaffUser(Model):
    id = fields.IntField(primary_key=True)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=255)
    display_name = fields.CharField(max_length=100, default="")
    role = fields.CharEnumField(StaffRole, max_length=16)
    # Stores this account may act in; empty = every store.
    store_codes: fields.JSONField[list[str]] = fields.JSONField(default=list)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_user"


class ApiKey(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # Public, non-secret part of the key, used to find the row; the secret part is stored hashed.
    prefix = fields.CharField(max_length=16, unique=True)
    key_hash = fields.CharField(max_length=64)
    role = fields.CharEnumField(StaffRole, max_length=16)
    store_code = fields.CharField(max_length=32, null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    last_used_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class AuditLog(Model):
    # Who did what, when, where, with the state before and after. Never updated, never deleted.
    id = fields.BigIntField(primary_key=True)
    actor_type = fields.CharField(max_length=16)  # staff | api_key
    actor_id = fields.IntField()
    action = fields.CharField(max_length=64)
    store_code = fields.CharField(max_length=32, null=True)
    member: fields.ForeignKeyNullableRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    member_id: int | None
    target = fields.CharField(max_length=100, default="")
    before: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    after: fields.JSONField[dict[str, Any] | None] = fields.JSONField(null=True)
    reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_log"
        indexes = (("member_id", "id"), ("actor_type", "actor_id", "id"))


class ThrottleCounter(Model):
    # Attempts counted against a subject (a staff session, an email, a member) in the window its first attempt
    # opened. One row per subject: the conditional updates on it are what make the throttle race-free.
    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=32)
    subject = fields.CharField(max_length=128)
    window_start = fields.DatetimeField()
    attempts = fields.IntField()

    class Meta:
        table = "throttle_counter"
        unique_together = (("scope", "subject"),)


class CardCodeUse(Model):
    # A rotating card code accepted once at a till; the unique key makes it single-use.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    code = fields.CharField(max_length=16)
    used_at = fields.DatetimeField()

    class Meta:
        table = "card_code_use"
        unique_together = (("member_id", "code"),)
