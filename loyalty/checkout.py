"""The checkout summary: what the till shows about a member in one glance, for the staff API and the console.

Who the member is, their points and cashback (the member row's balances), their tier progress, the offers that
apply to them, their usable vouchers with what each is for, and their stamp cards: all as of one instant with one
program.
`checkout_summary` reads everything in a constant number of queries (the console always shows everything); the
staff API's `MemberSummary` reads the same parts field by field through its DataLoaders (`tier_progress` over
`qualifying_values`, `offers_for_members`, `usable_vouchers`, `stamp_cards_for_members`), so a lookup that asks for
points only pays for points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from tortoise.models import Model

from loyalty import sql
from loyalty.errors import PurchaseNotFound
from loyalty.memberships import MembershipView, memberships_of
from loyalty.models import (
    Member,
    Offer,
    OfferBenefit,
    Program,
    Purchase,
    PurchaseLine,
    Reward,
    RewardKind,
    StampCard,
    Voucher,
    VoucherStatus,
)
from loyalty.offers import MemberOffer, offers_for_members
from loyalty.rows import AnyVoucher, CheckoutVoucherRow
from loyalty.stamps import StampCardProgress, stamp_cards_for_members
from loyalty.tiers import TierProgress, qualifying_values, tier_progress

M = TypeVar("M", bound=Model)
MAX_VOUCHERS = 20  # what a till lists; a member with more sees them all in the app
RECENT_RECEIPTS = 10  # the receipts a till lists to start a return from
# An offer's voucher gives what a reward of this kind gives (bonus points are credited, never a voucher).
_OFFER_KINDS = {
    OfferBenefit.AMOUNT_OFF: RewardKind.AMOUNT_OFF,
    OfferBenefit.PERCENT_OFF: RewardKind.PERCENT_OFF,
    OfferBenefit.FREE_ITEM: RewardKind.FREE_PRODUCT,
}


@dataclass(frozen=True)
class CheckoutVoucher:
    """A voucher and what it is for, for the cashier to apply."""

    voucher: AnyVoucher  # a row (`CheckoutVoucherRow`) when listed for the till, a model once redeemed
    # Its reward (a stamp card's voucher carries the card's reward), else the offer or stamp card that gave it.
    name: str
    kind: RewardKind | None  # what it gives; None: a voucher with nothing to apply but its name
    value: int  # AMOUNT_OFF, CASHBACK, DONATION: minor units; PERCENT_OFF: percent; else 0
    sku: str | None  # the free product


@dataclass(frozen=True)
class Receipt:
    """A purchase as the till starts a return from it: what was bought and what is left to refund."""

    purchase: Purchase
    lines: list[PurchaseLine]  # in receipt order

    @property
    def left_to_refund(self) -> int:
        """Money not yet refunded, minor units."""
        return int(self.purchase.total - self.purchase.refunded_total)

    @property
    def points_kept(self) -> int:
        """The points the purchase earned and that no refund has taken back."""
        return int(self.purchase.points_earned - self.purchase.points_reversed)


@dataclass(frozen=True)
class CheckoutSummary:
    member: Member
    program: Program
    tier: TierProgress
    offers: list[MemberOffer]  # most relevant first
    vouchers: list[CheckoutVoucher]  # usable ones, soonest expiry first, at most MAX_VOUCHERS
    stamp_cards: list[StampCardProgress]
    receipts: list[Receipt]  # the most recent first, at most RECENT_RECEIPTS
    membership: MembershipView | None = None  # the paid membership (lapsed ones too), None without one


def _what_for(voucher: Voucher, reward: Reward | None, offer: Offer | None, card: StampCard | None) -> CheckoutVoucher:
    if reward is not None:
        return CheckoutVoucher(voucher, reward.name, reward.kind, reward.value, reward.sku)
    if offer is not None:
        kind = _OFFER_KINDS.get(offer.benefit)
        return CheckoutVoucher(voucher, offer.name, kind, offer.value if kind else 0, offer.sku)
    return CheckoutVoucher(voucher, card.name if card is not None else "Voucher", None, 0, None)


async def _by_id(model: type[M], ids: set[int]) -> dict[int, M]:
    return await model.in_bulk(ids, "id") if ids else {}


async def describe_vouchers(vouchers: Sequence[Voucher]) -> list[CheckoutVoucher]:
    """Each voucher with what it is for: one query per kind of source among them (one in practice, three at most)."""
    rewards = await _by_id(Reward, {v.reward_id for v in vouchers if v.reward_id is not None})
    rest = [v for v in vouchers if v.reward_id is None]
    offers = await _by_id(Offer, {v.offer_id for v in rest if v.offer_id is not None})
    cards = await _by_id(
        StampCard, {v.stamp_card_id for v in rest if v.offer_id is None and v.stamp_card_id is not None}
    )
    return [
        _what_for(
            v,
            rewards.get(v.reward_id) if v.reward_id is not None else None,
            offers.get(v.offer_id) if v.offer_id is not None else None,
            cards.get(v.stamp_card_id) if v.stamp_card_id is not None else None,
        )
        for v in vouchers
    ]


# The member's usable vouchers with what their source says they are for: one statement.
_USABLE_VOUCHERS = sql.rows(
    "checkout.usable_vouchers",
    Voucher,
    CheckoutVoucherRow,
    f"SELECT {sql.columns(CheckoutVoucherRow, 'v', until='reward_name')},"  # noqa: S608 - names from the row type
    ' "r"."name" AS "reward_name", "r"."kind" AS "reward_kind", "r"."value" AS "reward_value",'
    ' "r"."sku" AS "reward_sku", "o"."name" AS "offer_name", "o"."benefit" AS "offer_benefit",'
    ' "o"."value" AS "offer_value", "o"."sku" AS "offer_sku", "c"."name" AS "card_name"'
    ' FROM "voucher" AS "v"'
    ' LEFT JOIN "reward" AS "r" ON "r"."id" = "v"."reward_id"'
    ' LEFT JOIN "offer" AS "o" ON "o"."id" = "v"."offer_id"'
    ' LEFT JOIN "stamp_card" AS "c" ON "c"."id" = "v"."stamp_card_id"'
    ' WHERE "v"."member_id" = ? AND "v"."status" = ? AND "v"."expires_at" > ?'
    ' ORDER BY "v"."expires_at", "v"."id" LIMIT ?',
)


def _described(row: CheckoutVoucherRow) -> CheckoutVoucher:
    # As `describe_vouchers`: the reward, else (without one) the offer, else (without either) the stamp card.
    if row.reward_name is not None:
        return CheckoutVoucher(row, row.reward_name, row.reward_kind, row.reward_value or 0, row.reward_sku)
    if row.reward_id is None and row.offer_name is not None and row.offer_benefit is not None:
        kind = _OFFER_KINDS.get(row.offer_benefit)
        return CheckoutVoucher(row, row.offer_name, kind, (row.offer_value or 0) if kind else 0, row.offer_sku)
    own_card = row.reward_id is None and row.offer_id is None and row.card_name is not None
    return CheckoutVoucher(row, row.card_name if own_card and row.card_name else "Voucher", None, 0, None)


async def usable_vouchers(member_id: int, at: datetime, limit: int) -> list[CheckoutVoucher]:
    """The member's vouchers usable at `at`, soonest expiry first, with what each is for (one statement, rows)."""
    rows = await sql.fetch_rows(_USABLE_VOUCHERS, [member_id, VoucherStatus.ACTIVE.value, at, limit])
    return [_described(row) for row in rows]


