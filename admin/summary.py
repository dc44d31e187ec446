"""The member summary the cashier sees in one glance, read through the same loyalty functions as `memberLookup`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from loyalty import clock
from loyalty.ledger import settle_member_if_due
from loyalty.members import get_member
from loyalty.models import Member, Offer, Program, Reward, StampCard, VoucherStatus
from loyalty.offers import MemberOffer, offers_for
from loyalty.program import cached_program
from loyalty.stamps import StampCardProgress, stamp_cards_for
from loyalty.tiers import TierProgress, qualifying_value, tier_progress
from loyalty.vouchers import display_code, member_vouchers

MAX_VOUCHERS = 20  # a till shows the usable vouchers; a member with more is an edge case the app lists in full


@dataclass(frozen=True)
class VoucherLine:
    code: str  # grouped for reading (`display_code`)
    name: str
    expires_at: datetime


@dataclass(frozen=True)
class MemberSummary:
    member: Member
    program: Program
    tier: TierProgress
    offers: list[MemberOffer]
    vouchers: list[VoucherLine]
    stamp_cards: list[StampCardProgress]


async def _voucher_lines(member_id: int, at: datetime) -> list[VoucherLine]:
    vouchers = await member_vouchers(member_id, at=at, limit=MAX_VOUCHERS, status=VoucherStatus.ACTIVE)
    # What each voucher is for: its reward, else the offer or stamp card that issued it (three queries at most).
    rewards = await Reward.in_bulk({v.reward_id for v in vouchers if v.reward_id is not None}, "id")
    offers = await Offer.in_bulk({v.offer_id for v in vouchers if v.offer_id is not None}, "id")
    cards = await StampCard.in_bulk({v.stamp_card_id for v in vouchers if v.stamp_card_id is not None}, "id")
    lines = []
    for v in vouchers:
        source = rewards.get(v.reward_id) or offers.get(v.offer_id) or cards.get(v.stamp_card_id)  # type: ignore[arg-type]
        lines.append(VoucherLine(display_code(v.code), source.name if source else "Voucher", v.expires_at))
    return lines


async def member_summary(member_id: int) -> MemberSummary:
    """Who the member is, their tier progress and points, and what they can use now. Raises `MemberNotFound`."""
    at = clock.now()
    member = await settle_member_if_due(await get_member(member_id), at)
    program = await cached_program()
    value = await qualifying_value(member.id, program, at)
    return MemberSummary(
        member=member,
        program=program,
        tier=tier_progress(member, program, value, at),
        offers=await offers_for(member, at),
        vouchers=await _voucher_lines(member.id, at),
        stamp_cards=await stamp_cards_for(member.id),
    )
