"""App push (issue 11): devices, consents with their history, push campaigns, automations, the sending policy, messages
(the inbox) and the deliveries owed to devices. The members' existing marketing opt-in becomes their (push,
marketing) consent, recorded as a change made by the system at migration time.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.models.push import AutomationKind, ConsentChannel, ConsentPurpose, ConsentSource, DevicePlatform, MessagePurpose, MessageStatus, PushCampaignStatus, PushDeliveryStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

BACKFILL_CONSENT = (
    'INSERT INTO "consent" ("member_id", "channel", "purpose", "granted", "source", "changed_at")'
    ' SELECT "id", \'push\', \'marketing\', "marketing_consent", \'system\', COALESCE("marketing_consent_at", "created_at")'
    ' FROM "member" WHERE "marketing_consent_at" IS NOT NULL OR "marketing_consent";'
    ' INSERT INTO "consent_change" ("member_id", "channel", "purpose", "granted", "source", "actor", "recorded_at")'
    ' SELECT "member_id", "channel", "purpose", "granted", "source", \'system\', "changed_at" FROM "consent"'
)

# The outbox worker's wake-up (`worker.wakeup`): PostgreSQL only (SQLite has no NOTIFY). Statement-level, so a
# purchase's batched INSERT of its events is one notify; PostgreSQL delivers it at commit, once per transaction (equal
# notifications coalesce), and never for a rollback. Only a wake-up: the worker's poll stays the truth.
NOTIFY_FORWARD = [
    """CREATE OR REPLACE FUNCTION klubb_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('klubb_outbox', '');
    RETURN NULL;
