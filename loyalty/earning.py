"""Earning rules: how many points a purchase earns, and why.

For a purchase made at `occurred_at` by a member in tier T with a paid membership of plan P:

    points = floor(E * earn_rate * T.multiplier * P.earn_multiplier * Π campaign.multiplier) + Σ line bonuses

- E, the eligible amount, is the sum of the lines that earn, in major currency units. Voided lines and lines whose
  category is in `Program.excluded_categories` (gift cards, deposits) earn nothing: no base points, no bonuses.
- Campaigns count when active, `starts_at <= occurred_at < ends_at`, and either not tier-limited or limited to
  tiers that include T's name. Their multipliers multiply. The purchase's own time decides, not the time it is
  recorded, so a receipt sent late still gets the campaign it was bought in.
- The multiplied part is floored **once per purchase** (never per line, so splitting a basket loses nothing).
  It is shared out to the lines by cumulative flooring (each line gets floor(running exact sum) minus what the
  lines before it got), so per-line points add up exactly to the purchase's points and a refund by line can
  reverse a line's own share.
- Each `BonusRule` matching a line (by category or SKU, active, within its optional window) adds
  `points_per_item * quantity + floor(extra_rate * line amount in major units)`, **floored per line and rule**.
  Bonuses are flat: tier, membership and campaign multipliers do not apply to them.
- The paid membership's multiplier (`loyalty.memberships`: its plan's `earn_multiplier` while the membership gives
  benefits at the time the purchase is recorded) multiplies with the tier's and the campaigns' (a Gold member at
  1.5 with a Plus plan at 2 earns 3 points per point of base).

The breakdown reports the base part `floor(E * rate)` (the tier-qualifying points), the tier's extra
`floor(E * rate * T) - base`, the membership's extra `floor(E * rate * T * P) - floor(E * rate * T)`, the
campaigns' extra `floor(E * rate * T * P * C) - floor(E * rate * T * P)`, the bonuses, and each line's points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q

from loyalty import clock
from loyalty.checks import check_text
from loyalty.errors import InvalidInput
from loyalty.models import BonusRule, Campaign, Program, Tier
from loyalty.program import Configuration


@dataclass(frozen=True)
class LineInput:
    """One receipt line as the till sends it; `amount` is the line total in minor units."""

    sku: str
    category: str
    quantity: int
    amount: int
    voided: bool = False


@dataclass(frozen=True)
class LinePoints:
    line_no: int  # 1-based position on the receipt
    excluded: bool  # the line's category never earns
    voided: bool
    points: int  # the line's share of the multiplied part plus its bonuses
    bonus: int


@dataclass(frozen=True)
class EarnBreakdown:
    eligible_amount: int  # minor units that earn
    base: int  # floor(E * rate): what tiers qualify on
    tier_extra: int
    campaign_extra: int
    bonus: int
    points: int  # base + tier_extra + membership_extra + campaign_extra + bonus
    tier_multiplier: str  # Decimal as text (JSON-safe, exact)
    campaign_multiplier: str
    campaigns: list[str] = field(default_factory=list)
    bonus_rules: list[str] = field(default_factory=list)
    lines: list[LinePoints] = field(default_factory=list)
    membership_extra: int = 0
    membership_multiplier: str = "1"  # the paid membership plan's (1 without one)


@dataclass(frozen=True)
class ActiveRules:
    campaigns: list[Campaign]
    bonus_rules: list[BonusRule]


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


async def active_rules(at: datetime, conn: BaseDBAsyncClient | None = None) -> ActiveRules:
    """The campaigns and bonus rules in force at `at` (tier limits are applied by `compute_points`)."""
    campaigns = await Campaign.filter(active=True, starts_at__lte=at, ends_at__gt=at).using_db(conn).order_by("id")
    bonus_rules = (
        await BonusRule.filter(
            Q(starts_at__isnull=True) | Q(starts_at__lte=at),
            Q(ends_at__isnull=True) | Q(ends_at__gt=at),
            active=True,
        )
        .using_db(conn)
        .order_by("id")
    )
    return ActiveRules(list(campaigns), list(bonus_rules))


def active_rules_in(configuration: Configuration, at: datetime) -> ActiveRules:
    """The campaigns and bonus rules of a configuration snapshot in force at `at`: `active_rules` without a query."""
    return ActiveRules(
        [c for c in configuration.campaigns if c.starts_at <= at < c.ends_at],
        [
            rule
            for rule in configuration.bonus_rules
            if (rule.starts_at is None or rule.starts_at <= at) and (rule.ends_at is None or rule.ends_at > at)
        ],
    )


def _matches(rule: BonusRule, line: LineInput) -> bool:
    if rule.match_type == "category":
        return line.category == rule.match_value
    if rule.match_type == "sku":
        return line.sku == rule.match_value
    return False


def compute_points(
    program: Program,
    tier: Tier | None,
    lines: Sequence[LineInput],
    rules: ActiveRules,
    membership_multiplier: Decimal = Decimal(1),
) -> EarnBreakdown:
    """Points for `lines` bought by a member in `tier` (with a paid membership earning at `membership_multiplier`)
    under `rules` (see the module docstring)."""
    unit = Decimal(10) ** program.currency_exponent
    rate = Decimal(program.earn_rate)
    tier_multiplier = Decimal(tier.multiplier) if tier is not None else Decimal(1)
    membership_multiplier = Decimal(membership_multiplier)
    applied = [c for c in rules.campaigns if not c.tier_names or (tier is not None and tier.name in c.tier_names)]
    campaign_multiplier = Decimal(1)
    for campaign in applied:
        campaign_multiplier *= Decimal(campaign.multiplier)
    factor = rate * tier_multiplier * membership_multiplier * campaign_multiplier
    excluded_categories = set(program.excluded_categories or [])

    line_points: list[LinePoints] = []
    used_rules: list[str] = []
    eligible = 0
    running = Decimal(0)
    shared = 0
    for line_no, line in enumerate(lines, start=1):
        excluded = line.category in excluded_categories
        if line.voided or excluded:
            line_points.append(LinePoints(line_no, excluded, line.voided, 0, 0))
            continue
        eligible += line.amount
        running += Decimal(line.amount) / unit * factor
        share = _floor(running) - shared
        shared += share
        bonus = 0
        for rule in rules.bonus_rules:
            if _matches(rule, line):
                bonus += rule.points_per_item * line.quantity
                bonus += _floor(Decimal(rule.extra_rate) * Decimal(line.amount) / unit)
                if rule.name not in used_rules:
                    used_rules.append(rule.name)
        line_points.append(LinePoints(line_no, False, False, share + bonus, bonus))

    major = Decimal(eligible) / unit
    base = _floor(major * rate)
    with_tier = _floor(major * rate * tier_multiplier)
    with_membership = _floor(major * rate * tier_multiplier * membership_multiplier)
    multiplied = _floor(major * factor)
    bonus_total = sum(lp.bonus for lp in line_points)
    return EarnBreakdown(
        eligible_amount=eligible,
        base=base,
        tier_extra=with_tier - base,
        campaign_extra=multiplied - with_membership,
        bonus=bonus_total,
        points=multiplied + bonus_total,
        tier_multiplier=f"{tier_multiplier.normalize():f}",
        campaign_multiplier=f"{campaign_multiplier.normalize():f}",
        campaigns=[c.name for c in applied],
        bonus_rules=used_rules,
        lines=line_points,
        membership_extra=with_membership - with_tier,
        membership_multiplier=f"{membership_multiplier.normalize():f}",
    )


def _config_name(spec: dict[str, Any], kind: str) -> str:
    return check_text(spec.get("name"), "name", 100, label=f"{kind} config: a name")


async def apply_earning_config(campaigns: list[dict[str, Any]], bonus_rules: list[dict[str, Any]]) -> int:
    """Create or update campaigns and bonus rules by name from parsed TOML (`[[campaigns]]`, `[[bonus_rules]]`).

    Each runs from now for `days` days (bonus rules without `days` never end). Returns the number written.
    """
    now = clock.now()
    for spec in campaigns:
        multiplier = spec.get("multiplier")
        if not isinstance(multiplier, int | float) or isinstance(multiplier, bool) or multiplier <= 0:
            raise InvalidInput("campaign config: `multiplier` must be a positive number", field="multiplier")
        await Campaign.update_or_create(
            name=_config_name(spec, "campaign"),
            defaults={
                "multiplier": Decimal(str(multiplier)),
                "starts_at": now,
                "ends_at": now + timedelta(days=int(spec.get("days", 7))),
                "tier_names": list(spec.get("tier_names", [])),
                "active": True,
            },
        )
    for spec in bonus_rules:
        if spec.get("match_type") not in ("category", "sku") or not isinstance(spec.get("match_value"), str):
            raise InvalidInput(
                "bonus rule config: match_type is category or sku, with a match_value", field="match_type"
            )
        await BonusRule.update_or_create(
            name=_config_name(spec, "bonus rule"),
            defaults={
                "match_type": spec["match_type"],
                "match_value": spec["match_value"],
                "points_per_item": int(spec.get("points_per_item", 0)),
                "extra_rate": Decimal(str(spec.get("extra_rate", 0))),
                "starts_at": now,
                "ends_at": now + timedelta(days=int(spec["days"])) if "days" in spec else None,
                "active": True,
            },
        )
    return len(campaigns) + len(bonus_rules)
