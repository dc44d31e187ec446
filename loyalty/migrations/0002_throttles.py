from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('loyalty', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ThrottleCounter',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=32)),
                ('subject', fields.CharField(max_length=128)),
                ('window_start', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('attempts', fields.IntField()),
            ],
            options={'table': 'throttle_counter', 'app': 'loyalty', 'unique_together': (('scope', 'subject'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.DeleteModel(name='ThrottleEvent'),
    ]
