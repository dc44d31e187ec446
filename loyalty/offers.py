"""Personalized offers: lifecycle stages, targeting and ranking, activation by the member, redemption at the till.

An offer *applies* to a member at a moment `at` when it is active, `valid_from <= at < valid_until`, every targeting
rule holds and the member has uses left:

- `tier_names`: the member's tier is one of them (empty: any tier);
- `min_tier_rank`: the member's tier rank is at least this (early access for top tiers);
- `lifecycle_stages`: the member's lifecycle stage is one of them (empty: any stage);
- `birthday_month`: it is the member's birthday month, in the member's timezone;
- `interests`: the member shares at least one interest with the offer (case-insensitive; empty: anyone);
- `per_member_limit`: the member has redeemed it fewer times than this;
- paid membership (`loyalty.memberships`, the benefits at `at`): `min_membership_rank` needs the member's plan's
  early-access rank at least this; an offer named in a plan's `included_offers` is for the members whose plan
  includes it (and no one else).

`min_spend` is not targeting: it is a condition on the purchase total when the offer is redeemed.

Most relevant first: offers the member activated, then higher `priority`, then ending soonest, then oldest (id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from loyalty import clock, events, memberships, sql
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import check_amount, check_idempotency_key, check_store_code, check_text
from loyalty.errors import DomainError, InvalidInput, MoneyText, NotFound
from loyalty.idempotency import idempotent
from loyalty.ledger import credit_available, lock_member
from loyalty.members import get_member
from loyalty.models import (
    EntryKind,
    LifecycleStage,
    Member,
    MembershipPlan,
    Offer,
    OfferActivation,
    OfferBenefit,
    OfferRedemption,
    Program,
    StaffRole,
    Tier,
)
from loyalty.program import cached_plans, cached_program, load_program
from loyalty.rows import AnyMember, AnyOffer, OfferRow


class OfferNotFound(NotFound):
    """No such offer, or (for the member) one that does not apply to them now: the two look the same."""

    code = "OFFER_NOT_FOUND"


class OfferNotApplicable(DomainError):
    """The offer exists but is not running now or does not target this member (checkout only)."""

    code = "OFFER_NOT_APPLICABLE"


class OfferLimitReached(DomainError):
    code = "OFFER_LIMIT_REACHED"


class NotActivated(DomainError):
    code = "NOT_ACTIVATED"


class MinSpendNotMet(DomainError):
    code = "MIN_SPEND_NOT_MET"

    def __init__(self, *, min_spend: int) -> None:
        super().__init__(f"this offer needs a purchase of at least {min_spend}", field="purchase_total")
        self.min_spend = min_spend  # minor units

    def describe(self, money: MoneyText) -> str:
        return f"this offer needs a purchase of at least {money(self.min_spend)}"


# --- lifecycle ------------------------------------------------------------------------------------


def lifecycle_stage(member: AnyMember, program: Program, at: datetime) -> LifecycleStage:
    """The member's lifecycle stage at `at`.

    NEW for `new_member_days` after enrollment; after that LAPSED once `lapsed_after_days` have passed since the last
    purchase (or since enrollment, without one), LAPSING once `lapsing_after_days` have, else ACTIVE.
    """
    if at - member.created_at < timedelta(days=program.new_member_days):
        return LifecycleStage.NEW
    idle = at - (member.last_purchase_at or member.created_at)
    if idle >= timedelta(days=program.lapsed_after_days):
        return LifecycleStage.LAPSED
    if idle >= timedelta(days=program.lapsing_after_days):
        return LifecycleStage.LAPSING
    return LifecycleStage.ACTIVE


# --- eligibility and ranking ----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberOffer:
    """An offer as it stands for one member: whether they activated it and how many uses they have left."""

    offer: AnyOffer  # a row when read for the app or the till (`OfferRow`), a model after activation
    activated: bool
    remaining_uses: int


def relevance_key(item: MemberOffer) -> tuple[int, int, datetime, int]:
    """Sort key, most relevant first: activated, then priority (high first), ending soonest, then id."""
    return (0 if item.activated else 1, -item.offer.priority, item.offer.valid_until, item.offer.id)


def _member_tier(program: Program, member: AnyMember) -> Tier | None:
    return next((t for t in program.tiers if t.id == member.tier_id), None)


def _in_birthday_month(member: AnyMember, at: datetime) -> bool:
    return member.birthday is not None and at.astimezone(ZoneInfo(member.timezone)).month == member.birthday.month


def interest_key(interest: str) -> str:
    """How interests compare: stripped and lowercased (an offer's "Coffee " is a member's "coffee")."""
    return interest.strip().lower()


def _targets(offer: AnyOffer, member: AnyMember, tier: Tier | None, stage: LifecycleStage, at: datetime) -> bool:
    if offer.tier_names and (tier is None or tier.name not in offer.tier_names):
        return False
    if offer.min_tier_rank is not None and (tier is None or tier.rank < offer.min_tier_rank):
        return False
    if offer.lifecycle_stages and stage.value not in offer.lifecycle_stages:
        return False
    if offer.birthday_month and not _in_birthday_month(member, at):
        return False
    if offer.interests:
        wanted = {interest_key(i) for i in offer.interests}
        if not wanted & {interest_key(i) for i in member.interests}:
            return False
    return True


@dataclass(frozen=True)
class _Membership:
    """The paid membership side of targeting: every plan (which offers are included by some), the member's benefits."""

    plans: Sequence[MembershipPlan]
    benefits: memberships.Benefits | None


