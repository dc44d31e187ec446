"""The donation totals per donation reward (`loyalty.donations`), backfilled from the REDEEMED donation vouchers there
are, so the Rewards screen no longer aggregates every donation voucher on each request."""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


# The same statement as `loyalty.donations.rebuild_totals`, frozen here as of this migration.
BACKFILL = (
    'INSERT INTO "donation_total" ("reward_id", "amount", "donations")'
    ' SELECT "r"."id", COUNT("v"."id") * "r"."value", COUNT("v"."id")'
    ' FROM "reward" AS "r" JOIN "voucher" AS "v" ON "v"."reward_id" = "r"."id"'
    ' WHERE "r"."kind" = \'donation\' AND "v"."status" = \'redeemed\' GROUP BY "r"."id", "r"."value"'
)


async def backfill(apps: Any, state_editor: Any) -> None:
    await state_editor.client.execute_script(BACKFILL)


async def forget(apps: Any, state_editor: Any) -> None:
    await state_editor.client.execute_script('DELETE FROM "donation_total"')


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0007_google_wallet')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DonationTotal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('reward', fields.ForeignKeyField('loyalty.Reward', source_field='reward_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('amount', fields.BigIntField(default=0)),
                ('donations', fields.BigIntField(default=0)),
            ],
            options={'table': 'donation_total', 'app': 'loyalty', 'unique_together': (('reward_id',),), 'pk_attr': 'id', 'table_description': 'Per donation reward, how many of its vouchers are REDEEMED and the sum of their values (loyalty.donations).'},
            bases=['Model'],
        ),
        ops.RunPython(backfill, forget),
    ]
