"""The reward catalog and redeeming points for a reward.

Visibility and availability. A member sees every *active* reward whose validity window contains now
(`valid_from` inclusive, `valid_until` exclusive). A visible reward the member cannot take right now is still
listed, with the reason, so the app can show "reach Gold to unlock" or "34 points to go": rewards are something to
work towards. The reasons are checked in the same order as `redeem_reward` checks them, so the listed reason is
the error a redemption would get: NOT_ELIGIBLE (tier below `min_tier`), MEMBERSHIP_REQUIRED (a paid membership
whose plan's early-access rank is at least `min_membership_rank` is needed, `loyalty.memberships`), LIMIT_REACHED,
OUT_OF_STOCK, INSUFFICIENT_POINTS.

Redeeming runs in one transaction with the member row locked: the rules above, the stock taken with a
conditional `UPDATE … WHERE stock > 0` (row count checked, so concurrent redeemers never oversell), the points
debited from the ledger, and a voucher issued that remembers the debit, so cancelling it gives back exactly
those points and the stock.

Per-member limit: lifetime count of the member's catalog vouchers for the reward that were not cancelled
(active, redeemed or expired unused: an expired voucher's points were spent); vouchers a stamp card or an offer
gave for the same reward do not count.

Kinds and `value`: free product (`sku`), amount off (minor units), percent off (percent), cashback (minor units
credited to the member's cashback balance, `loyalty.cashback`), donation (minor units given to `cause`), experience
(events, early access). A donation and a cashback reward are fulfilled the moment their points are debited — there
is nothing to hand in at a till — so their voucher is issued already REDEEMED and cannot be cancelled: a donation
counts towards the program's donation totals (the sum of `value` over those vouchers, kept per reward as each one
is redeemed, `loyalty.donations`); cashback is credited to the member's cashback balance in the same transaction
(`cashback.credit_reward`, event `cashback.credited`), which the till can spend (`cashbackSpend`) or an integration
pay out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.functions import Count

from loyalty import clock, events, sql
from loyalty.cashback import credit_reward
from loyalty.checks import MAX_POINTS, check_idempotency_key, check_text, is_whole
from loyalty.donations import count_donation
from loyalty.errors import DomainError, InsufficientPoints, InvalidInput, NotFound
from loyalty.idempotency import idempotent
from loyalty.ledger import debit_available, lock_member
from loyalty.memberships import benefits_of_member, membership_rank
from loyalty.models import Program, Reward, RewardKind, Tier, Voucher, VoucherStatus
from loyalty.program import load_program
from loyalty.rows import AnyMember, AnyReward, RewardRow
from loyalty.vouchers import issue_voucher

# Vouchers that use up a per-member limit slot: everything but a cancelled one.
COUNTED_STATUSES = (VoucherStatus.ACTIVE, VoucherStatus.REDEEMED, VoucherStatus.EXPIRED)


class RewardNotFound(NotFound):
    code = "REWARD_NOT_FOUND"


class RewardNotAvailable(DomainError):
    """Inactive, or outside its validity window."""

    code = "NOT_AVAILABLE"


class NotEligible(DomainError):
    """The member's tier is below the reward's minimum tier."""

    code = "NOT_ELIGIBLE"


class MembershipRequired(DomainError):
    """The reward is for paid members whose plan's early-access rank is at least its `min_membership_rank`."""

    code = "MEMBERSHIP_REQUIRED"


class LimitReached(DomainError):
    code = "LIMIT_REACHED"


class OutOfStock(DomainError):
    code = "OUT_OF_STOCK"


class Unavailable(StrEnum):
    """Why a reward cannot be redeemed right now (checked in this order)."""

    NOT_AVAILABLE = "NOT_AVAILABLE"  # inactive or outside its window: never in the catalog, only on vouchers
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    MEMBERSHIP_REQUIRED = "MEMBERSHIP_REQUIRED"
    LIMIT_REACHED = "LIMIT_REACHED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"


@dataclass(frozen=True)
class CatalogItem:
    reward: AnyReward  # a row (`RewardRow`) when read for the app
    unavailable: Unavailable | None  # None: the member can redeem it now


def catalog_key(reward: AnyReward) -> tuple[int, int, int]:
    """The catalog order: sort order, then points cost, then id (a total order, for keyset paging)."""
    return (reward.sort_order, reward.points_cost, reward.id)


def is_visible(reward: AnyReward, at: datetime) -> bool:
    """Active and within its validity window at `at`."""
    return (
        reward.active
        and (reward.valid_from is None or reward.valid_from <= at)
        and (reward.valid_until is None or reward.valid_until > at)
    )


def _tier_rank(program: Program, tier_id: int | None) -> int:
    return next((t.rank for t in program.tiers if t.id == tier_id), 0)


