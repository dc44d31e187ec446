"""The member card in Apple Wallet and Google Wallet: one pass per member and platform, the devices it is on, the
update pushes owed to them, and the single-use download links the app hands out.

`WalletPass` is the shared state of both platforms: a random serial, the hash of the pass's web-service token
(Apple's `ApplePass <token>`; empty for Google), the update tag and when the pass's content last changed (with a
digest of that content, so an event that changes nothing a pass shows moves nothing), and whether the member has
it installed (Apple: a device registered for it; Google: the save callback).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member


class WalletPlatform(StrEnum):
    APPLE = "apple"
    GOOGLE = "google"


class WalletPass(Model):
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    platform = fields.CharEnumField(WalletPlatform, max_length=16)
    serial_number = fields.CharField(max_length=64, unique=True)
    # SHA-256 (hex) of the web-service authentication token; the token itself is never stored.
    auth_token_hash = fields.CharField(max_length=64, default="")
    # Moves whenever the pass's content changes: Apple's "passes updated since <tag>" compares it.
    update_tag = fields.BigIntField(default=0, db_index=True)
    last_updated = fields.DatetimeField()
    # SHA-256 of what the pass shows (`loyalty.wallet.PassContent`): an update that changes nothing moves nothing.
    content_digest = fields.CharField(max_length=64, default="")
    installed = fields.BooleanField(default=False)
    installed_at = fields.DatetimeField(null=True)  # the latest install
    removed_at = fields.DatetimeField(null=True)  # the latest removal
    created_at = fields.DatetimeField()

    class Meta:
        table = "wallet_pass"
        unique_together = (("member_id", "platform"),)


class WalletRegistration(Model):
    # An Apple device registered for a pass (PassKit web service): where to push the pass's updates.
    id = fields.BigIntField(primary_key=True)
    wallet_pass: fields.ForeignKeyRelation[WalletPass] = fields.ForeignKeyField(
        "loyalty.WalletPass", related_name=False, on_delete=fields.CASCADE
    )
    wallet_pass_id: int
    device_library_id = fields.CharField(max_length=128, db_index=True)
    push_token = fields.CharField(max_length=200, db_index=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "wallet_registration"
        unique_together = (("device_library_id", "wallet_pass_id"),)


class WalletPush(Model):
    # The pushes owed to one device push token, coalesced: a burst of updates raises `wanted` several times and the
    # device gets one push (its Wallet then asks which of its passes changed). Due while `sent < wanted`.
    id = fields.BigIntField(primary_key=True)
    push_token = fields.CharField(max_length=200, unique=True)
    wanted = fields.BigIntField(default=0)
    sent = fields.BigIntField(default=0)
    attempts = fields.IntField(default=0)  # failed attempts since the last success
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_status_code = fields.IntField(null=True)
    last_error = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField()
    pushed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "wallet_push"
        indexes = (("next_attempt_at", "id"),)


class WalletLinkUse(Model):
    # A pass download link spent: its unique id makes the link single-use.
    id = fields.BigIntField(primary_key=True)
    link_id = fields.CharField(max_length=64, unique=True)
    member_id = fields.IntField()
    used_at = fields.DatetimeField()

    class Meta:
        table = "wallet_link_use"


class WalletBarcode(StrEnum):
    QR = "qr"
    PDF417 = "pdf417"
    AZTEC = "aztec"
    CODE128 = "code128"


def default_languages() -> list[str]:
    return ["en", "sv"]


class WalletDesign(Model):
    # How the program's passes look and read (one row, seeded from the program TOML's `[wallet]` section).
    id = fields.IntField(primary_key=True)
    organization_name = fields.CharField(max_length=100, default="")  # empty: the program's name
    description = fields.CharField(max_length=200, default="")  # empty: "<program> member card"
    logo_text = fields.CharField(max_length=100, default="")
    background_color = fields.CharField(max_length=32, default="rgb(32, 33, 36)")
    foreground_color = fields.CharField(max_length=32, default="rgb(255, 255, 255)")
    label_color = fields.CharField(max_length=32, default="rgb(190, 190, 190)")
    barcode_format = fields.CharEnumField(WalletBarcode, max_length=16, default=WalletBarcode.QR)
    terms = fields.TextField(default="")  # the back of the card
    languages: fields.JSONField[list[str]] = fields.JSONField(default=default_languages)

    class Meta:
        table = "wallet_design"
