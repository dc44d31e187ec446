from tortoise import migrations
from tortoise.migrations import operations as ops
from loyalty.models.wallet import WalletBarcode, WalletPlatform, default_languages
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

# Written on 0003, re-chained onto 0005 when main brought 0004/0005 (the write path).
class Migration(migrations.Migration):
    dependencies = [('loyalty', '0005_program_version_triggers')]

    initial = False

    operations = [
        ops.CreateModel(
            name='WalletDesign',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('organization_name', fields.CharField(default='', max_length=100)),
                ('description', fields.CharField(default='', max_length=200)),
                ('logo_text', fields.CharField(default='', max_length=100)),
                ('background_color', fields.CharField(default='rgb(32, 33, 36)', max_length=32)),
                ('foreground_color', fields.CharField(default='rgb(255, 255, 255)', max_length=32)),
                ('label_color', fields.CharField(default='rgb(190, 190, 190)', max_length=32)),
                ('barcode_format', fields.CharEnumField(default=WalletBarcode.QR, description='QR: qr\nPDF417: pdf417\nAZTEC: aztec\nCODE128: code128', enum_type=WalletBarcode, max_length=16)),
                ('terms', fields.TextField(default='', unique=False)),
                ('languages', fields.JSONField(default=default_languages, encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'wallet_design', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletLinkUse',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('link_id', fields.CharField(unique=True, max_length=64)),
                ('member_id', fields.IntField()),
                ('used_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_link_use', 'app': 'loyalty', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletPass',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('loyalty.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('platform', fields.CharEnumField(description='APPLE: apple\nGOOGLE: google', enum_type=WalletPlatform, max_length=16)),
                ('serial_number', fields.CharField(unique=True, max_length=64)),
                ('auth_token_hash', fields.CharField(default='', max_length=64)),
                ('update_tag', fields.BigIntField(default=0, db_index=True)),
                ('last_updated', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('content_digest', fields.CharField(default='', max_length=64)),
                ('installed', fields.BooleanField(default=False)),
                ('installed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('removed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_pass', 'app': 'loyalty', 'unique_together': (('member_id', 'platform'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletPush',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('push_token', fields.CharField(unique=True, max_length=200)),
                ('wanted', fields.BigIntField(default=0)),
                ('sent', fields.BigIntField(default=0)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('locked_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_status_code', fields.IntField(null=True)),
                ('last_error', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('pushed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_push', 'app': 'loyalty', 'indexes': [Index(fields=['next_attempt_at', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletRegistration',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('wallet_pass', fields.ForeignKeyField('loyalty.WalletPass', source_field='wallet_pass_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('device_library_id', fields.CharField(db_index=True, max_length=128)),
                ('push_token', fields.CharField(db_index=True, max_length=200)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_registration', 'app': 'loyalty', 'unique_together': (('device_library_id', 'wallet_pass_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