async def _membership(member: AnyMember, at: datetime, conn: BaseDBAsyncClient | None = None) -> _Membership:
    return _Membership(await cached_plans(), await memberships.benefits_of_member(member, at, conn))


def _refusal(
    offer: AnyOffer, member: AnyMember, program: Program, at: datetime, used: int, membership: _Membership
) -> DomainError | None:
    """Why `offer` does not apply to `member` at `at` (having used it `used` times), or None if it does."""
    if not offer.active or not offer.valid_from <= at < offer.valid_until:
        return OfferNotApplicable("this offer is not running now", field="offer_id")
    if not _targets(offer, member, _member_tier(program, member), lifecycle_stage(member, program, at), at):
        return OfferNotApplicable("this offer is not for this member", field="offer_id")
    if not memberships.offer_is_for(offer.name, offer.min_membership_rank, membership.plans, membership.benefits):
        return OfferNotApplicable("this offer is for paid members", field="offer_id")
    if used >= offer.per_member_limit:
        return OfferLimitReached("the member has used this offer as often as it allows", field="offer_id")
    return None


async def _usage(
    conn: BaseDBAsyncClient | None, member_ids: Sequence[int], offer_ids: Sequence[int]
) -> tuple[dict[tuple[int, int], int], set[tuple[int, int]]]:
    """Redemption counts and activations per (member id, offer id): two queries whatever the numbers."""
    rows = (
        await OfferRedemption.filter(member_id__in=member_ids, offer_id__in=offer_ids)
        .using_db(conn)
        .annotate(uses=Count("id"))
        .group_by("member_id", "offer_id")
        .values_list("member_id", "offer_id", "uses")
    )
    activated = (
        await OfferActivation.filter(member_id__in=member_ids, offer_id__in=offer_ids)
        .using_db(conn)
        .values_list("member_id", "offer_id")
    )
    return {(m, o): int(n) for m, o, n in rows}, {(m, o) for m, o in activated}


# The offers running at `at` with one member's redemptions and activation of each: one statement per member.
_MEMBER_OFFERS = sql.rows(
    "offers.for_member",
    Offer,
    OfferRow,
    f"SELECT {sql.columns(OfferRow, 'o', until='uses')},"  # noqa: S608 - column names from the row type
    ' (SELECT COUNT(*) FROM "offer_redemption" AS "r" WHERE "r"."offer_id" = "o"."id" AND "r"."member_id" = ?)'
    ' AS "uses",'
    ' EXISTS (SELECT 1 FROM "offer_activation" AS "a" WHERE "a"."offer_id" = "o"."id" AND "a"."member_id" = ?)'
    ' AS "activated"'
    ' FROM "offer" AS "o" WHERE "o"."active" = ? AND "o"."valid_from" <= ? AND "o"."valid_until" > ?'
    ' ORDER BY "o"."id"',
)


