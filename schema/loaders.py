"""Per-request DataLoaders: every field that loads related data goes through one of these."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from strawberry.dataloader import DataLoader

from loyalty import clock, offers, rewards, stamps, vouchers
from loyalty.activity import activity_page, points_expiring_soon
from loyalty.members import members_by_id
from loyalty.models import (
    LedgerEntry,
    Member,
    Program,
    Voucher,
    VoucherStatus,
)
from loyalty.program import cached_program
from loyalty.tiers import period_end, period_start, qualifying_values

ActivityKey = tuple[int, int, int | None]  # (member id, page size + 1, entries before this id)
# (member id, page size + 1, after this position, status filter)
VoucherPageKey = tuple[int, int, vouchers.VoucherKey | None, VoucherStatus | None]


async def _members(ids: Sequence[int]) -> list[Member | None]:
    found = await members_by_id(ids)
    return [found.get(i) for i in ids]


async def _activity(keys: Sequence[ActivityKey]) -> list[list[LedgerEntry]]:
    # One query per distinct page; in practice one page (the signed-in member's) per request.
    return [await activity_page(member_id, limit, before) for member_id, limit, before in keys]


async def _vouchers(keys: Sequence[VoucherPageKey]) -> list[list[tuple[vouchers.VoucherKey, Voucher]]]:
    # As for activity: one page per distinct key, in practice one per request.
    return [
        await vouchers.voucher_page(member_id, limit=limit, after=after, status=status)
        for member_id, limit, after, status in keys
    ]


async def _offers(members: Sequence[Member]) -> list[list[offers.MemberOffer]]:
    # The offers that apply now to each member, most relevant first: a constant number of queries.
    by_member = await offers.offers_for_members(members, await cached_program(), clock.now())
    return [by_member[m.id] for m in members]


async def _stamp_cards(member_ids: Sequence[int]) -> list[list[stamps.StampCardProgress]]:
    by_member = await stamps.stamp_cards_for_members(member_ids)
    return [by_member[i] for i in member_ids]


class Loaders:
    """Created fresh for each request in `get_context`."""

    def __init__(self) -> None:
        self.member = DataLoader(_members)
        self.activity = DataLoader(_activity)
        self.vouchers = DataLoader(_vouchers)
        self.stamp_cards = DataLoader(_stamp_cards)
        self.offers = DataLoader(_offers, cache_key_fn=lambda member: member.id)
        self._reward_items: dict[int, DataLoader[int, rewards.CatalogItem | None]] = {}
        self._qualifying: dict[tuple[datetime, datetime], DataLoader[int, int]] = {}
        self._expiring: dict[datetime, DataLoader[int, list[tuple[datetime, int]]]] = {}

    def qualifying_value(self, program: Program) -> DataLoader[int, int]:
        """Qualifying value per member in the current tier period."""
        at = clock.now()
        window = (period_start(program, at), period_end(program, at))
        if window not in self._qualifying:

            async def load(member_ids: Sequence[int]) -> list[int]:
                totals = await qualifying_values(member_ids, program, at)
                return [totals[i] for i in member_ids]

            self._qualifying[window] = DataLoader(load)
        return self._qualifying[window]

    def expiring_points(self, days: int) -> DataLoader[int, list[tuple[datetime, int]]]:
        """Per member, (expiry time, points) of available points expiring within `days`, soonest first."""
        until = clock.now() + timedelta(days=days)
        if until not in self._expiring:

            async def load(member_ids: Sequence[int]) -> list[list[tuple[datetime, int]]]:
                by_member = await points_expiring_soon(member_ids, until)
                return [by_member[i] for i in member_ids]

            self._expiring[until] = DataLoader(load)
        return self._expiring[until]

    def reward_items(self, member: Member) -> DataLoader[int, rewards.CatalogItem | None]:
        """Rewards by id with `member`'s availability (a voucher's reward, a refetched reward)."""
        if member.id not in self._reward_items:

            async def load(reward_ids: Sequence[int]) -> list[rewards.CatalogItem | None]:
                items = await rewards.catalog_items(member, await cached_program(), list(reward_ids))
                return [items.get(i) for i in reward_ids]

            self._reward_items[member.id] = DataLoader(load)
        return self._reward_items[member.id]
