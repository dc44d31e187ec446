"""Hand-written reads for the hottest paths (the app's home screen, the checkout lookup).

Building a Tortoise queryset costs about 0.4 ms of CPU per query, several times what SQLite or PostgreSQL need to
answer these indexed reads (bench/README.md). These statements are written once, in portable SQL with `?`
placeholders, and rewritten to `$n` once for PostgreSQL. Rows become models through the model's own field
conversions, so callers get exactly what the ORM would have returned. Writes stay on the ORM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

M = TypeVar("M", bound=Model)
IDS = "{ids}"  # where a statement takes a list of ids: expanded to one placeholder per id


@dataclass(frozen=True)
class Select(Generic[M]):
    """`SELECT` every column of `model` `FROM` its table, then `rest` (the WHERE and ORDER BY clauses).

    Rendered at first use: Tortoise adds the foreign-key columns (`tier_id`, ...) to a model only at start-up.
    """

    model: type[M]
    rest: str

    def __str__(self) -> str:
        return _render(self.model, self.rest)


@lru_cache(maxsize=64)
def _render(model: type[Model], rest: str) -> str:
    columns = ", ".join(f'"{column}"' for column in sorted(model._meta.db_fields))
    return f'SELECT {columns} FROM "{model._meta.db_table}" {rest}'  # noqa: S608 - names from the model, no input


@lru_cache(maxsize=512)
def _engine_sql(sql: str, id_count: int, postgres: bool) -> str:
    expanded = sql.replace(IDS, ", ".join("?" * id_count)) if IDS in sql else sql
    if not postgres:
        return expanded
    parts = expanded.split("?")
    return parts[0] + "".join(f"${number}{part}" for number, part in enumerate(parts[1:], start=1))


async def fetch(
    sql: str | Select[Any],
    params: Sequence[Any] = (),
    *,
    ids: Sequence[int] = (),
    conn: BaseDBAsyncClient | None = None,
) -> list[dict[str, Any]]:
    """The rows of `sql` as dicts; `ids` fill the statement's `{ids}` list, `params` its other placeholders."""
    text = str(sql)
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


async def fetch_models(
    select: Select[M],
    params: Sequence[Any] = (),
    *,
    ids: Sequence[int] = (),
    conn: BaseDBAsyncClient | None = None,
) -> list[M]:
    """The rows of `select` as model instances, exactly as the ORM would build them."""
    return [select.model._init_from_db(**row) for row in await fetch(select, params, ids=ids, conn=conn)]
