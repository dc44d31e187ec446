"""Referrals, paid membership and cashback (issue 12).

Besides the tables and columns: unique indexes for the two unique foreign keys (a referee is referred once, a member
has one membership; Tortoise's writer drops `unique` on a foreign key, see 0009), the program-version triggers of
0005 on the two new configuration tables (plans and the referral policy are in the configuration snapshot), and
`member.email_key` filled from `member.email` (`loyalty.contacts.email_key`).
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.models.cashback import CashbackKind
from loyalty.models.memberships import MembershipStatus, PaymentOutcome, PlanPeriod
from loyalty.models.referrals import ReferralStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

from loyalty.contacts import email_key


CONFIG_TABLES = ("membership_plan", "referral_policy")
OPERATIONS = ("INSERT", "UPDATE", "DELETE")


async def _script(state_editor: Any, statements: list[str]) -> None:
    for statement in statements:
        await state_editor.client.execute_script(statement)


async def triggers_forward(apps: Any, state_editor: Any) -> None:
    if state_editor.DIALECT == "postgres":
        await _script(
            state_editor,
            [
                f'CREATE TRIGGER "program_version_{table}" AFTER INSERT OR UPDATE OR DELETE ON "{table}"'
                " FOR EACH STATEMENT EXECUTE FUNCTION klubb_bump_program_version()"
                for table in CONFIG_TABLES
            ],
        )
    else:
        await _script(
            state_editor,
            [
                f'CREATE TRIGGER "program_version_{table}_{operation.lower()}" AFTER {operation} ON "{table}"'
                ' BEGIN UPDATE "program" SET "version" = "version" + 1; END'
                for table in CONFIG_TABLES
                for operation in OPERATIONS
            ],
        )


async def triggers_backward(apps: Any, state_editor: Any) -> None:
    if state_editor.DIALECT == "postgres":
        statements = [f'DROP TRIGGER IF EXISTS "program_version_{table}" ON "{table}"' for table in CONFIG_TABLES]
    else:
        statements = [
            f'DROP TRIGGER IF EXISTS "program_version_{table}_{operation.lower()}"'
            for table in CONFIG_TABLES
            for operation in OPERATIONS
        ]
    await _script(state_editor, statements)


async def email_keys_forward(apps: Any, state_editor: Any) -> None:
    client = state_editor.client
    placeholder = "$1" if state_editor.DIALECT == "postgres" else "?"
    second = "$2" if state_editor.DIALECT == "postgres" else "?"
    _, rows = await client.execute_query('SELECT "id", "email" FROM "member" WHERE "email" IS NOT NULL')
    for row in rows:
        key = email_key(row["email"])
        if key is not None:
            await client.execute_query(
                f'UPDATE "member" SET "email_key" = {placeholder} WHERE "id" = {second}', [key, row["id"]]
            )


async def email_keys_backward(apps: Any, state_editor: Any) -> None:
    return None

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0010_push')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CashbackEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='CREDIT: credit\nSPEND: spend\nPAYOUT: payout\nRETURN: return\nADJUSTMENT: adjustment', enum_type=CashbackKind, max_length=16)),
                ('amount', fields.BigIntField()),
                ('currency', fields.CharField(max_length=3)),
                ('voucher', fields.ForeignKeyField('loyalty.Voucher', source_field='voucher_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('store_code', fields.CharField(null=True, max_length=32)),
                ('receipt_id', fields.CharField(null=True, max_length=64)),
                ('reference', fields.CharField(null=True, max_length=64)),
                ('spend', fields.ForeignKeyField('loyalty.CashbackEntry', source_field='spend_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('description', fields.CharField(default='', max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'cashback_entry', 'app': 'loyalty', 'indexes': [Index(fields=['member_id', 'id']), Index(fields=['store_code', 'receipt_id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MembershipPlan',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=32)),
                ('name', fields.CharField(max_length=100)),
                ('price', fields.BigIntField()),
                ('currency', fields.CharField(max_length=3)),
                ('period', fields.CharEnumField(description='MONTHLY: monthly\nYEARLY: yearly', enum_type=PlanPeriod, max_length=16)),
                ('earn_multiplier', fields.DecimalField(default=1, max_digits=6, decimal_places=3)),
                ('included_offers', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('free_delivery', fields.BooleanField(default=False)),
                ('early_access_rank', fields.SmallIntField(default=0)),
                ('grace_days', fields.IntField(default=7)),
                ('active', fields.BooleanField(default=True)),
            ],
            options={'table': 'membership_plan', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Membership',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', unique=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('plan', fields.ForeignKeyField('loyalty.MembershipPlan', source_field='plan_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('status', fields.CharEnumField(description='ACTIVE: active\nGRACE: grace\nCANCELLED: cancelled\nLAPSED: lapsed', enum_type=MembershipStatus, max_length=16)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('period_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('period_end', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('grace_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lapsed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'membership', 'app': 'loyalty', 'indexes': [Index(fields=['status', 'due_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MembershipPayment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('payment_id', fields.CharField(max_length=64)),
                ('outcome', fields.CharEnumField(description='SUCCEEDED: succeeded\nFAILED: failed\nREFUNDED: refunded', enum_type=PaymentOutcome, max_length=16)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('plan', fields.ForeignKeyField('loyalty.MembershipPlan', source_field='plan_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('amount', fields.BigIntField()),
                ('currency', fields.CharField(max_length=3)),
                ('refunded_amount', fields.BigIntField(default=0)),
                ('period_start', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('period_end', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'membership_payment', 'app': 'loyalty', 'unique_together': (('payment_id', 'outcome'),), 'indexes': [Index(fields=['member_id', 'occurred_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Referral',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('referrer', fields.ForeignKeyField('loyalty.Member', source_field='referrer_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('referee', fields.ForeignKeyField('loyalty.Member', source_field='referee_id', unique=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(max_length=16)),
                ('status', fields.CharEnumField(description='APPLIED: applied\nFLAGGED: flagged\nCONVERTED: converted\nREWARDED: rewarded\nCANCELLED: cancelled\nREJECTED: rejected', enum_type=ReferralStatus, max_length=16)),
                ('flags', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('device_hash', fields.CharField(null=True, db_index=True, max_length=64)),
                ('applied_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('purchase', fields.ForeignKeyField('loyalty.Purchase', source_field='purchase_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('converted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('available_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('rewarded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('referee_points', fields.BigIntField(default=0)),
                ('referrer_points', fields.BigIntField(default=0)),
                ('referee_entry', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='referee_entry_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('referrer_entry', fields.ForeignKeyField('loyalty.LedgerEntry', source_field='referrer_entry_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('reviewed_by', fields.ForeignKeyField('loyalty.StaffUser', source_field='reviewed_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('reviewed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('review_note', fields.CharField(default='', max_length=200)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'referral', 'app': 'loyalty', 'indexes': [Index(fields=['referrer_id', 'status']), Index(fields=['referrer_id', 'converted_at']), Index(fields=['status', 'available_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ReferralPolicy',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('enabled', fields.BooleanField(default=True)),
                ('referee_points', fields.IntField(default=0)),
                ('referrer_points', fields.IntField(default=0)),
                ('min_spend', fields.BigIntField(default=0)),
                ('apply_days', fields.IntField(default=14)),
                ('referrer_cap_per_month', fields.IntField(null=True)),
                ('referrer_cap_lifetime', fields.IntField(null=True)),
                ('device_max_referees', fields.IntField(default=2)),
                ('device_window_hours', fields.IntField(default=72)),
                ('app_store_url', fields.CharField(default='', max_length=500)),
                ('play_store_url', fields.CharField(default='', max_length=500)),
                ('open_app_url', fields.CharField(default='', max_length=500)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'referral_policy', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='cashback_balance',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Member',
            name='email_key',
            field=fields.CharField(null=True, db_index=True, max_length=254),
        ),
        ops.AddField(
            model_name='Member',
            name='referral_code',
            field=fields.CharField(null=True, unique=True, max_length=16),
        ),
        ops.AddField(
            model_name='RefreshToken',
            name='device_hash',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name='Offer',
            name='min_membership_rank',
            field=fields.SmallIntField(null=True),
        ),
        ops.AddField(
            model_name='Purchase',
            name='payment_fingerprint',
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        ops.AddField(
            model_name='Reward',
            name='min_membership_rank',
            field=fields.SmallIntField(null=True),
        ),
        ops.RunSQL(
            'CREATE UNIQUE INDEX "uniq_referral_referee_id" ON "referral" ("referee_id")',
            'DROP INDEX "uniq_referral_referee_id"',
        ),
        ops.RunSQL(
            'CREATE UNIQUE INDEX "uniq_membership_member_id" ON "membership" ("member_id")',
            'DROP INDEX "uniq_membership_member_id"',
        ),
        # AddField does not create a column's index (`db_index=True`).
        ops.RunSQL(
            'CREATE INDEX "idx_member_email_key" ON "member" ("email_key")',
            'DROP INDEX "idx_member_email_key"',
        ),
        ops.RunSQL(
            'CREATE INDEX "idx_purchase_payment_fingerprint" ON "purchase" ("payment_fingerprint")',
            'DROP INDEX "idx_purchase_payment_fingerprint"',
        ),
        ops.RunSQL(
            'CREATE INDEX "idx_refresh_token_device_hash" ON "refresh_token" ("device_hash")',
            'DROP INDEX "idx_refresh_token_device_hash"',
        ),
        ops.RunPython(triggers_forward, triggers_backward),
        ops.RunPython(email_keys_forward, email_keys_backward),
    ]