async def _with_lines(purchases: list[Purchase]) -> list[Receipt]:
    lines: dict[int, list[PurchaseLine]] = {p.id: [] for p in purchases}
    if purchases:
        for line in await PurchaseLine.filter(purchase_id__in=list(lines)).order_by("purchase_id", "line_no"):
            lines[line.purchase_id].append(line)
    return [Receipt(p, lines[p.id]) for p in purchases]


async def recent_receipts(member_id: int, limit: int = RECENT_RECEIPTS) -> list[Receipt]:
    """The member's latest receipts with their lines, the most recent first (two queries)."""
    return await _with_lines(await Purchase.filter(member_id=member_id).order_by("-occurred_at", "-id").limit(limit))


async def member_receipt(member_id: int, purchase_id: int) -> Receipt:
    """One receipt of the member, to return from; another member's receipt is `PurchaseNotFound` like a missing one."""
    purchase = await Purchase.get_or_none(id=purchase_id, member_id=member_id)
    if purchase is None:
        raise PurchaseNotFound("this member has no such receipt", field="receipt_id")
    return (await _with_lines([purchase]))[0]


async def checkout_summary(member: Member, program: Program, at: datetime) -> CheckoutSummary:
    """Everything the till shows about `member` at `at`, in seven statements however much there is to show.

    `member` is as the caller settled it (`ledger.settle_member_if_due`), so its balances are current at `at`. The
    paid membership is read once, and its benefits decide the offers.
    """
    qualifying = await qualifying_values([member.id], program, at)
    membership = (await memberships_of([member.id], at)).get(member.id)
    benefits = {member.id: membership.benefits if membership is not None else None}
    offers = await offers_for_members([member], program, at, benefits=benefits)
    return CheckoutSummary(
        member=member,
        program=program,
        tier=tier_progress(member, program, qualifying[member.id], at),
        offers=offers[member.id],
        vouchers=await usable_vouchers(member.id, at, MAX_VOUCHERS),
        stamp_cards=(await stamp_cards_for_members([member.id]))[member.id],
        receipts=await recent_receipts(member.id),
        membership=membership,
    )