def _unavailable(
    reward: AnyReward, member: AnyMember, program: Program, used: int, at: datetime, rank: int
) -> Unavailable | None:
    # `rank`: the early-access rank of the member's paid membership at `at` (0 without one).
    if not is_visible(reward, at):
        return Unavailable.NOT_AVAILABLE
    if reward.min_tier_id is not None and _tier_rank(program, member.tier_id) < _tier_rank(program, reward.min_tier_id):
        return Unavailable.NOT_ELIGIBLE
    if reward.min_membership_rank is not None and rank < reward.min_membership_rank:
        return Unavailable.MEMBERSHIP_REQUIRED
    if reward.per_member_limit is not None and used >= reward.per_member_limit:
        return Unavailable.LIMIT_REACHED
    if reward.stock is not None and reward.stock <= 0:
        return Unavailable.OUT_OF_STOCK
    if member.points_available < reward.points_cost:
        return Unavailable.INSUFFICIENT_POINTS
    return None


async def _used(member_id: int, reward_ids: list[int], conn: BaseDBAsyncClient | None = None) -> dict[int, int]:
    """Per reward, how many of the member's vouchers count against its per-member limit."""
    if not reward_ids:
        return {}
    rows = (
        await Voucher.filter(
            member_id=member_id,
            reward_id__in=reward_ids,
            status__in=COUNTED_STATUSES,
            # Only catalog redemptions: a stamp card or offer giving the same reward uses no slot.
            stamp_card_id__isnull=True,
            offer_id__isnull=True,
        )
        .using_db(conn)
        .annotate(n=Count("id"))
        .group_by("reward_id")
        .values_list("reward_id", "n")
    )
    return {reward_id: int(n) for reward_id, n in rows}


# The catalog as one member sees it: the rewards with the member's vouchers that count against each one's limit.
_CATALOG_ROWS = (
    f"SELECT {sql.columns(RewardRow, 'r', until='used')},"  # noqa: S608 - names from the row type
    ' (SELECT COUNT(*) FROM "voucher" AS "v" WHERE "v"."member_id" = ? AND "v"."reward_id" = "r"."id"'
    f' AND "v"."status" IN ({", ".join("?" * len(COUNTED_STATUSES))})'
    # Only catalog redemptions: a stamp card or offer giving the same reward uses no slot.
    ' AND "v"."stamp_card_id" IS NULL AND "v"."offer_id" IS NULL) AS "used"'
    ' FROM "reward" AS "r"'
)
_VISIBLE = (
    ' WHERE "r"."active" = ? AND ("r"."valid_from" IS NULL OR "r"."valid_from" <= ?)'
    ' AND ("r"."valid_until" IS NULL OR "r"."valid_until" > ?)'
)
_ORDER = ' ORDER BY "r"."sort_order", "r"."points_cost", "r"."id" LIMIT ?'
_CATALOG = sql.rows("rewards.catalog", Reward, RewardRow, _CATALOG_ROWS + _VISIBLE + _ORDER)
_CATALOG_AFTER = sql.rows(
    "rewards.catalog_after",
    Reward,
    RewardRow,
    _CATALOG_ROWS + _VISIBLE + ' AND ("r"."sort_order" > ? OR ("r"."sort_order" = ? AND "r"."points_cost" > ?)'
    ' OR ("r"."sort_order" = ? AND "r"."points_cost" = ? AND "r"."id" > ?))' + _ORDER,
)
_CATALOG_BY_ID = sql.rows("rewards.catalog_by_id", Reward, RewardRow, _CATALOG_ROWS + f' WHERE "r"."id" IN ({sql.IDS})')


def _counted(member_id: int) -> list[Any]:
    return [member_id, *(status.value for status in COUNTED_STATUSES)]


async def catalog(
    member: AnyMember, program: Program, at: datetime, *, limit: int, after: tuple[int, int, int] | None = None
) -> list[CatalogItem]:
    """Up to `limit` rewards the member can see at `at`, in catalog order, after the keyset `after`.

    One statement whatever the page size (rows: the rewards with the member's voucher counts for them).
    """
    params = [*_counted(member.id), True, at, at]
    if after is None:
        rows = await sql.fetch_rows(_CATALOG, [*params, limit])
    else:
        sort_order, cost, reward_id = after
        keyset = [sort_order, sort_order, cost, sort_order, cost, reward_id]
        rows = await sql.fetch_rows(_CATALOG_AFTER, [*params, *keyset, limit])
    rank = membership_rank(await benefits_of_member(member, at))
    return [CatalogItem(r, _unavailable(r, member, program, r.used, at, rank)) for r in rows]


async def catalog_items(
    member: AnyMember, program: Program, at: datetime, reward_ids: list[int]
) -> dict[int, CatalogItem]:
    """The rewards among `reward_ids` with the member's availability at `at` (hidden ones as NOT_AVAILABLE)."""
    rows = await sql.fetch_rows(_CATALOG_BY_ID, _counted(member.id), ids=reward_ids)
    rank = membership_rank(await benefits_of_member(member, at))
    return {r.id: CatalogItem(r, _unavailable(r, member, program, r.used, at, rank)) for r in rows}


async def _take_stock(conn: BaseDBAsyncClient, reward: Reward) -> None:
    # One conditional UPDATE: NULL stock (unlimited) stays NULL; a counted stock must still be above zero.
    taken = (
        await Reward.filter(Q(stock__isnull=True) | Q(stock__gt=0), id=reward.id)
        .using_db(conn)
        .update(stock=F("stock") - 1)
    )
    if taken != 1:
        raise OutOfStock("this reward is out of stock", field="reward_id")


