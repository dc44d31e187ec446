"""Who a push campaign reaches: the offers' targeting (`loyalty.offers`) as one SQL condition on the member table.

A campaign reaches 100,000 members, so its audience is read set-based, never by evaluating `offers._targets` member by
member in Python. The rules stay those of `loyalty.offers` (`_targets`, `lifecycle_stage`, `_in_birthday_month`):
where a rule depends on a value SQL would judge differently from Python (a timezone's month, Unicode case folding of
interests), the distinct values are read first and judged by the same Python functions the offers use, and SQL only
compares columns with the values that passed. `tests/loyalty/test_audience.py` compares this condition with
`offers._targets` on generated members, both engines.

- `tier_names` / `min_tier_rank`: the tiers that qualify are picked in Python from the program; SQL compares
  `tier_id` (a member without a tier of the program qualifies for neither, as in `_targets`);
- `lifecycle_stages`: `lifecycle_stage`'s thresholds become instants (`at` minus the program's days);
- `birthday_month`: the member's birthday month at `at` in their own timezone: the months of the distinct timezones
  are computed in Python;
- `interests`: the distinct interests members have are normalised as `offers.interest_key` does;
- `min_spend` (campaigns only; an offer's `min_spend` is a condition on the purchase at the till): the member's net
  spend (receipt totals less refunds, minor units) in the current tier qualification period
  (`tiers.period_start`/`period_end`), whatever the program's tier metric. Campaigns do not target paid
  membership (yet): the offers' membership rules (`loyalty.memberships`) apply where offers are shown.

Indexes: the statements read the member table in id order (keyset batches) and aggregate `purchase` and `device`
once per statement (`IN (SELECT … GROUP BY …)`), never a correlated lookup per member (`device.member_id` has no
index).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.models import LifecycleStage, Program
from loyalty.offers import interest_key
from loyalty.tiers import period_end, period_start


@dataclass(frozen=True)
class Targeting:
    """An audience, as offers target: empty or None means anyone."""

    tier_names: tuple[str, ...] = ()
    min_tier_rank: int | None = None
    lifecycle_stages: tuple[LifecycleStage, ...] = ()
    birthday_month: bool = False
    interests: tuple[str, ...] = ()
    min_spend: int | None = None  # net spend in the current tier period, minor units


def postgres(conn: BaseDBAsyncClient) -> bool:
    return bool(conn.capabilities.dialect == "postgres")


@dataclass
class Query:
    """SQL text with `?` placeholders and its values, numbered `$n` for PostgreSQL when rendered."""

    postgres: bool
    values: list[Any] = field(default_factory=list)

    def param(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.postgres else "?"

    def params(self, values: Sequence[Any]) -> str:
        return ", ".join(self.param(v) for v in values)


_NOTHING = "1 = 0"


async def condition(conn: BaseDBAsyncClient, query: Query, targeting: Targeting, program: Program, at: datetime) -> str:
    """The SQL condition on `"m"` (the member table) that holds for the members `targeting` reaches at `at`.

    Reads at most two small lists first (the members' distinct timezones for `birthday_month`, their distinct
    interests for `interests`); adds its values to `query`.
    """
    parts: list[str] = []
    tiers = sorted(program.tiers, key=lambda t: t.rank)
    if targeting.tier_names:
        parts.append(_tier_in(query, [t.id for t in tiers if t.name in targeting.tier_names]))
    if targeting.min_tier_rank is not None:
        rank = targeting.min_tier_rank
        parts.append(_tier_in(query, [t.id for t in tiers if t.rank >= rank]))
    if targeting.lifecycle_stages:
        parts.append(_stages(query, set(targeting.lifecycle_stages), program, at))
    if targeting.birthday_month:
        parts.append(await _birthday_month(conn, query, at))
    if targeting.interests:
        parts.append(await _interests(conn, query, targeting.interests))
    if targeting.min_spend is not None:
        start, end = period_start(program, at), period_end(program, at)
        parts.append(
            '"m"."id" IN (SELECT "p"."member_id" FROM "purchase" AS "p"'  # noqa: S608 - our text, values as parameters
            f' WHERE "p"."occurred_at" >= {query.param(start)} AND "p"."occurred_at" < {query.param(end)}'
            ' GROUP BY "p"."member_id"'
            f' HAVING SUM("p"."total" - "p"."refunded_total") >= {query.param(targeting.min_spend)})'
        )
    return " AND ".join(f"({part})" for part in parts) if parts else "1 = 1"


def _tier_in(query: Query, tier_ids: list[int]) -> str:
    return f'"m"."tier_id" IN ({query.params(tier_ids)})' if tier_ids else _NOTHING


def _stages(query: Query, stages: set[LifecycleStage], program: Program, at: datetime) -> str:
    # `offers.lifecycle_stage`: NEW while at - created_at < new_member_days; then by the idle time since the last
    # purchase (or enrollment): LAPSED from lapsed_after_days, LAPSING from lapsing_after_days, else ACTIVE.
    # Each use of a threshold is its own parameter: SQLite's `?` are positional.
    new_cut = at - timedelta(days=program.new_member_days)
    lapsed_cut = at - timedelta(days=program.lapsed_after_days)
    lapsing_cut = at - timedelta(days=program.lapsing_after_days)
    idle = 'COALESCE("m"."last_purchase_at", "m"."created_at")'

    def one(stage: LifecycleStage) -> str:
        if stage == LifecycleStage.NEW:
            return f'"m"."created_at" > {query.param(new_cut)}'
        settled = f'"m"."created_at" <= {query.param(new_cut)}'
        if stage == LifecycleStage.LAPSED:
            return f"{settled} AND {idle} <= {query.param(lapsed_cut)}"
        if stage == LifecycleStage.LAPSING:
            return f"{settled} AND {idle} > {query.param(lapsed_cut)} AND {idle} <= {query.param(lapsing_cut)}"
        return f"{settled} AND {idle} > {query.param(lapsing_cut)}"

    return " OR ".join(f"({one(stage)})" for stage in LifecycleStage if stage in stages)


async def _birthday_month(conn: BaseDBAsyncClient, query: Query, at: datetime) -> str:
    # `offers._in_birthday_month`: the month of `at` in the member's timezone, judged per distinct timezone.
    rows = await conn.execute_query_dict(
        'SELECT DISTINCT "timezone" FROM "member" WHERE "birthday" IS NOT NULL ORDER BY "timezone"'
    )
    by_month: dict[int, list[str]] = defaultdict(list)
    for row in rows:
        by_month[at.astimezone(ZoneInfo(row["timezone"])).month].append(row["timezone"])
    if not by_month:
        return _NOTHING
    month = (
        'CAST(EXTRACT(MONTH FROM "m"."birthday") AS INTEGER)'
        if query.postgres
        else 'CAST(strftime(\'%m\', "m"."birthday") AS INTEGER)'
    )
    months = " OR ".join(
        f'("m"."timezone" IN ({query.params(zones)}) AND {month} = {query.param(number)})'
        for number, zones in sorted(by_month.items())
    )
    return f'"m"."birthday" IS NOT NULL AND ({months})'


def _interest_elements(postgres: bool, column: str) -> tuple[str, str]:
    """The elements of the JSON array `column` as a table (joinable beside the table of `column`) and their text."""
    if postgres:
        return f'jsonb_array_elements_text(CAST({column} AS JSONB)) AS "e"("v")', '"e"."v"'
    # json_each's "atom" is the element's SQL value; a non-text element is never an interest.
    return f'json_each({column}) AS "e"', 'CASE WHEN "e"."type" = \'text\' THEN "e"."atom" END'


async def _interests(conn: BaseDBAsyncClient, query: Query, interests: Sequence[str]) -> str:
    # `_targets`: at least one shared interest, compared as `offers.interest_key` does (stripped, lowercased).
    elements, value = _interest_elements(query.postgres, '"member"."interests"')
    rows = await conn.execute_query_dict(f'SELECT DISTINCT {value} AS "v" FROM "member", {elements}')  # noqa: S608
    wanted = {interest_key(i) for i in interests}
    matching = sorted(row["v"] for row in rows if isinstance(row["v"], str) and interest_key(row["v"]) in wanted)
    if not matching:
        return _NOTHING
    elements, value = _interest_elements(query.postgres, '"m"."interests"')
    return f"EXISTS (SELECT 1 FROM {elements} WHERE {value} IN ({query.params(matching)}))"  # noqa: S608
