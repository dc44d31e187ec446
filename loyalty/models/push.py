"""App push: the member's devices, their consents, the messages they are sent (which are also their inbox), the pushes
owed to each device, push campaigns and the lifecycle automations.

A `PushMessage` is one message to one member for one occasion (`occasion` is unique per member: a campaign, the
welcome, points earned by one receipt, a birthday of one year…), so a producer that runs twice writes it once. It is
due at `due_at`; when it is released (consent, frequency caps and quiet hours checked then, `loyalty.messages`) it
lands in the inbox (`sent_at`) and owes one `PushDelivery` per device of the member (unique per message and device:
at least once, never twice by our doing). Deliveries are leased like every other outbox consumer's rows
(`loyalty.leases`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from loyalty.models.members import Member
    from loyalty.models.offers import Offer


class DevicePlatform(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class Device(Model):
    # A registration token of the app on one device. Unique: a token that moves to another member moves with it.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    token = fields.CharField(max_length=512, unique=True)
    platform = fields.CharEnumField(DevicePlatform, max_length=16)
    app_version = fields.CharField(max_length=32, default="")
    locale = fields.CharField(max_length=16, default="")
    created_at = fields.DatetimeField()
    # Refreshed by each registration and each successful send: tokens unused for 270 days are deleted.
    last_seen_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "device"
        # A member's devices (the sender, the campaign's locale of the latest device, the per-member cap).
        indexes = (("member_id", "last_seen_at"),)


class ConsentChannel(StrEnum):
    PUSH = "push"
    EMAIL = "email"
    SMS = "sms"


class ConsentPurpose(StrEnum):
    MARKETING = "marketing"


class ConsentSource(StrEnum):
    APP = "app"  # the member, in the app
    STAFF = "staff"  # a staff member on the member's behalf
    IMPORT = "import"  # a migration from another system
    SYSTEM = "system"  # klubb itself (an erasure, a bounced channel)


class Consent(Model):
    # The current consent of a member for one channel and purpose; `ConsentChange` keeps every change.
    # `member.marketing_consent` caches (push, marketing) for the audience queries; `loyalty.consent` writes both.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    channel = fields.CharEnumField(ConsentChannel, max_length=16)
    purpose = fields.CharEnumField(ConsentPurpose, max_length=16)
    granted = fields.BooleanField()
    source = fields.CharEnumField(ConsentSource, max_length=16)
    changed_at = fields.DatetimeField()

    class Meta:
        table = "consent"
        unique_together = (("member_id", "channel", "purpose"),)


class ConsentChange(Model):
    # Append-only: who changed which consent, when and how.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    channel = fields.CharEnumField(ConsentChannel, max_length=16)
    purpose = fields.CharEnumField(ConsentPurpose, max_length=16)
    granted = fields.BooleanField()
    source = fields.CharEnumField(ConsentSource, max_length=16)
    actor = fields.CharField(max_length=64)  # "member:<id>", "staff:<id>", "system"
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "consent_change"
        indexes = (("member_id", "recorded_at"),)


class MessagePurpose(StrEnum):
    TRANSACTIONAL = "transactional"  # needs a device only
    MARKETING = "marketing"  # needs the member's opt-in (push, marketing)


class MessageStatus(StrEnum):
    SCHEDULED = "scheduled"  # waiting for `due_at` (quiet hours move it)
    SENT = "sent"  # released: in the inbox, deliveries owed
    SUPPRESSED = "suppressed"  # not sent: `suppressed_reason` says why (consent, cap, expired, no device)


class PushCampaignStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"  # writing the audience's messages (resumable: `cursor_member_id`)
    SENT = "sent"  # every message written
    CANCELLED = "cancelled"


class PushCampaign(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100)
    # Localised texts: {"en": "...", "sv": "..."}; the member's device locale picks, else the program's default.
    title: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    body: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    offer: fields.ForeignKeyNullableRelation[Offer] = fields.ForeignKeyField(
        "loyalty.Offer", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    offer_id: int | None
    deep_link = fields.CharField(max_length=500, default="")
    # The audience, as offers target (`loyalty.offers`): empty means anyone.
    tier_names: fields.JSONField[list[str]] = fields.JSONField(default=list)
    min_tier_rank = fields.SmallIntField(null=True)
    lifecycle_stages: fields.JSONField[list[str]] = fields.JSONField(default=list)
    birthday_month = fields.BooleanField(default=False)
    interests: fields.JSONField[list[str]] = fields.JSONField(default=list)
    min_spend = fields.BigIntField(null=True)  # qualifying spend in the current tier period, minor units
    status = fields.CharEnumField(PushCampaignStatus, max_length=16, default=PushCampaignStatus.DRAFT)
    scheduled_at = fields.DatetimeField(null=True)
    # The attached offer redeemed within this many days of the message counts as converted.
    conversion_days = fields.IntField(default=7)
    cursor_member_id = fields.IntField(default=0)  # the audience written so far (member ids ascending)
    targeted = fields.IntField(default=0)
    started_at = fields.DatetimeField(null=True)
    finished_at = fields.DatetimeField(null=True)
    locked_until = fields.DatetimeField(null=True)  # the worker writing its messages
    created_by = fields.CharField(max_length=64, default="")
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "push_campaign"
        indexes = (("status", "scheduled_at"),)


class AutomationKind(StrEnum):
    WELCOME = "welcome"
    POINTS_EARNED = "points_earned"
    POINTS_EXPIRING = "points_expiring"
    CLOSE_TO_TIER = "close_to_tier"
    WIN_BACK = "win_back"
    BIRTHDAY = "birthday"
    VOUCHER_EXPIRING = "voucher_expiring"


class PushAutomation(Model):
    # One lifecycle automation's configuration (`loyalty.automations` says what each kind does with `settings`).
    id = fields.IntField(primary_key=True)
    kind = fields.CharEnumField(AutomationKind, max_length=32, unique=True)
    enabled = fields.BooleanField(default=False)
    title: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    body: fields.JSONField[dict[str, str]] = fields.JSONField(default=dict)
    # Timing and thresholds: {"delay_minutes": 10}, {"within_days": 14}, {"within_percent": 10}…
    settings: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "push_automation"


class PushPolicy(Model):
    # The program's sending policy (one row): frequency caps per member and purpose, and quiet hours in the member's
    # timezone. A cap of NULL means no cap.
    id = fields.IntField(primary_key=True)
    marketing_per_day = fields.IntField(null=True, default=1)
    marketing_per_week = fields.IntField(null=True, default=3)
    transactional_per_day = fields.IntField(null=True, default=10)
    transactional_per_week = fields.IntField(null=True)
    quiet_start = fields.TimeField(null=True)  # local time; quiet hours may span midnight (21:00 to 08:00)
    quiet_end = fields.TimeField(null=True)
    default_locale = fields.CharField(max_length=16, default="en")
    # Devices neither registered nor sent to for this long are deleted (FCM: tokens stale after 270 days).
    device_retention_days = fields.IntField(default=270)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "push_policy"


class PushMessage(Model):
    # One message to one member: the inbox item once sent.
    id = fields.BigIntField(primary_key=True)
    member: fields.ForeignKeyRelation[Member] = fields.ForeignKeyField(
        "loyalty.Member", related_name=False, on_delete=fields.CASCADE
    )
    member_id: int
    occasion = fields.CharField(max_length=128)  # "campaign:12", "welcome", "points_earned:<event id>", …
    purpose = fields.CharEnumField(MessagePurpose, max_length=16)
    urgent = fields.BooleanField(default=False)  # transactional and urgent: sent in quiet hours too
    campaign: fields.ForeignKeyNullableRelation[PushCampaign] = fields.ForeignKeyField(
        "loyalty.PushCampaign", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    campaign_id: int | None
    automation = fields.CharEnumField(AutomationKind, max_length=32, null=True)
    title = fields.CharField(max_length=200)
    body = fields.CharField(max_length=1000)
    # What the message opens: "offer:<id>", "reward:<id>", "voucher:<id>" or "" (the app's home).
    target = fields.CharField(max_length=64, default="")
    offer: fields.ForeignKeyNullableRelation[Offer] = fields.ForeignKeyField(
        "loyalty.Offer", related_name=False, null=True, on_delete=fields.RESTRICT
    )
    offer_id: int | None
    collapse_key = fields.CharField(max_length=64, default="")
    status = fields.CharEnumField(MessageStatus, max_length=16, default=MessageStatus.SCHEDULED)
    suppressed_reason = fields.CharField(max_length=32, default="")
    due_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(null=True)  # the attached offer's end: the inbox item and its pushes expire
    locked_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    delivered_at = fields.DatetimeField(null=True)  # FCM accepted it for at least one device
    read_at = fields.DatetimeField(null=True)
    opened_at = fields.DatetimeField(null=True)

    class Meta:
        table = "push_message"
        unique_together = (("member_id", "occasion"),)
        indexes = (("status", "due_at"), ("member_id", "sent_at"), ("campaign_id", "status"))


class PushDeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"  # FCM accepted it
    DROPPED = "dropped"  # the token was unregistered, the message invalid or expired, or retries ran out


class PushDelivery(Model):
    # One push owed to one device for one message.
    id = fields.BigIntField(primary_key=True)
    message: fields.ForeignKeyRelation[PushMessage] = fields.ForeignKeyField(
        "loyalty.PushMessage", related_name=False, on_delete=fields.CASCADE
    )
    message_id: int
    device: fields.ForeignKeyNullableRelation[Device] = fields.ForeignKeyField(
        "loyalty.Device", related_name=False, null=True, on_delete=fields.SET_NULL
    )
    device_id: int | None
    token = fields.CharField(max_length=512)  # as it was when owed: a device deleted later leaves the record
    status = fields.CharEnumField(PushDeliveryStatus, max_length=16, default=PushDeliveryStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    fcm_message_id = fields.CharField(max_length=200, default="")
    last_error = fields.CharField(max_length=500, default="")
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "push_delivery"
        unique_together = (("message_id", "device_id"),)
        indexes = (("status", "next_attempt_at"),)
