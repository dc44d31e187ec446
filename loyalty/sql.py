"""Hand-written reads for the hottest paths (the app's home screen, the checkout lookup).

Building a Tortoise queryset costs about 0.4 ms of CPU per query, several times what SQLite or PostgreSQL need to
answer these indexed reads (bench/README.md). These statements are written once, in portable SQL with `?`
placeholders, and rewritten to `$n` once for PostgreSQL. Values come back as the ORM would return them: through the
model's own field conversions (`select`, `statement`), or for `rows` through the row type's annotations, converting
only what the driver does not already return as that type (no dict, no model per row). Writes stay on the ORM.

Each statement is declared beside its caller with `rows` (a hand-written SELECT read as `NamedTuple` rows straight
from the driver: the hot reads), `select` (every column of a model, read as models) or `statement` (a hand-written
SELECT read as dicts), under a unique name. Only declared statements run, and
tests/loyalty/test_sql.py runs every one of them against its ORM equivalent on both engines. This module is also the
one place that uses Tortoise's private API (`_meta`, `_init_from_db`, an update's query in `update_returning_ids`):
`table` describes a model's table to code that needs its columns.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from functools import lru_cache
from types import MappingProxyType, UnionType
from typing import Any, Generic, TypeVar, Union, cast, get_args, get_origin, get_type_hints

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.relational import ForeignKeyFieldInstance, OneToOneFieldInstance
from tortoise.models import Model
from tortoise.queryset import UpdateQuery

M = TypeVar("M", bound=Model)
IDS = "{ids}"  # where a statement takes a list of ids: expanded to one placeholder per id


@dataclass(frozen=True, eq=False)
class Statement:
    """A registered hand-written statement: `declared` is its whole text; columns named like a field of `model`
    come back as that field's Python type. Made by `statement`, never directly."""

    name: str
    model: type[Model]
    declared: str

    @property
    def text(self) -> str:
        """The statement as it runs (before `{ids}` expansion and placeholder numbering)."""
        return self.declared


@dataclass(frozen=True, eq=False)
class Select(Statement, Generic[M]):
    """`SELECT` every column of `model` `FROM` its table, then `declared` (the WHERE and ORDER BY clauses).

    Made by `select`. Rendered at first use: Tortoise adds the foreign-key columns (`tier_id`, ...) to a model only
    at start-up.
    """

    model: type[M]

    @property
    def text(self) -> str:
        return _render(self.model, self.declared)


R = TypeVar("R", bound=tuple[Any, ...])


@dataclass(frozen=True, eq=False)
class Rows(Statement, Generic[R]):
    """A hand-written SELECT read as `row` tuples: its columns, in order, are the fields of the `NamedTuple` `row`,
    whose annotations say what each value is (`datetime`, `date`, `bool`, an `Enum`, `list[...]` for JSON; `int`,
    `str` and `float` come as the driver gives them). Made by `rows`, never directly; `model` is the table it mainly
    reads (documentation, and the test's ORM equivalent)."""

    row: type[R]


_registry: dict[str, Statement] = {}
S = TypeVar("S", bound=Statement)


def statement(name: str, model: type[Model], text: str) -> Statement:
    """Register the hand-written `SELECT` `text` under `name`; its columns named like `model`'s fields are typed."""
    return _register(Statement(name, model, _checked(name, text)))


def select(name: str, model: type[M], rest: str) -> Select[M]:
    """Register under `name` a read of whole `model` rows: every column, then `rest` (WHERE, ORDER BY, LIMIT)."""
    return _register(Select(name, model, _checked(name, rest)))


def rows(name: str, model: type[Model], row: type[R], text: str) -> Rows[R]:
    """Register under `name` the hand-written `SELECT` `text`, read as `row` tuples by `fetch_rows`."""
    if not (isinstance(row, type) and issubclass(row, tuple) and hasattr(row, "_fields")):
        raise TypeError(f"statement {name!r}: rows are read as a NamedTuple, not {row!r}")
    checked = _checked(name, text)
    for postgres in (False, True):  # every field's type is one a value can be converted to, on both engines
        _builder(row, postgres)
    return _register(Rows(name, model, checked, row))


def columns(row: type[tuple[Any, ...]], alias: str, *, until: str | None = None) -> str:
    """The quoted column list `"alias"."field", ...` of the fields of NamedTuple `row` (those before `until`)."""
    fields: tuple[str, ...] = cast(Any, row)._fields
    chosen = fields[: fields.index(until)] if until is not None else fields
    return ", ".join(f'"{alias}"."{field}"' for field in chosen)


def registered() -> Mapping[str, Statement]:
    """Every registered statement by name (read-only)."""
    return MappingProxyType(_registry)


def _register(declared: S) -> S:
    if declared.name in _registry:
        raise ValueError(f"a statement named {declared.name!r} is already registered")
    _registry[declared.name] = declared
    return declared


