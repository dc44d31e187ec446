"""Program configuration: loaded from the database, seeded from a TOML file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty.checks import MAX_MONEY
from loyalty.errors import InvalidInput, ProgramNotConfigured
from loyalty.models import (
    BonusRule,
    Campaign,
    MembershipPlan,
    Program,
    ReferralPolicy,
    StampCard,
    Tier,
    TierMetric,
    TierPeriod,
)

PROGRAM_ID = 1
_CACHE_SECONDS = 5.0
_cache: tuple[float, Program] | None = None
_plans_cache: tuple[float, tuple[MembershipPlan, ...]] | None = None

T = TypeVar("T")


async def load_program(conn: BaseDBAsyncClient | None = None) -> Program:
    """The program with its tiers (ordered by rank), read fresh from the database."""
    program = await Program.filter(id=PROGRAM_ID).using_db(conn).prefetch_related("tiers").first()
    if program is None:
        raise ProgramNotConfigured("the program is not configured: run `klubb seed`")
    return program


async def cached_program() -> Program:
    """The program for read paths, cached in the process for a few seconds."""
    global _cache
    if _cache is not None and time.monotonic() - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    program = await load_program()
    _cache = (time.monotonic(), program)
    return program


async def cached_plans() -> tuple[MembershipPlan, ...]:
    """The paid membership plans (retired ones too) for read paths, cached in the process like `cached_program`."""
    global _plans_cache
    if _plans_cache is not None and time.monotonic() - _plans_cache[0] < _CACHE_SECONDS:
        return _plans_cache[1]
    plans = tuple(await MembershipPlan.all().order_by("id"))
    _plans_cache = (time.monotonic(), plans)
    return plans


def forget_cached_program() -> None:
    """Drop the read caches and the configuration snapshot (after configuration changes, and between tests)."""
    global _cache, _plans_cache, _configuration
    _cache = None
    _plans_cache = None
    _configuration = None


@dataclass(frozen=True)
class Configuration:
    """What the write path needs of the configuration, as of one `program.version`: the program with its tiers, the
    active campaigns and bonus rules (any time window: the receipt's time picks, see `earning.active_rules_in`) and
    the active stamp cards (without their rewards, whose stock moves with every redemption), each by id.

    Shared by every caller in the process: read it, never change it.
    """

    version: int
    program: Program
    campaigns: tuple[Campaign, ...]
    bonus_rules: tuple[BonusRule, ...]
    stamp_cards: tuple[StampCard, ...]
    # Paid membership plans (retired ones too: their members run on until they lapse) and the referral policy
    # (None before one is configured: referrals then earn nothing).
    plans: tuple[MembershipPlan, ...] = ()
    referral_policy: ReferralPolicy | None = None


_configuration: Configuration | None = None


async def current_configuration(conn: BaseDBAsyncClient | None = None, version: int | None = None) -> Configuration:
    """The configuration snapshot, validated by one read of `program.version` (one statement while it is current;
    none when the caller read the `version` already, as `ledger.lock_member_with_program_version` does).

    Triggers on the configuration tables (migration 0005) bump the version on every write, whoever makes it, so a
    snapshot is never used after a change another process committed before this read. The snapshot is loaded with
    the program row first: what it holds is at least as new as its version (a newer change found on the way makes
    the next call reload). Deleting the program row and creating it again restarts its version and is not
    supported while processes run (the tests drop the snapshot with `forget_cached_program`).
    """
    global _configuration
    if version is None:
        rows = await Program.filter(id=PROGRAM_ID).using_db(conn).values("version")
        if not rows:
            raise ProgramNotConfigured("the program is not configured: run `klubb seed`")
        version = rows[0]["version"]
    cached = _configuration
    if cached is not None and cached.version == version:
        return cached
    program = await load_program(conn)
    snapshot = Configuration(
        version=program.version,
        program=program,
        campaigns=tuple(await Campaign.filter(active=True).using_db(conn).order_by("id")),
        bonus_rules=tuple(await BonusRule.filter(active=True).using_db(conn).order_by("id")),
        stamp_cards=tuple(await StampCard.filter(active=True).using_db(conn).order_by("id")),
        plans=tuple(await MembershipPlan.all().using_db(conn).order_by("id")),
        referral_policy=await ReferralPolicy.all().using_db(conn).order_by("id").first(),
    )
    _configuration = snapshot
    return snapshot


def tiers_of(program: Program) -> list[Tier]:
    """The program's tiers, entry tier first."""
    return sorted(program.tiers, key=lambda t: t.rank)


def _require(data: dict[str, Any], key: str, kind: type[T]) -> T:
    value = data.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInput(f"program config: `{key}` must be a {kind.__name__}", field=key)
    return value


def _require_number(data: dict[str, Any], key: str) -> int | float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"program config: `{key}` must be a number", field=key)
    return value


