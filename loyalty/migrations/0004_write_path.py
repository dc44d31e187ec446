from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0003_business_rules')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='PointsLot',
            index=Index(fields=['purchase_id']),
        ),
        ops.AddField(
            model_name='Program',
            name='version',
            field=fields.BigIntField(default=1, db_default=1),
        ),
        ops.AddIndex(
            model_name='Purchase',
            index=Index(fields=['member_id', 'occurred_at']),
        ),
    ]