END $$""",
    'CREATE TRIGGER "outbox_event_notify" AFTER INSERT ON "outbox_event"'
    " FOR EACH STATEMENT EXECUTE FUNCTION klubb_outbox_notify()",
]
NOTIFY_BACKWARD = [
    'DROP TRIGGER IF EXISTS "outbox_event_notify" ON "outbox_event"',
    "DROP FUNCTION IF EXISTS klubb_outbox_notify()",
]


async def _notify_trigger(state_editor: Any, statements: list[str]) -> None:
    if state_editor.DIALECT != "postgres":
        return
    for statement in statements:
        await state_editor.client.execute_script(statement)


async def notify_forward(apps: Any, state_editor: Any) -> None:
    await _notify_trigger(state_editor, NOTIFY_FORWARD)


async def notify_backward(apps: Any, state_editor: Any) -> None:
    await _notify_trigger(state_editor, NOTIFY_BACKWARD)



class Migration(migrations.Migration):
    dependencies = [('loyalty', '0009_unique_foreign_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Consent',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='PUSH: push\nEMAIL: email\nSMS: sms', enum_type=ConsentChannel, max_length=16)),
                ('purpose', fields.CharEnumField(description='MARKETING: marketing', enum_type=ConsentPurpose, max_length=16)),
                ('granted', fields.BooleanField()),
                ('source', fields.CharEnumField(description='APP: app\nSTAFF: staff\nIMPORT: import\nSYSTEM: system', enum_type=ConsentSource, max_length=16)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent', 'app': 'loyalty', 'unique_together': (('member_id', 'channel', 'purpose'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ConsentChange',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharEnumField(description='PUSH: push\nEMAIL: email\nSMS: sms', enum_type=ConsentChannel, max_length=16)),
                ('purpose', fields.CharEnumField(description='MARKETING: marketing', enum_type=ConsentPurpose, max_length=16)),
                ('granted', fields.BooleanField()),
                ('source', fields.CharEnumField(description='APP: app\nSTAFF: staff\nIMPORT: import\nSYSTEM: system', enum_type=ConsentSource, max_length=16)),
                ('actor', fields.CharField(max_length=64)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'consent_change', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'recorded_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Device',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('token', fields.CharField(unique=True, max_length=512)),
                ('platform', fields.CharEnumField(description='IOS: ios\nANDROID: android\nWEB: web', enum_type=DevicePlatform, max_length=16)),
                ('app_version', fields.CharField(default='', max_length=32)),
                ('locale', fields.CharField(default='', max_length=16)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'device', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'last_seen_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushAutomation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharEnumField(unique=True, description='WELCOME: welcome\nPOINTS_EARNED: points_earned\nPOINTS_EXPIRING: points_expiring\nCLOSE_TO_TIER: close_to_tier\nWIN_BACK: win_back\nBIRTHDAY: birthday\nVOUCHER_EXPIRING: voucher_expiring', enum_type=AutomationKind, max_length=32)),
                ('enabled', fields.BooleanField(default=False)),
                ('title', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('body', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('settings', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_automation', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushCampaign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('title', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('body', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('offer', fields.ForeignKeyField('loyalty.Offer', source_field='offer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('deep_link', fields.CharField(default='', max_length=500)),
                ('tier_names', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('min_tier_rank', fields.SmallIntField(null=True)),
                ('lifecycle_stages', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('birthday_month', fields.BooleanField(default=False)),
                ('interests', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('min_spend', fields.BigIntField(null=True)),
                ('status', fields.CharEnumField(default=PushCampaignStatus.DRAFT, description='DRAFT: draft\nSCHEDULED: scheduled\nSENDING: sending\nSENT: sent\nCANCELLED: cancelled', enum_type=PushCampaignStatus, max_length=16)),
                ('scheduled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('conversion_days', fields.IntField(default=7)),
                ('cursor_member_id', fields.IntField(default=0)),
                ('targeted', fields.IntField(default=0)),
                ('started_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.CharField(default='', max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_campaign', 'app': 'loyalty', 'indexes': [Index(fields=['status', 'scheduled_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushMessage',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('occasion', fields.CharField(max_length=128)),
                ('purpose', fields.CharEnumField(description='TRANSACTIONAL: transactional\nMARKETING: marketing', enum_type=MessagePurpose, max_length=16)),
                ('urgent', fields.BooleanField(default=False)),
                ('campaign', fields.ForeignKeyField('loyalty.PushCampaign', source_field='campaign_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('automation', fields.CharEnumField(null=True, description='WELCOME: welcome\nPOINTS_EARNED: points_earned\nPOINTS_EXPIRING: points_expiring\nCLOSE_TO_TIER: close_to_tier\nWIN_BACK: win_back\nBIRTHDAY: birthday\nVOUCHER_EXPIRING: voucher_expiring', enum_type=AutomationKind, max_length=32)),
                ('title', fields.CharField(max_length=200)),
                ('body', fields.CharField(max_length=1000)),
                ('target', fields.CharField(default='', max_length=64)),
                ('offer', fields.ForeignKeyField('loyalty.Offer', source_field='offer_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('collapse_key', fields.CharField(default='', max_length=64)),
                ('status', fields.CharEnumField(default=MessageStatus.SCHEDULED, description='SCHEDULED: scheduled\nSENT: sent\nSUPPRESSED: suppressed', enum_type=MessageStatus, max_length=16)),
                ('suppressed_reason', fields.CharField(default='', max_length=32)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('delivered_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('read_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('opened_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_message', 'app': 'loyalty', 'unique_together': (('member_id', 'occasion'),), 'indexes': [Index(fields=['status', 'due_at']), Index(fields=['member_id', 'sent_at']), Index(fields=['campaign_id', 'status'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushDelivery',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('message', fields.ForeignKeyField('loyalty.PushMessage', source_field='message_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('device', fields.ForeignKeyField('loyalty.Device', source_field='device_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('token', fields.CharField(max_length=512)),
                ('status', fields.CharEnumField(default=PushDeliveryStatus.PENDING, description='PENDING: pending\nSENT: sent\nDROPPED: dropped', enum_type=PushDeliveryStatus, max_length=16)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('fcm_message_id', fields.CharField(default='', max_length=200)),
                ('last_error', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_delivery', 'app': 'loyalty', 'unique_together': (('message_id', 'device_id'),), 'indexes': [Index(fields=['status', 'next_attempt_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PushPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('marketing_per_day', fields.IntField(null=True, default=1)),
                ('marketing_per_week', fields.IntField(null=True, default=3)),
                ('transactional_per_day', fields.IntField(null=True, default=10)),
                ('transactional_per_week', fields.IntField(null=True)),
                ('quiet_start', fields.TimeField(null=True, auto_now=False, auto_now_add=False)),
                ('quiet_end', fields.TimeField(null=True, auto_now=False, auto_now_add=False)),
                ('default_locale', fields.CharField(default='en', max_length=16)),
                ('device_retention_days', fields.IntField(default=270)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'push_policy', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.RunSQL(BACKFILL_CONSENT, 'DELETE FROM "consent_change"; DELETE FROM "consent"'),
        ops.RunPython(notify_forward, notify_backward),
    ]
