"""Lifecycle automations: messages the program sends by itself, each configured by a `PushAutomation` row (enabled,
texts per locale, settings), seeded from the program file's `[push.automations.<kind>]` (`apply_push_config`).

Every automation writes through `loyalty.messages.schedule` with an occasion that names what it is about, so it
never writes twice for one occasion (the unique (member, occasion) key; existing occasions are read first, so a
second run writes and counts nothing):

- welcome (transactional): `delay_minutes` (10) after enrollment, for members enrolled up to 7 days before that;
  occasion `welcome`.
- points_earned (transactional): a `points.earned` event with points (`on_events`, which the push consumer's
  `fan_out` calls); occasion `points_earned:<event id>`.
- points_expiring (transactional): available points expiring within `within_days` (14; exactly that far ahead
  included); occasion `points_expiring:<expiry date>` (program timezone), the day's points in one message.
- close_to_tier (marketing): qualifying value below the next tier's threshold by at most `within_percent` (10) % of
  it (exactly that % included, nothing at all excluded); occasion `close_to_tier:<tier id>:<period>`.
- win_back (marketing): lifecycle stage LAPSING (`loyalty.offers.lifecycle_stage`); occasion
  `win_back:<last purchase, or enrollment>`, so once per lapse.
- birthday (marketing): the member's birthday month, in their timezone; occasion `birthday:<local year>`.
- voucher_expiring (transactional): an active voucher expiring within `within_days` (3; the end included);
  occasion `voucher_expiring:<voucher id>`, opening the voucher.

Texts may name `{points}`, `{date}`, `{tier}`, `{remaining}` (what each kind knows); a member's text is picked by
their most recently seen device's locale. The period of `close_to_tier` is the tier period's start date (calendar
periods) or the calendar year (rolling periods, whose start moves every day). Audiences that grow with the
membership are read set-based (`loyalty.audience` for lifecycle and birthday, one aggregate per tier for
qualifying values) in keyset batches; they run as the job `push-automations` (`loyalty.jobs.JOBS`, `run_all`).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty import clock, events
from loyalty.audience import Query, Targeting, condition, postgres
from loyalty.campaigns import check_texts, default_locale, latest_locales
from loyalty.checks import is_whole
from loyalty.devices import DEVICE_RETENTION_DAYS
from loyalty.errors import InvalidInput
from loyalty.messages import BODY_LIMIT, TITLE_LIMIT, Outgoing, localised, schedule
from loyalty.models import (
    AutomationKind,
    LifecycleStage,
    LotStatus,
    MessagePurpose,
    OutboxEvent,
    PointsLot,
    Program,
    PushAutomation,
    PushMessage,
    PushPolicy,
    TierPeriod,
    Voucher,
    VoucherStatus,
)
from loyalty.program import load_program, tiers_of
from loyalty.tiers import period_end, period_start

BATCH_SIZE = 1000
WELCOME_LOOKBACK = timedelta(days=7)  # members enrolled before that are not welcomed (an automation enabled late)

PURPOSES = {
    AutomationKind.WELCOME: MessagePurpose.TRANSACTIONAL,
    AutomationKind.POINTS_EARNED: MessagePurpose.TRANSACTIONAL,
    AutomationKind.POINTS_EXPIRING: MessagePurpose.TRANSACTIONAL,
    AutomationKind.CLOSE_TO_TIER: MessagePurpose.MARKETING,
    AutomationKind.WIN_BACK: MessagePurpose.MARKETING,
    AutomationKind.BIRTHDAY: MessagePurpose.MARKETING,
    AutomationKind.VOUCHER_EXPIRING: MessagePurpose.TRANSACTIONAL,
}
# Each kind's settings: name -> (default, lowest, highest).
SETTINGS: dict[AutomationKind, dict[str, tuple[int, int, int]]] = {
    AutomationKind.WELCOME: {"delay_minutes": (10, 0, 7 * 24 * 60)},
    # A worker catching up after an outage (or a demo's seeded history) must not tell of points earned days ago.
    AutomationKind.POINTS_EARNED: {"max_age_hours": (24, 1, 30 * 24)},
    AutomationKind.POINTS_EXPIRING: {"within_days": (14, 1, 365)},
    AutomationKind.CLOSE_TO_TIER: {"within_percent": (10, 1, 100)},
    AutomationKind.WIN_BACK: {},
    AutomationKind.BIRTHDAY: {},
    AutomationKind.VOUCHER_EXPIRING: {"within_days": (3, 1, 365)},
}


@dataclass(frozen=True)
class Candidate:
    """A message an automation owes: to whom, for which occasion, the values its texts may name, what it opens."""

    member_id: int
    occasion: str
    values: Mapping[str, object]
    target: str = ""
    due_at: datetime | None = None  # now when None


def render(text: str, values: Mapping[str, object]) -> str:
    """`text` with `{name}` replaced by `values[name]` (only those names: no format language, nothing else read)."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", str(value))
    return text


