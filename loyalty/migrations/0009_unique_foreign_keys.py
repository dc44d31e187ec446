"""Unique indexes for the foreign keys the models declare `unique=True`.

Tortoise's migration writer drops `unique` on a foreign key (0001 made `ledger_entry.reverses_id` and 0007
`google_wallet_object.member_id` without it), so the database did not refuse a second reversal of one entry or a
second Google object for one member: the code's own checks under the member's lock were the only guard. Both engines
accept the same statement, and both treat NULLs as distinct (many entries reverse nothing). A database that already
holds duplicates fails here loudly instead of being "fixed" silently.
`tests/loyalty/test_migrations.py` fails when a model gains a unique foreign key the migrated schema does not enforce.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0008_donation_totals')]

    initial = False

    operations = [
        ops.RunSQL(
            'CREATE UNIQUE INDEX "uniq_ledger_entry_reverses_id" ON "ledger_entry" ("reverses_id")',
            'DROP INDEX "uniq_ledger_entry_reverses_id"',
        ),
        ops.RunSQL(
            'CREATE UNIQUE INDEX "uniq_google_wallet_object_member_id" ON "google_wallet_object" ("member_id")',
            'DROP INDEX "uniq_google_wallet_object_member_id"',
        ),
    ]