def _lifecycle_days(section: dict[str, Any]) -> dict[str, int]:
    """The lifecycle thresholds (days): new after enrollment, lapsing/lapsed without a purchase."""
    days = {"new_member_days": 30, "lapsing_after_days": 60, "lapsed_after_days": 180}
    for key in days:
        if key in section:
            days[key] = _require(section, key, int)
            if days[key] < 0:
                raise InvalidInput(f"program config: `{key}` cannot be negative", field=key)
    if days["lapsing_after_days"] >= days["lapsed_after_days"]:
        raise InvalidInput(
            "program config: `lapsing_after_days` must be less than `lapsed_after_days`", field="lapsed_after_days"
        )
    return days


def _earning_extras(section: dict[str, Any]) -> dict[str, Any]:
    """Line categories that never earn (gift cards), the yearly birthday points, and the adjustment cap."""
    excluded = section.get("excluded_categories", [])
    if not isinstance(excluded, list) or not all(isinstance(c, str) for c in excluded):
        raise InvalidInput(
            "program config: `excluded_categories` must be a list of strings", field="excluded_categories"
        )
    birthday_points = _require(section, "birthday_points", int) if "birthday_points" in section else 0
    if birthday_points < 0:
        raise InvalidInput("program config: `birthday_points` cannot be negative", field="birthday_points")
    # Manual adjustments above this many points (either way) need a manager.
    adjustment_cap = _require(section, "adjustment_cap", int) if "adjustment_cap" in section else 500
    if adjustment_cap < 0:
        raise InvalidInput("program config: `adjustment_cap` cannot be negative", field="adjustment_cap")
    return {"excluded_categories": excluded, "birthday_points": birthday_points, "adjustment_cap": adjustment_cap}


def _purchase_limits(section: dict[str, Any]) -> dict[str, int]:
    """The sanity limits on purchases (minor units): per receipt, and per member and day."""
    limits = {"max_purchase_total": 1_000_000, "max_daily_purchase_total": 2_500_000}
    for key in limits:
        if key in section:
            limits[key] = _require(section, key, int)
            if not 1 <= limits[key] <= MAX_MONEY:
                raise InvalidInput(f"program config: `{key}` must be 1 to {MAX_MONEY} (minor units)", field=key)
    if limits["max_daily_purchase_total"] < limits["max_purchase_total"]:
        raise InvalidInput(
            "program config: `max_daily_purchase_total` cannot be less than `max_purchase_total`",
            field="max_daily_purchase_total",
        )
    return limits


async def apply_program_config(config: dict[str, Any]) -> Program:
    """Create or replace the program and its tiers from a parsed TOML document (`[program]`, `[[tiers]]`)."""
    section = _require(config, "program", dict)
    tiers = _require(config, "tiers", list)
    if not tiers:
        raise InvalidInput("program config: at least one tier is needed", field="tiers")
    thresholds = [_require(t, "threshold", int) for t in tiers]
    if thresholds[0] != 0 or thresholds != sorted(set(thresholds)):
        raise InvalidInput("program config: tier thresholds must start at 0 and strictly increase", field="tiers")
    currency = _require(section, "currency", str)
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise InvalidInput("program config: currency must be an ISO 4217 code such as EUR", field="currency")
    values = {
        "name": _require(section, "name", str),
        "currency": currency,
        "currency_exponent": section.get("currency_exponent", 2),
        "earn_rate": Decimal(str(_require_number(section, "earn_rate"))),
        "pending_days": section.get("pending_days", 14),
        "expiry_days": section.get("expiry_days"),
        "expiring_soon_days": section.get("expiring_soon_days", 30),
        "allow_negative_balance": bool(section.get("allow_negative_balance", False)),
        "tier_metric": TierMetric(section.get("tier_metric", "points")),
        "tier_period": TierPeriod(section.get("tier_period", "calendar_year")),
        "card_code_seconds": section.get("card_code_seconds", 60),
        "timezone": section.get("timezone", "UTC"),
        **_lifecycle_days(section),
        **_earning_extras(section),
        **_purchase_limits(section),
    }
    async with in_transaction() as conn:
        await Program.update_or_create(id=PROGRAM_ID, defaults=values, using_db=conn)
        existing = {t.rank: t for t in await Tier.filter(program_id=PROGRAM_ID).using_db(conn)}
        for rank, spec in enumerate(tiers):
            tier_values = {
                "name": _require(spec, "name", str),
                "threshold": spec["threshold"],
                "multiplier": Decimal(str(spec.get("multiplier", 1))),
                "benefits": list(spec.get("benefits", [])),
            }
            if rank in existing:
                await Tier.filter(id=existing[rank].id).using_db(conn).update(**tier_values)
            else:
                await Tier.create(program_id=PROGRAM_ID, rank=rank, **tier_values, using_db=conn)
        surplus = [t.id for r, t in existing.items() if r >= len(tiers)]
        if surplus:
            await Tier.filter(id__in=surplus).using_db(conn).delete()
    forget_cached_program()
    return await load_program()