def setting(automation: PushAutomation, name: str) -> int:
    default = SETTINGS[automation.kind][name][0]
    value = automation.settings.get(name, default)
    return value if isinstance(value, int) else default


async def enabled(kind: AutomationKind, conn: BaseDBAsyncClient | None = None) -> PushAutomation | None:
    """The automation's configuration if it is enabled, else None."""
    return await PushAutomation.filter(kind=kind, enabled=True).using_db(conn).first()


async def _write(
    conn: BaseDBAsyncClient, automation: PushAutomation, candidates: Sequence[Candidate], now: datetime, locale: str
) -> int:
    """Write the candidates whose (member, occasion) has no message yet; returns how many were written."""
    if not candidates:
        return 0
    member_ids = sorted({c.member_id for c in candidates})
    existing = set(
        await PushMessage.filter(member_id__in=member_ids, occasion__in=sorted({c.occasion for c in candidates}))
        .using_db(conn)
        .values_list("member_id", "occasion")
    )
    fresh = [c for c in candidates if (c.member_id, c.occasion) not in existing]
    if not fresh:
        return 0
    locales = await latest_locales(conn, sorted({c.member_id for c in fresh}))
    messages = [
        Outgoing(
            member_id=c.member_id,
            occasion=c.occasion,
            purpose=PURPOSES[automation.kind],
            title=render(localised(automation.title, locales.get(c.member_id, locale), locale), c.values),
            body=render(localised(automation.body, locales.get(c.member_id, locale), locale), c.values),
            due_at=c.due_at or now,
            target=c.target,
            automation=automation.kind,
            collapse_key=f"automation:{automation.kind.value}",
        )
        for c in fresh
    ]
    await schedule(conn, messages, now)
    return len(messages)


async def _run(automation: PushAutomation, batches: AsyncIterator[list[Candidate]]) -> int:
    locale = await default_locale()
    written = 0
    async for batch in batches:
        async with in_transaction() as conn:
            # Concurrent runs (several workers) take their batches one at a time, so what a batch finds written is
            # all that is: each message is written, and counted, by one run.
            await PushAutomation.filter(id=automation.id).using_db(conn).select_for_update().first()
            written += await _write(conn, automation, batch, clock.now(), locale)
    return written


# --- points earned (transactional, from the outbox) ---------------------------------------------


async def on_events(conn: BaseDBAsyncClient, batch: Sequence[OutboxEvent], now: datetime) -> int:
    """Inside the push consumer's dispatch transaction: a message for each `points.earned` event with points, if the
    automation is enabled and the event is at most `max_age_hours` old. Safe to repeat (occasion
    `points_earned:<event id>`); returns the messages written."""
    earned = [e for e in batch if e.type == events.POINTS_EARNED and e.member_id and e.payload.get("points")]
    if not earned:
        return 0
    automation = await enabled(AutomationKind.POINTS_EARNED, conn)
    if automation is None:
        return 0
    oldest = now - timedelta(hours=setting(automation, "max_age_hours"))
    earned = [e for e in earned if e.created_at >= oldest]
    candidates = [
        Candidate(int(e.member_id or 0), f"points_earned:{e.id}", {"points": e.payload["points"]}) for e in earned
    ]
    return await _write(conn, automation, candidates, now, await default_locale(conn))


