"""The migrated schema enforces what the models declare: every `unique=True` field has a unique index."""

from __future__ import annotations

from tortoise import Tortoise, connections
from tortoise.fields.relational import ForeignKeyFieldInstance

from loyalty.models import LedgerEntry


async def _unique_columns(table: str) -> set[tuple[str, ...]]:
    conn = connections.get("default")
    if conn.capabilities.dialect == "postgres":
        rows = await conn.execute_query_dict(
            "SELECT array_agg(a.attname ORDER BY k.n)::text[] AS columns FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE t.relname = $1 AND i.indisunique GROUP BY i.indexrelid",
            [table],
        )
        return {tuple(row["columns"]) for row in rows}
    indexes = await conn.execute_query_dict(f'PRAGMA index_list("{table}")')
    found: set[tuple[str, ...]] = set()
    for index in indexes:
        if index["unique"]:
            info = await conn.execute_query_dict(f'PRAGMA index_info("{index["name"]}")')
            found.add(tuple(column["name"] for column in sorted(info, key=lambda c: c["seqno"])))
    return found


async def test_every_unique_field_of_the_models_has_a_unique_index(db: str) -> None:
    # given every model's fields declared unique (foreign keys included: Tortoise's migration writer drops theirs)
    declared: list[tuple[str, str]] = []
    for model in Tortoise.apps["loyalty"].values():
        for name, field in model._meta.fields_map.items():
            if (
                field.pk
                or not getattr(field, "unique", False)
                or name not in model._meta.db_fields | model._meta.fk_fields
            ):
                continue
            column = field.source_field or name
            if isinstance(field, ForeignKeyFieldInstance):
                column = model._meta.fields_map[f"{name}_id"].source_field or f"{name}_id"
            declared.append((model._meta.db_table, column))

    # then the migrated database has a one-column unique index (or constraint) for each
    missing = [(table, column) for table, column in declared if (column,) not in await _unique_columns(table)]
    assert missing == []
    assert (LedgerEntry._meta.db_table, "reverses_id") in declared  # the check sees foreign keys