def _checked(name: str, text: str) -> str:
    """`text`, if placeholder numbering cannot change its meaning: `?` and `{ids}` only where values go.

    A `?` inside a string literal, a comment or a second statement would be renumbered to `$n` on PostgreSQL, and a
    literal is a value that belongs in the parameters anyway. Double-quoted identifiers are fine (without `?`).
    """
    quoted = False
    for index, char in enumerate(text):
        if char == '"':
            quoted = not quoted  # an escaped `""` inside an identifier closes and reopens it
        elif quoted:
            if char == "?":
                raise ValueError(f"statement {name!r}: a ? inside a quoted identifier")
        elif char == "'":
            raise ValueError(f"statement {name!r}: a string literal (pass values as parameters)")
        elif text.startswith(("--", "/*"), index):
            raise ValueError(f"statement {name!r}: a comment")
        elif char == ";":
            raise ValueError(f"statement {name!r}: a ; (one statement only)")
        elif char == "$":
            raise ValueError(f"statement {name!r}: a $ (write ? placeholders; no dollar-quoted strings)")
    if quoted:
        raise ValueError(f"statement {name!r}: an unterminated quoted identifier")
    if text.count(IDS) > 1:
        raise ValueError(f"statement {name!r}: more than one {IDS} list")
    return text


@dataclass(frozen=True)
class Table:
    """A model's table as SQL sees it, for code that writes rows in bulk past the ORM (bench/seed.py)."""

    name: str
    columns: tuple[str, ...]  # every column, in the order the model declares its fields
    primary_key: str
    references: Mapping[str, type[Model]]  # foreign-key (and one-to-one) column -> the model it points at
    unique: tuple[tuple[str, ...], ...]  # the unique columns and column groups, primary key aside


@lru_cache(maxsize=64)
def table(model: type[Model]) -> Table:
    """`model`'s table (after start-up, which adds the foreign-key columns)."""
    meta = model._meta
    if not meta._inited:
        raise RuntimeError(f"{model.__name__}: its table is known only once Tortoise has started")
    related = {name: cast(ForeignKeyFieldInstance[Model], meta.fields_map[name]) for name in meta.fk_fields}
    related |= {name: cast(OneToOneFieldInstance[Model], meta.fields_map[name]) for name in meta.o2o_fields}
    # A relation's column is that of the `<name>_id` field Tortoise adds for it at start-up.
    backing = {name: field.source_field for name, field in related.items() if field.source_field}

    def column(name: str) -> str:
        return meta.fields_db_projection[backing.get(name, name)]

    # In declared order, a relation's column where the relation is declared (the added fields come last).
    names = [
        n for n in meta.fields_map if n in related or (n in meta.fields_db_projection and n not in backing.values())
    ]
    unique: set[tuple[str, ...]] = {
        (column(name),) for name in names if meta.fields_map[name].unique and not meta.fields_map[name].pk
    }
    unique |= {tuple(column(name) for name in group) for group in meta.unique_together}
    return Table(
        name=meta.db_table,
        columns=tuple(column(name) for name in names),
        primary_key=meta.db_pk_column,
        references=MappingProxyType({column(name): related[name].related_model for name in names if name in related}),
        unique=tuple(sorted(unique)),
    )


@lru_cache(maxsize=64)
def _render(model: type[Model], rest: str) -> str:
    described = table(model)
    columns = ", ".join(f'"{column}"' for column in described.columns)
    return f'SELECT {columns} FROM "{described.name}" {rest}'  # noqa: S608 - names from the model, no input


@lru_cache(maxsize=64)
def _converters(model: type[Model]) -> Mapping[str, Callable[[Any], Any]]:
    meta = model._meta
    return {column: meta.fields_map[name].to_python_value for name, column in meta.fields_db_projection.items()}


@lru_cache(maxsize=512)
def _engine_sql(sql: str, id_count: int, postgres: bool) -> str:
    expanded = sql.replace(IDS, ", ".join("?" * id_count)) if IDS in sql else sql
    if not postgres:
        return expanded
    parts = expanded.split("?")
    return parts[0] + "".join(f"${number}{part}" for number, part in enumerate(parts[1:], start=1))


async def _execute(
    declared: Statement, params: Sequence[Any], ids: Sequence[int], conn: BaseDBAsyncClient | None
) -> list[dict[str, Any]]:
    """The rows of a registered statement as the driver returns them."""
    if not isinstance(declared, Statement) or _registry.get(declared.name) is not declared:
        raise LookupError(f"not a registered statement: {declared!r} (declare it with sql.statement or sql.select)")
    text = declared.text
    if IDS in text and not ids:
        return []  # `IN ()` is an error on PostgreSQL, and nothing matches anyway
    client = conn or connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    return await client.execute_query_dict(_engine_sql(text, len(ids), postgres), _values(text, ids, params))


def _values(sql: str, ids: Sequence[int], params: Sequence[Any]) -> list[Any]:
    # The ids go where `{ids}` stands among the other placeholders.
    if IDS not in sql:
        return list(params)
    before = sql[: sql.index(IDS)].count("?")
    return [*params[:before], *ids, *params[before:]]