# --- the jobs -----------------------------------------------------------------------------------


async def _member_batches(
    where: str, query: Query, extra: list[str] | None = None, batch_size: int = BATCH_SIZE
) -> AsyncIterator[list[dict[str, Any]]]:
    """Members matching `where` (on "m", with `query`'s values) in id order, `batch_size` at a time, as dicts of
    id, created_at, last_purchase_at, timezone (plus `extra` columns)."""
    conn = connections.get("default")
    columns = ", ".join(
        f'"m"."{c}"' for c in ["id", "created_at", "last_purchase_at", "timezone", "birthday", *(extra or [])]
    )
    last = 0
    while True:
        page = Query(query.postgres, list(query.values))
        text = (
            f'SELECT {columns} FROM "member" AS "m" WHERE ({where})'  # noqa: S608 - our text, values as parameters
            f' AND "m"."id" > {page.param(last)} ORDER BY "m"."id" LIMIT {page.param(batch_size)}'
        )
        rows = await conn.execute_query_dict(text, page.values)
        if not rows:
            return
        yield rows
        if len(rows) < batch_size:
            return
        last = rows[-1]["id"]


def _aware(value: Any) -> datetime:
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=ZoneInfo("UTC"))


async def welcome(batch_size: int = BATCH_SIZE) -> int:
    """`push-welcome`: members enrolled `delay_minutes` ago or more (up to `WELCOME_LOOKBACK` before that)."""
    automation = await enabled(AutomationKind.WELCOME)
    if automation is None:
        return 0
    now = clock.now()
    due = now - timedelta(minutes=setting(automation, "delay_minutes"))
    query = Query(postgres(connections.get("default")))
    where = f'"m"."created_at" <= {query.param(due)} AND "m"."created_at" > {query.param(due - WELCOME_LOOKBACK)}'

    async def batches() -> AsyncIterator[list[Candidate]]:
        async for rows in _member_batches(where, query, batch_size=batch_size):
            yield [Candidate(row["id"], "welcome", {}) for row in rows]

    return await _run(automation, batches())


async def _targeted(kind: AutomationKind, targeting: Targeting, occasion: Any, batch_size: int) -> int:
    automation = await enabled(kind)
    if automation is None:
        return 0
    program = await load_program()
    now = clock.now()
    conn = connections.get("default")
    query = Query(postgres(conn))
    where = await condition(conn, query, targeting, program, now)

    async def batches() -> AsyncIterator[list[Candidate]]:
        async for rows in _member_batches(where, query, batch_size=batch_size):
            yield [Candidate(row["id"], occasion(row, now), {}) for row in rows]

    return await _run(automation, batches())


async def win_back(batch_size: int = BATCH_SIZE) -> int:
    """`push-win-back`: members who are LAPSING, once per lapse (their last purchase, or enrollment, names it)."""

    def occasion(row: dict[str, Any], now: datetime) -> str:
        since = _aware(row["last_purchase_at"] or row["created_at"])
        return f"win_back:{since.astimezone(ZoneInfo('UTC')).isoformat(timespec='seconds')}"

    return await _targeted(
        AutomationKind.WIN_BACK, Targeting(lifecycle_stages=(LifecycleStage.LAPSING,)), occasion, batch_size
    )


async def birthday(batch_size: int = BATCH_SIZE) -> int:
    """`push-birthday`: members in their birthday month (their timezone), once a year (their local year)."""

    def occasion(row: dict[str, Any], now: datetime) -> str:
        return f"birthday:{now.astimezone(ZoneInfo(row['timezone'])).year}"

    return await _targeted(AutomationKind.BIRTHDAY, Targeting(birthday_month=True), occasion, batch_size)


