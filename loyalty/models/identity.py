"""Member sessions: rotating refresh tokens, stored hashed, grouped in families for reuse detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class RefreshToken(Model):
    id = fields.IntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    family = fields.UUIDField(db_index=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    # A hash of the app installation that signed in, if the app sent one (the referral abuse checks: the same
    # device behind a referrer and a referee); kept through rotations of the family.
    device_hash = fields.CharField(max_length=64, null=True, db_index=True)

    class Meta:
        table = "refresh_token"