@dataclass(frozen=True)
class _Issued:
    """A redemption's answer, as stored for replays."""

    voucher_id: int


async def redeem_reward(member_id: int, reward_id: int, *, idempotency_key: str) -> int:
    """Spend the member's points on a reward and issue its voucher; returns the voucher id.

    Idempotent per member and key: a retry returns the first voucher, the same key for another reward is
    `DuplicateIdempotencyKey`. Raises RewardNotFound, RewardNotAvailable, NotEligible, MembershipRequired,
    LimitReached, OutOfStock or InsufficientPoints, and then nothing was written.
    """

    async def action(conn: BaseDBAsyncClient) -> _Issued:
        member = await lock_member(conn, member_id)
        reward = await Reward.get_or_none(id=reward_id, using_db=conn)
        if reward is None:
            raise RewardNotFound("no such reward", field="reward_id")
        program = await load_program(conn)
        used = (await _used(member.id, [reward.id], conn)).get(reward.id, 0)
        # Stock and points are enforced by the conditional writes below, not by this snapshot.
        now = clock.now()
        rank = membership_rank(await benefits_of_member(member, now, conn))
        reason = _unavailable(reward, member, program, used, now, rank)
        if reason == Unavailable.NOT_AVAILABLE:
            raise RewardNotAvailable("this reward is not available now", field="reward_id")
        if reason == Unavailable.NOT_ELIGIBLE:
            raise NotEligible("this reward is for a higher tier", field="reward_id")
        if reason == Unavailable.MEMBERSHIP_REQUIRED:
            raise MembershipRequired("this reward is for paid members of a higher plan", field="reward_id")
        if reason == Unavailable.LIMIT_REACHED:
            raise LimitReached(f"this reward can be redeemed {reward.per_member_limit} times", field="reward_id")
        await _take_stock(conn, reward)
        entry = None
        if reward.points_cost > 0:
            try:
                entry = await debit_available(conn, member, reward.points_cost, description=reward.name)
            except InsufficientPoints as error:  # point the app at its own input, and say how far off it is
                raise InsufficientPoints(
                    f"this reward costs {reward.points_cost} points; {member.points_available} are available",
                    field="reward_id",
                ) from error
        voucher = await issue_voucher(conn, member.id, reward=reward, points_cost=reward.points_cost, entry=entry)
        if reward.kind == RewardKind.DONATION:
            await _fulfill_donation(conn, voucher, reward)
        elif reward.kind == RewardKind.CASHBACK:
            await credit_reward(conn, member, program, voucher, reward)
        return _Issued(voucher.id)

    check_idempotency_key(idempotency_key)
    issued = await idempotent("reward_redeem", f"{member_id}:{idempotency_key}", {"reward": reward_id}, _Issued, action)
    return issued.voucher_id


async def _fulfill_donation(conn: BaseDBAsyncClient, voucher: Voucher, reward: Reward) -> None:
    now = clock.now()
    await Voucher.filter(id=voucher.id).using_db(conn).update(status=VoucherStatus.REDEEMED, redeemed_at=now)
    await count_donation(conn, reward.id)
    await events.emit(
        conn,
        events.VOUCHER_REDEEMED,
        member_id=voucher.member_id,
        payload={"voucher_id": voucher.id, "reward_id": reward.id, "cause": reward.cause, "amount": reward.value},
    )


_REWARD_FIELDS = (
    "description",
    "value",
    "sku",
    "cause",
    "stock",
    "per_member_limit",
    "voucher_valid_days",
    "min_membership_rank",
)


async def apply_reward_config(specs: list[dict[str, Any]]) -> int:
    """Create or update catalog rewards by name from parsed TOML (`[[rewards]]`); returns how many were written.

    `min_tier` names a tier; other keys are `Reward` fields (kind, points_cost, value, sku, cause, stock, ...).
    """
    tiers = {t.name: t for t in await Tier.all()}
    for order, spec in enumerate(specs):
        name = check_text(spec.get("name"), "name", 100, label="reward config: a name")
        try:
            kind = RewardKind(spec.get("kind", ""))
        except ValueError as exc:
            raise InvalidInput(f"reward config {name!r}: {exc}", field="kind") from exc
        cost = spec.get("points_cost")
        if not is_whole(cost, 1, MAX_POINTS):
            raise InvalidInput(
                f"reward config {name!r}: points_cost must be a positive whole number", field="points_cost"
            )
        tier_name = spec.get("min_tier")
        if tier_name is not None and tier_name not in tiers:
            raise InvalidInput(f"reward config {name!r}: unknown tier {tier_name!r}", field="min_tier")
        values = {key: spec[key] for key in _REWARD_FIELDS if key in spec}
        await Reward.update_or_create(
            name=name,
            defaults={
                **values,
                "kind": kind,
                "points_cost": cost,
                "min_tier": tiers.get(tier_name) if tier_name else None,
                "sort_order": spec.get("sort_order", order),
                "active": True,
            },
        )
    return len(specs)