async def points_expiring(batch_size: int = BATCH_SIZE) -> int:
    """`push-points-expiring`: available points expiring within `within_days` (exactly that far ahead included), one
    message per member and expiry date (program timezone) with the points expiring that day."""
    automation = await enabled(AutomationKind.POINTS_EXPIRING)
    if automation is None:
        return 0
    program = await load_program()
    zone = ZoneInfo(program.timezone)

    async def batches() -> AsyncIterator[list[Candidate]]:
        # By member (keyset on member id), so all of a member's lots of one date are summed in one message.
        last = 0
        while True:
            now = clock.now()
            until = now + timedelta(days=setting(automation, "within_days"))
            expiring = PointsLot.filter(
                status=LotStatus.AVAILABLE, remaining__gt=0, expires_at__gt=now, expires_at__lte=until
            )
            member_ids: list[int] = [
                int(row[0])
                for row in await expiring.filter(member_id__gt=last)
                .distinct()
                .order_by("member_id")
                .limit(batch_size)
                .values_list("member_id")
            ]
            if not member_ids:
                return
            per_day: dict[tuple[int, str], int] = {}
            for member_id, expires_at, remaining in await expiring.filter(member_id__in=member_ids).values_list(
                "member_id", "expires_at", "remaining"
            ):
                key = (member_id, expires_at.astimezone(zone).date().isoformat())
                per_day[key] = per_day.get(key, 0) + remaining
            yield [
                Candidate(m, f"points_expiring:{day}", {"points": points, "date": day})
                for (m, day), points in sorted(per_day.items())
            ]
            if len(member_ids) < batch_size:
                return
            last = member_ids[-1]

    return await _run(automation, batches())


async def voucher_expiring(batch_size: int = BATCH_SIZE) -> int:
    """`push-voucher-expiring`: active vouchers expiring within `within_days` (exactly that far ahead included)."""
    automation = await enabled(AutomationKind.VOUCHER_EXPIRING)
    if automation is None:
        return 0
    program = await load_program()
    zone = ZoneInfo(program.timezone)

    async def batches() -> AsyncIterator[list[Candidate]]:
        last = 0
        while True:
            now = clock.now()
            until = now + timedelta(days=setting(automation, "within_days"))
            vouchers = await (
                Voucher.filter(status=VoucherStatus.ACTIVE, expires_at__gt=now, expires_at__lte=until, id__gt=last)
                .order_by("id")
                .limit(batch_size)
                .values_list("id", "member_id", "expires_at")
            )
            if not vouchers:
                return
            yield [
                Candidate(
                    m,
                    f"voucher_expiring:{v}",
                    {"date": expires_at.astimezone(zone).date().isoformat()},
                    target=f"voucher:{v}",
                )
                for v, m, expires_at in vouchers
            ]
            if len(vouchers) < batch_size:
                return
            last = vouchers[-1][0]

    return await _run(automation, batches())


def _period_name(program: Program, at: datetime) -> str:
    if program.tier_period == TierPeriod.CALENDAR_YEAR:
        return period_start(program, at).astimezone(ZoneInfo(program.timezone)).date().isoformat()
    return str(at.astimezone(ZoneInfo(program.timezone)).year)


