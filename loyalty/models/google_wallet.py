"""Google Wallet's own state: a loyalty object per member (what Google was last sent, the syncs owed to it, the
notifications spent today) and the save/delete callbacks already handled.

The shared wallet state (installed or not, the install/remove events, "card in wallet") is `WalletPass`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class GoogleWalletObject(Model):
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE, unique=True
    )
    member_id: int
    object_id = fields.CharField(max_length=200, unique=True)  # `<issuerId>.<suffix>`
    inserted = fields.BooleanField(default=False)  # Google is known to have the object (inserted, patched, saved)
    content_digest = fields.CharField(max_length=64, default="")  # SHA-256 of what Google was last sent
    notable_digest = fields.CharField(max_length=64, default="")  # of the balance and tier last sent
    # Syncs owed: a burst of changes raises `wanted` several times and gives one PATCH. Due while `synced < wanted`.
    wanted = fields.BigIntField(default=0)
    synced = fields.BigIntField(default=0)
    attempts = fields.IntField(default=0)  # failed attempts since the last success
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, default="")
    # Google allows a few update notifications per pass per 24 hours: those spent since `notify_window_start`.
    notify_window_start = fields.DatetimeField(null=True)
    notify_count = fields.IntField(default=0)
    created_at = fields.DatetimeField()
    synced_at = fields.DatetimeField(null=True)

    class Meta:
        table = "google_wallet_object"
        indexes = (("next_attempt_at", "id"),)


class GoogleWalletCallback(Model):
    # A save/delete callback handled; Google retries and may deliver twice: its nonce makes it once.
    id = fields.BigIntField(primary_key=True)
    nonce = fields.CharField(max_length=128, unique=True)
    object_id = fields.CharField(max_length=200)
    event_type = fields.CharField(max_length=16)
    received_at = fields.DatetimeField()

    class Meta:
        table = "google_wallet_callback"