async def fetch(
    declared: Statement,
    params: Sequence[Any] = (),
    *,
    ids: Sequence[int] = (),
    conn: BaseDBAsyncClient | None = None,
) -> list[dict[str, Any]]:
    """The rows of `declared` as dicts, columns named like a field of its model converted to that field's type.

    `ids` fill the statement's `{ids}` list, `params` its other placeholders.
    """
    rows = await _execute(declared, params, ids, conn)
    converters = _converters(declared.model)
    return [
        {column: converters[column](value) if column in converters else value for column, value in row.items()}
        for row in rows
    ]


async def fetch_models(
    declared: Select[M],
    params: Sequence[Any] = (),
    *,
    ids: Sequence[int] = (),
    conn: BaseDBAsyncClient | None = None,
) -> list[M]:
    """The rows of `declared` as model instances, exactly as the ORM would build them."""
    return [declared.model._init_from_db(**row) for row in await _execute(declared, params, ids, conn)]


# --- rows straight from the driver ------------------------------------------------------------------------------


def _sqlite_datetime(value: Any) -> datetime:
    # Tortoise stores aware datetimes as ISO text ("2026-03-02 12:00:00.5+00:00"); a naive one is UTC, as the ORM
    # reads it with use_tz.
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _converter(annotation: Any, postgres: bool) -> Callable[[Any], Any] | None:
    """How a driver value becomes a field's type; None where the driver's value already is it (most of them)."""
    if get_origin(annotation) in (Union, UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(kinds) != 1:
            raise TypeError(f"a row field is one type or None, not {annotation!r}")
        annotation = kinds[0]
    if get_origin(annotation) in (list, dict) or annotation in (list, dict):
        return _json  # JSON text on both engines (asyncpg decodes no json/jsonb without a codec)
    if not isinstance(annotation, type):
        raise TypeError(f"a row field's type must be a class, not {annotation!r}")
    if issubclass(annotation, Enum):
        return annotation
    if issubclass(annotation, bool):
        return None if postgres else bool
    if issubclass(annotation, datetime):
        return None if postgres else _sqlite_datetime
    if issubclass(annotation, date):
        return None if postgres else _date
    if issubclass(annotation, int | str | float):
        return None
    raise TypeError(f"no conversion for a row field of type {annotation!r}")


@lru_cache(maxsize=256)
def _builder(row: type[tuple[Any, ...]], postgres: bool) -> Callable[[Sequence[Any]], Any]:
    """A function making one `row` from a driver row (sqlite3.Row or asyncpg Record), converting only what needs it."""
    hints = get_type_hints(row)
    fields: tuple[str, ...] = cast(Any, row)._fields
    make = cast(Any, row)._make
    converters = [(index, c) for index, name in enumerate(fields) if (c := _converter(hints[name], postgres))]
    width = len(fields)

    def build(raw: Sequence[Any]) -> Any:
        if len(raw) != width:
            raise ValueError(f"{row.__name__} has {width} fields, the statement returned {len(raw)} columns")
        if not converters:
            return make(raw)
        values = list(raw)
        for index, convert in converters:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        return make(values)

    return build


async def fetch_rows(
    declared: Rows[R],
    params: Sequence[Any] = (),
    *,
    ids: Sequence[int] = (),
    conn: BaseDBAsyncClient | None = None,
) -> list[R]:
    """The rows of `declared` as its `NamedTuple`, made from the driver's rows (no dicts, no models).

    One round trip on the connection Tortoise would use (the caller's transaction if `conn` is one). Errors are the
    driver's own (aiosqlite's sqlite3 errors, asyncpg's), not re-raised under Tortoise's types:
    `loyalty.db.database_unavailable` recognises both.
    """
    if not isinstance(declared, Rows) or _registry.get(declared.name) is not declared:
        raise LookupError(f"not a registered statement: {declared!r} (declare it with sql.rows)")
    text = declared.text
    if IDS in text and not ids:
        return []
    client = conn or connections.get("default")
    postgres = client.capabilities.dialect == "postgres"
    query, values = _engine_sql(text, len(ids), postgres), _values(text, ids, params)
    async with client.acquire_connection() as connection:
        client.log.debug("%s: %s", query, values)  # as Tortoise logs each statement (the tests count them)
        raw = await (connection.fetch(query, *values) if postgres else connection.execute_fetchall(query, values))
    build = _builder(declared.row, postgres)
    return [build(row) for row in raw]


async def update_returning_ids(query: UpdateQuery) -> list[int]:
    """Run the ORM update `query` with `RETURNING` its primary key: the ids of the rows it changed, in one statement
    (both engines support RETURNING; Tortoise's `update()` answers only a count)."""
    query._choose_db_if_not_chosen(True)
    query._make_query()
    text, params = query.query.get_parameterized_sql()
    pk = query.model._meta.db_pk_column
    rows = await query._db.execute_query_dict(f'{text} RETURNING "{pk}"', list(params))
    return [int(row[pk]) for row in rows]