async def close_to_tier(batch_size: int = BATCH_SIZE) -> int:
    """`push-close-to-tier`: members whose qualifying value is below the next tier's threshold by at most
    `within_percent` % of it (exactly that % included), once per next tier and period."""
    automation = await enabled(AutomationKind.CLOSE_TO_TIER)
    if automation is None:
        return 0
    program = await load_program()
    percent = setting(automation, "within_percent")
    now = clock.now()
    start, end = period_start(program, now), period_end(program, now)
    tiers = tiers_of(program)
    period = _period_name(program, now)
    conn = connections.get("default")

    async def batches() -> AsyncIterator[list[Candidate]]:
        for current, upcoming in pairwise(tiers):
            # remaining * 100 <= percent * threshold, remaining a whole number: at least this much qualifies.
            lowest = upcoming.threshold - math.floor(percent * upcoming.threshold / 100)
            if lowest <= 0:
                lowest = 1  # a member with nothing at all this period is not "close"
            last = 0
            while True:
                query = Query(postgres(conn))
                in_tier = f'"m"."tier_id" = {query.param(current.id)}'
                if current.rank == tiers[0].rank:
                    in_tier = f'({in_tier} OR "m"."tier_id" IS NULL)'
                text = (
                    'SELECT "q"."member_id" AS "member_id", SUM("q"."amount") AS "value"'  # noqa: S608
                    ' FROM "qualifying_credit" AS "q" JOIN "member" AS "m" ON "m"."id" = "q"."member_id"'
                    f' WHERE {in_tier} AND "q"."occurred_at" >= {query.param(start)}'
                    f' AND "q"."occurred_at" < {query.param(end)} AND "q"."member_id" > {query.param(last)}'
                    ' GROUP BY "q"."member_id"'
                    f' HAVING SUM("q"."amount") >= {query.param(lowest)}'
                    f' AND SUM("q"."amount") < {query.param(upcoming.threshold)}'
                    f' ORDER BY "q"."member_id" LIMIT {query.param(batch_size)}'
                )
                rows = await conn.execute_query_dict(text, query.values)
                if not rows:
                    break
                yield [
                    Candidate(
                        row["member_id"],
                        f"close_to_tier:{upcoming.id}:{period}",
                        {"tier": upcoming.name, "remaining": upcoming.threshold - int(row["value"])},
                    )
                    for row in rows
                ]
                if len(rows) < batch_size:
                    break
                last = rows[-1]["member_id"]

    return await _run(automation, batches())


JOB_RUNS = {
    AutomationKind.WELCOME: welcome,
    AutomationKind.POINTS_EXPIRING: points_expiring,
    AutomationKind.CLOSE_TO_TIER: close_to_tier,
    AutomationKind.WIN_BACK: win_back,
    AutomationKind.BIRTHDAY: birthday,
    AutomationKind.VOUCHER_EXPIRING: voucher_expiring,
}


async def run_all() -> int:
    """The job `push-automations`: every enabled automation that runs from the clock, in turn; the messages written."""
    return sum([await run() for run in JOB_RUNS.values()])


# --- configuration ------------------------------------------------------------------------------


def _time(value: object, field: str) -> time:
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise InvalidInput(f"push config: `{field}` is a time such as 21:00", field=field) from exc


def _cap(section: Mapping[str, Any], key: str, default: int | None) -> int | None:
    if key not in section:
        return default
    value = section[key]
    if not is_whole(value, 0, 10_000):
        raise InvalidInput(f"push config: `{key}` must be 0 to 10000 (omit it for no cap)", field=key)
    return int(value)


def _retention(section: Mapping[str, Any]) -> int:
    value = section.get("device_retention_days", DEVICE_RETENTION_DAYS)
    if not is_whole(value, 30, 3650):
        raise InvalidInput("push config: `device_retention_days` must be 30 to 3650", field="device_retention_days")
    return int(value)


