from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

# Google Wallet's own tables, on 0006_wallet (the shared wallet state, itself on 0005_program_version_triggers).
class Migration(migrations.Migration):
    dependencies = [('loyalty', '0006_wallet')]

    initial = False

    operations = [
        ops.CreateModel(
            name='GoogleWalletCallback',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('nonce', fields.CharField(unique=True, max_length=128)),
                ('object_id', fields.CharField(max_length=200)),
                ('event_type', fields.CharField(max_length=16)),
                ('received_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'google_wallet_callback', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='GoogleWalletObject',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', unique=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('object_id', fields.CharField(unique=True, max_length=200)),
                ('inserted', fields.BooleanField(default=False)),
                ('content_digest', fields.CharField(default='', max_length=64)),
                ('notable_digest', fields.CharField(default='', max_length=64)),
                ('wanted', fields.BigIntField(default=0)),
                ('synced', fields.BigIntField(default=0)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.CharField(default='', max_length=500)),
                ('notify_window_start', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('notify_count', fields.IntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('synced_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'google_wallet_object', 'app': 'loyalty', 'indexes': [Index(fields=['next_attempt_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