async def offers_for_members(
    members: Sequence[AnyMember],
    program: Program,
    at: datetime,
    *,
    benefits: Mapping[int, memberships.Benefits | None] | None = None,
) -> dict[int, list[MemberOffer]]:
    """The offers that apply to each member at `at`, most relevant first: one statement per member (rows).

    The members' paid membership benefits come from `benefits` (by member id) when the caller read them, else from
    the member rows (`MemberRow.membership_plan_id`; a `Member` model costs a statement)."""
    result: dict[int, list[MemberOffer]] = {}
    for member in members:
        running = await sql.fetch_rows(_MEMBER_OFFERS, [member.id, member.id, True, at, at])
        if not running:
            membership = _Membership((), None)
        elif benefits is not None and member.id in benefits:
            membership = _Membership(await cached_plans(), benefits[member.id])
        else:
            membership = await _membership(member, at)
        items = [
            MemberOffer(o, o.activated, o.per_member_limit - o.uses)
            for o in running
            if _refusal(o, member, program, at, o.uses, membership) is None
        ]
        result[member.id] = sorted(items, key=relevance_key)
    return result


async def offers_for(member: Member, at: datetime) -> list[MemberOffer]:
    """The offers that apply to `member` at `at`, most relevant first (see the module docstring)."""
    return (await offers_for_members([member], await cached_program(), at))[member.id]


# --- activation by the member ---------------------------------------------------------------------


async def activate_offer(member_id: int, offer_id: int) -> MemberOffer:
    """The member activates ("clips") an offer that applies to them now; emits `offer.activated`.

    Idempotent: activating again returns the offer as activated, without a second activation or event. Any offer
    that does not apply to the member now (missing, not running, targeted at others, used up) is `OfferNotFound`, so
    the app learns nothing about other members' offers.
    """
    at = clock.now()
    member = await get_member(member_id)
    program = await cached_program()
    offer = await Offer.get_or_none(id=offer_id)
    if offer is None:
        raise OfferNotFound("no such offer", field="offer_id")
    uses, activated = await _usage(None, [member.id], [offer.id])
    used = uses.get((member.id, offer.id), 0)
    if _refusal(offer, member, program, at, used, await _membership(member, at)) is not None:
        raise OfferNotFound("no such offer", field="offer_id")
    if (member.id, offer.id) not in activated:
        try:
            async with in_transaction() as conn:
                await OfferActivation.create(offer_id=offer.id, member_id=member.id, activated_at=at, using_db=conn)
                await events.emit(conn, events.OFFER_ACTIVATED, member_id=member.id, payload={"offer_id": offer.id})
        except IntegrityError:
            pass  # a concurrent request of the same member activated it (and emitted the event) first
    return MemberOffer(offer, True, offer.per_member_limit - used)


# --- redemption at the checkout -------------------------------------------------------------------


@dataclass(frozen=True)
class OfferRedemptionResult:
    """What the till applies: points credited (bonus points), a discount in minor units, or a free item."""

    redemption_id: int
    offer_id: int
    member_id: int
    store_code: str
    benefit: OfferBenefit
    points_credited: int
    # Minor units off the purchase: amount off (at most the purchase total) or percent of the purchase total
    # (floored); None when the purchase total is not known or the benefit is not a discount.
    discount: int | None
    percent_off: int | None
    free_item_sku: str | None
    points_balance: int
    activated: bool
    remaining_uses: int
    redeemed_at: datetime


def _discount(offer: Offer, purchase_total: int | None) -> int | None:
    if offer.benefit == OfferBenefit.AMOUNT_OFF:
        return offer.value if purchase_total is None else min(offer.value, purchase_total)
    if offer.benefit == OfferBenefit.PERCENT_OFF and purchase_total is not None:
        return purchase_total * offer.value // 100
    return None