async def apply_push_config(section: Mapping[str, Any]) -> int:
    """The sending policy and the automations from a parsed `[push]` section; returns the automations written.

    `[push]`: `default_locale`, caps `marketing_per_day` / `marketing_per_week` / `transactional_per_day` /
    `transactional_per_week` (omitted: the defaults 1, 3, 10 and none), `quiet_start` / `quiet_end` ("21:00",
    "08:00"; both or neither), `device_retention_days` (30 to 3650, default 270). `[push.automations.<kind>]`:
    `enabled`, `title` and `body` (tables of locale = text, the default locale required when enabled), and the kind's
    settings (`SETTINGS`). Kinds not named keep their rows.
    """
    if not isinstance(section, Mapping):
        raise InvalidInput("push config: `[push]` is a table", field="push")
    locale = section.get("default_locale", "en")
    if not isinstance(locale, str) or not 2 <= len(locale) <= 16:
        raise InvalidInput("push config: `default_locale` is a locale such as en", field="default_locale")
    if ("quiet_start" in section) != ("quiet_end" in section):
        raise InvalidInput("push config: quiet hours need both `quiet_start` and `quiet_end`", field="quiet_start")
    now = clock.now()
    policy = {
        "default_locale": locale,
        "marketing_per_day": _cap(section, "marketing_per_day", 1),
        "marketing_per_week": _cap(section, "marketing_per_week", 3),
        "transactional_per_day": _cap(section, "transactional_per_day", 10),
        "transactional_per_week": _cap(section, "transactional_per_week", None),
        "device_retention_days": _retention(section),
        "quiet_start": _time(section["quiet_start"], "quiet_start") if "quiet_start" in section else None,
        "quiet_end": _time(section["quiet_end"], "quiet_end") if "quiet_end" in section else None,
        "updated_at": now,
    }
    automations = section.get("automations", {})
    if not isinstance(automations, Mapping):
        raise InvalidInput("push config: `[push.automations]` is a table of kinds", field="automations")
    rows = [_automation(kind, spec, locale) for kind, spec in automations.items()]
    async with in_transaction() as conn:
        existing = await PushPolicy.all().using_db(conn).order_by("id").first()
        if existing is None:
            await PushPolicy.create(**policy, using_db=conn)
        else:  # saved as a model: a queryset UPDATE does not convert a time for SQLite
            existing.update_from_dict(policy)
            await existing.save(using_db=conn)
        for kind, values in rows:
            await PushAutomation.update_or_create(kind=kind, defaults={**values, "updated_at": now}, using_db=conn)
    return len(rows)


def _automation(kind_name: object, spec: object, locale: str) -> tuple[AutomationKind, dict[str, Any]]:
    try:
        kind = AutomationKind(str(kind_name))
    except ValueError as exc:
        raise InvalidInput(
            f"push config: no automation {str(kind_name)[:32]!r}; the kinds are "
            f"{', '.join(k.value for k in AutomationKind)}",
            field="automations",
        ) from exc
    if not isinstance(spec, Mapping):
        raise InvalidInput(f"push config: `[push.automations.{kind.value}]` is a table", field="automations")
    is_enabled = spec.get("enabled", False)
    if not isinstance(is_enabled, bool):
        raise InvalidInput(f"push config: {kind.value}: `enabled` is true or false", field="enabled")
    title, body = spec.get("title", {}), spec.get("body", {})
    if is_enabled or title or body:
        title = check_texts(title, "title", TITLE_LIMIT, locale)
        body = check_texts(body, "body", BODY_LIMIT, locale)
    settings: dict[str, int] = {}
    for name, (default, low, high) in SETTINGS[kind].items():
        value = spec.get(name, default)
        if not is_whole(value, low, high):
            raise InvalidInput(f"push config: {kind.value}: `{name}` must be {low} to {high}", field=name)
        settings[name] = value
    unknown = set(spec) - {"enabled", "title", "body", *SETTINGS[kind]}
    if unknown:
        raise InvalidInput(f"push config: {kind.value}: unknown keys {', '.join(sorted(unknown))}", field=kind.value)
    return kind, {"enabled": is_enabled, "title": dict(title), "body": dict(body), "settings": settings}


async def set_enabled(kind: AutomationKind, on: bool) -> PushAutomation:
    """Turn an automation on or off (`klubb push automations enable|disable`); on needs its texts in the default
    locale (`InvalidInput`)."""
    automation = await PushAutomation.get_or_none(kind=kind)
    if automation is None:
        if on:
            raise InvalidInput(f"the {kind.value} automation has no texts: configure it in [push.automations]")
        automation = await PushAutomation.create(kind=kind, enabled=False, updated_at=clock.now())
        return automation
    if on:
        locale = await default_locale()
        check_texts(automation.title, "title", TITLE_LIMIT, locale)
        check_texts(automation.body, "body", BODY_LIMIT, locale)
    automation.enabled = on
    automation.updated_at = clock.now()
    await automation.save()
    return automation
