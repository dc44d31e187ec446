"""Triggers that bump `program.version` on every write to the configuration tables.

`loyalty.program.current_configuration` caches the program, its tiers, campaigns, bonus rules and stamp cards per
process and validates the snapshot with one cheap read of `program.version`; these triggers make every writer (this
process, another API process, `klubb seed`, the console, a hand-written SQL fix) invalidate every process's snapshot.
Rewards are not in the snapshot (their stock moves with every redemption), so they have no trigger.

PostgreSQL: one statement-level trigger per table (any INSERT, UPDATE or DELETE) and a row trigger on `program`
itself (an UPDATE that leaves `version` as it was bumps it). SQLite has row triggers only: one per table and
operation. On SQLite the trigger's own UPDATE counts in the connection's change counter, so an ORM `update()` of a
configuration table reports one more row than it changed; no code relies on those counts.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

TABLES = ("tier", "campaign", "bonus_rule", "stamp_card")

POSTGRES_FORWARD = [
    """CREATE OR REPLACE FUNCTION klubb_bump_program_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE "program" SET "version" = "version" + 1;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION klubb_program_version_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW."version" = OLD."version" THEN
        NEW."version" := OLD."version" + 1;
    END IF;
    RETURN NEW;
END $$""",
    'CREATE TRIGGER "program_version_program" BEFORE UPDATE ON "program"'
    " FOR EACH ROW EXECUTE FUNCTION klubb_program_version_on_update()",
    *(
        f'CREATE TRIGGER "program_version_{table}" AFTER INSERT OR UPDATE OR DELETE ON "{table}"'
        " FOR EACH STATEMENT EXECUTE FUNCTION klubb_bump_program_version()"
        for table in TABLES
    ),
]
POSTGRES_BACKWARD = [
    'DROP TRIGGER IF EXISTS "program_version_program" ON "program"',
    *(f'DROP TRIGGER IF EXISTS "program_version_{table}" ON "{table}"' for table in TABLES),
    "DROP FUNCTION IF EXISTS klubb_bump_program_version()",
    "DROP FUNCTION IF EXISTS klubb_program_version_on_update()",
]
SQLITE_FORWARD = [
    'CREATE TRIGGER "program_version_program" AFTER UPDATE ON "program" WHEN NEW."version" = OLD."version"'
    ' BEGIN UPDATE "program" SET "version" = OLD."version" + 1 WHERE "id" = NEW."id"; END',
    *(
        f'CREATE TRIGGER "program_version_{table}_{operation.lower()}" AFTER {operation} ON "{table}"'
        ' BEGIN UPDATE "program" SET "version" = "version" + 1; END'
        for table in TABLES
        for operation in ("INSERT", "UPDATE", "DELETE")
    ),
]
SQLITE_BACKWARD = [
    'DROP TRIGGER IF EXISTS "program_version_program"',
    *(
        f'DROP TRIGGER IF EXISTS "program_version_{table}_{operation.lower()}"'
        for table in TABLES
        for operation in ("INSERT", "UPDATE", "DELETE")
    ),
]


async def _run(state_editor: Any, postgres: list[str], sqlite: list[str]) -> None:
    if state_editor.DIALECT == "postgres":
        statements = postgres
    elif state_editor.DIALECT == "sqlite":
        statements = sqlite
    else:
        raise NotImplementedError(f"program version triggers for {state_editor.DIALECT}")
    for statement in statements:
        await state_editor.client.execute_script(statement)


async def forward(apps: Any, state_editor: Any) -> None:
    await _run(state_editor, POSTGRES_FORWARD, SQLITE_FORWARD)


async def backward(apps: Any, state_editor: Any) -> None:
    await _run(state_editor, POSTGRES_BACKWARD, SQLITE_BACKWARD)


class Migration(migrations.Migration):
    dependencies = [('loyalty', '0004_write_path')]

    initial = False

    operations = [
        ops.RunPython(forward, backward),
    ]
