from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0002_throttles')]

    initial = False

    operations = [
        ops.AddField(
            model_name='LedgerEntry',
            name='occurred_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_before_upgrade',
            field=fields.ForeignKeyField('loyalty.Tier', source_field='tier_before_upgrade_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_before_upgrade_held_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='tier_upgraded_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Program',
            name='max_daily_purchase_total',
            field=fields.BigIntField(default=2500000, db_default=2500000),
        ),
        ops.AddField(
            model_name='Program',
            name='max_purchase_total',
            field=fields.BigIntField(default=1000000, db_default=1000000),
        ),
    ]