async def redeem_offer(
    actor: Actor,
    *,
    member_id: int,
    offer_id: int,
    store_code: str,
    purchase_total: int | None,
    idempotency_key: str,
) -> OfferRedemptionResult:
    """Redeem an offer for a member at the checkout; idempotent per member and key, audited, emits `offer.redeemed`.

    The offer must apply to the member now (`OfferNotFound`, `OfferNotApplicable`, `OfferLimitReached`), be activated
    if it requires activation (`NotActivated`) and the purchase total must reach its `min_spend` (`MinSpendNotMet`).
    The per-member limit is counted with the member row locked, so concurrent redemptions cannot exceed it. Bonus
    points are credited in the same transaction; other benefits are returned for the till to apply.
    """
    actor.require(StaffRole.CASHIER, store_code)
    check_store_code(store_code)
    if purchase_total is not None:
        check_amount(purchase_total, "purchase_total", allow_zero=True)
    check_idempotency_key(idempotency_key)

    async def action(conn: BaseDBAsyncClient) -> OfferRedemptionResult:
        at = clock.now()
        member = await lock_member(conn, member_id)
        offer = await Offer.get_or_none(id=offer_id, using_db=conn)
        if offer is None:
            raise OfferNotFound("no such offer", field="offer_id")
        program = await load_program(conn)
        uses, activated = await _usage(conn, [member.id], [offer.id])
        used = uses.get((member.id, offer.id), 0)
        refusal = _refusal(offer, member, program, at, used, await _membership(member, at, conn))
        if refusal is not None:
            raise refusal
        is_activated = (member.id, offer.id) in activated
        if offer.requires_activation and not is_activated:
            raise NotActivated("the member has not activated this offer in the app", field="offer_id")
        if offer.min_spend is not None and (purchase_total is None or purchase_total < offer.min_spend):
            raise MinSpendNotMet(min_spend=offer.min_spend)
        balance_before = member.points_available
        redemption = await OfferRedemption.create(
            offer_id=offer.id, member_id=member.id, store_code=store_code, redeemed_at=at, using_db=conn
        )
        credited = 0
        if offer.benefit == OfferBenefit.BONUS_POINTS:
            await credit_available(
                conn, member, program, offer.value, kind=EntryKind.ADJUSTMENT, description=f"Offer: {offer.name}"
            )
            credited = offer.value
        result = OfferRedemptionResult(
            redemption_id=redemption.id,
            offer_id=offer.id,
            member_id=member.id,
            store_code=store_code,
            benefit=offer.benefit,
            points_credited=credited,
            discount=_discount(offer, purchase_total),
            percent_off=offer.value if offer.benefit == OfferBenefit.PERCENT_OFF else None,
            free_item_sku=offer.sku if offer.benefit == OfferBenefit.FREE_ITEM else None,
            points_balance=member.points_available,
            activated=is_activated,
            remaining_uses=offer.per_member_limit - used - 1,
            redeemed_at=at,
        )
        await record_audit(
            actor,
            "offer.redeem",
            conn=conn,
            store_code=store_code,
            member_id=member.id,
            target=f"offer:{offer.id}",
            before={"uses": used, "points_available": balance_before},
            after={"uses": used + 1, "points_available": member.points_available, "redemption_id": redemption.id},
        )
        await events.emit(
            conn,
            events.OFFER_REDEEMED,
            member_id=member.id,
            payload={
                "offer_id": offer.id,
                "redemption_id": redemption.id,
                "store_code": store_code,
                "benefit": offer.benefit.value,
                "points": credited,
            },
        )
        return result

    request = {"member": member_id, "offer": offer_id, "store": store_code, "purchase_total": purchase_total}
    return await idempotent("offer_redeem", f"{member_id}:{idempotency_key}", request, OfferRedemptionResult, action)


# --- configuration --------------------------------------------------------------------------------

_OFFER_FIELDS = (
    "description",
    "value",
    "sku",
    "per_member_limit",
    "requires_activation",
    "tier_names",
    "min_tier_rank",
    "min_membership_rank",
    "birthday_month",
    "interests",
    "min_spend",
    "priority",
)


async def apply_offer_config(specs: list[dict[str, Any]]) -> int:
    """Create or update offers by name from parsed TOML (`[[offers]]`), valid for `valid_days` from now.

    Returns the number of offers written.
    """
    now = clock.now()
    for spec in specs:
        name = check_text(spec.get("name"), "name", 100, label="offer config: a name")
        try:
            benefit = OfferBenefit(spec.get("benefit", ""))
            stages = [LifecycleStage(s).value for s in spec.get("lifecycle_stages", [])]
        except ValueError as exc:
            raise InvalidInput(f"offer config {name!r}: {exc}", field="offers") from exc
        if benefit == OfferBenefit.BONUS_POINTS and not (isinstance(spec.get("value"), int) and spec["value"] > 0):
            raise InvalidInput(f"offer config {name!r}: bonus points need a positive value", field="value")
        values = {key: spec[key] for key in _OFFER_FIELDS if key in spec}
        await Offer.update_or_create(
            name=name,
            defaults={
                **values,
                "benefit": benefit,
                "lifecycle_stages": stages,
                "valid_from": now,
                "valid_until": now + timedelta(days=int(spec.get("valid_days", 30))),
                "active": True,
            },
        )
    return len(specs)
