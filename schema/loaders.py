"""Per-request DataLoaders: every field that loads related data goes through one of these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from strawberry.dataloader import DataLoader

from loyalty import cashback, checkout, consent, inbox, memberships, offers, rewards, stamps, vouchers, wallet
from loyalty.activity import activity_page, points_expiring_soon
from loyalty.members import member_rows
from loyalty.models import Program, VoucherStatus
from loyalty.rows import AnyMember, CashbackEntryRow, EntryRow, MemberRow, VoucherPageRow
from loyalty.tiers import qualifying_values

ActivityKey = tuple[int, int, int | None]  # (member id, page size + 1, entries before this id)
InboxKey = tuple[int, int, int | None]  # (member id, page size + 1, messages after this one)
# (member id, page size + 1, after this position, status filter)
VoucherPageKey = tuple[int, int, vouchers.VoucherKey | None, VoucherStatus | None]


async def _activity(keys: Sequence[ActivityKey]) -> list[list[EntryRow]]:
    # One query per distinct page; in practice one page (the signed-in member's) per request.
    return [await activity_page(member_id, limit, before) for member_id, limit, before in keys]


async def _cashback_activity(keys: Sequence[ActivityKey]) -> list[list[CashbackEntryRow]]:
    # As for activity: one page per distinct key, in practice one per request.
    return [await cashback.activity_page(member_id, limit, before) for member_id, limit, before in keys]


async def _consents(member_ids: Sequence[int]) -> list[list[consent.ConsentState]]:
    return [await consent.consents_of(member_id) for member_id in member_ids]  # one member per request


async def _stamp_cards(member_ids: Sequence[int]) -> list[list[stamps.StampCardProgress]]:
    by_member = await stamps.stamp_cards_for_members(member_ids)
    return [by_member[i] for i in member_ids]


async def _cards_in_wallet(member_ids: Sequence[int]) -> list[wallet.CardInWallet]:
    found = await wallet.cards_in_wallet(member_ids)
    return [found[member_id] for member_id in member_ids]


class Loaders:
    """Created fresh for each request by its context, with the request's instant `now` and program snapshot
    `program`: every loader reads as of that one instant, so none is keyed on the clock.

    The hot reads come back as rows (`loyalty.rows`), not models. A member's row carries its qualifying value (one
    statement for the member and their tier progress), which primes `qualifying_value`: `prime_member` does the
    same for a member read elsewhere (the checkout's lookup).
    """

    def __init__(self, now: datetime, program: Callable[[], Awaitable[Program]]) -> None:
        self._now = now
        self._program = program
        self.member = DataLoader(self._members)
        self.activity = DataLoader(_activity)
        self.cashback_activity = DataLoader(_cashback_activity)
        self.inbox = DataLoader(self._inbox)
        self.inbox_unread = DataLoader(self._inbox_unread)  # per member id: unread messages in the inbox
        self.consents = DataLoader(_consents)
        self.vouchers = DataLoader(self._vouchers)
        self.usable_vouchers = DataLoader(self._usable_vouchers)  # (member id, limit): what the checkout lists
        self.stamp_cards = DataLoader(_stamp_cards)
        self.cards_in_wallet = DataLoader(_cards_in_wallet)
        self.membership = DataLoader(self._memberships)  # per member id: the paid membership (None without one)
        self.offers: DataLoader[AnyMember, list[offers.MemberOffer]] = DataLoader(
            self._offers, cache_key_fn=lambda member: member.id
        )
        # Per member id: the qualifying value in the tier period containing `now`.
        self.qualifying_value = DataLoader(self._qualifying_values)
        # Per member id: (expiry time, points) of available points expiring within the program's warning window
        # from `now`, soonest first.
        self.expiring_points = DataLoader(self._expiring_points)
        self._reward_items: dict[int, DataLoader[int, rewards.CatalogItem | None]] = {}

    async def _members(self, ids: Sequence[int]) -> list[MemberRow | None]:
        found = await member_rows(ids, await self._program(), self._now)
        for row in found.values():
            self.qualifying_value.prime(row.id, row.qualifying_value)
        return [found.get(i) for i in ids]

    def prime_member(self, member: MemberRow) -> None:
        """Remember `member` (read as of this request's instant) and its qualifying value."""
        self.member.prime(member.id, member)
        self.qualifying_value.prime(member.id, member.qualifying_value)

    async def _vouchers(self, keys: Sequence[VoucherPageKey]) -> list[list[tuple[vouchers.VoucherKey, VoucherPageRow]]]:
        # As for activity: one page per distinct key, in practice one per request.
        return [
            await vouchers.voucher_page(member_id, at=self._now, limit=limit, after=after, status=status)
            for member_id, limit, after, status in keys
        ]

    async def _inbox(self, keys: Sequence[InboxKey]) -> list[list[inbox.InboxRow]]:
        # As for activity: one statement per distinct page, in practice one per request.
        return [await inbox.inbox_page(member_id, self._now, limit, after) for member_id, limit, after in keys]

    async def _inbox_unread(self, member_ids: Sequence[int]) -> list[int]:
        return [await inbox.unread_count(member_id, self._now) for member_id in member_ids]

    async def _usable_vouchers(self, keys: Sequence[tuple[int, int]]) -> list[list[checkout.CheckoutVoucher]]:
        return [await checkout.usable_vouchers(member_id, self._now, limit) for member_id, limit in keys]

    async def _offers(self, members: Sequence[AnyMember]) -> list[list[offers.MemberOffer]]:
        # The offers that apply now to each member, most relevant first: one statement per member (one a request).
        by_member = await offers.offers_for_members(members, await self._program(), self._now)
        return [by_member[m.id] for m in members]

    async def _memberships(self, member_ids: Sequence[int]) -> list[memberships.MembershipView | None]:
        found = await memberships.memberships_of(member_ids, self._now)
        return [found.get(i) for i in member_ids]

    async def _qualifying_values(self, member_ids: Sequence[int]) -> list[int]:
        totals = await qualifying_values(member_ids, await self._program(), self._now)
        return [totals[i] for i in member_ids]

    async def _expiring_points(self, member_ids: Sequence[int]) -> list[list[tuple[datetime, int]]]:
        until = self._now + timedelta(days=(await self._program()).expiring_soon_days)
        by_member = await points_expiring_soon(member_ids, until)
        return [by_member[i] for i in member_ids]

    def reward_items(self, member: AnyMember) -> DataLoader[int, rewards.CatalogItem | None]:
        """Rewards by id with `member`'s availability (a voucher's reward, a refetched reward)."""
        if member.id not in self._reward_items:

            async def load(reward_ids: Sequence[int]) -> list[rewards.CatalogItem | None]:
                items = await rewards.catalog_items(member, await self._program(), self._now, list(reward_ids))
                return [items.get(i) for i in reward_ids]

            self._reward_items[member.id] = DataLoader(load)
        return self._reward_items[member.id]
