"""memberLookup: the checkout finds a member (card scan, member number, phone, email) and sees a summary.

`MemberSummary` is what the cashier sees in one glance: the checkout read model (`loyalty.checkout`: who, points,
tier progress, and usable offers, vouchers and stamp cards), as the console shows it too. Each part loads when asked,
through the request's DataLoaders over the read model's functions, so the lookup's SQL statement count stays constant
and a lookup that asks for points only reads the member.
"""

from __future__ import annotations

from typing import Self

import strawberry

from loyalty.errors import MemberNotFound
from loyalty.lookup import find_member
from loyalty.members import settled
from loyalty.models import StaffRole
from loyalty.rows import AnyMember
from schema.global_ids import MEMBER
from schema.staff.context import StaffInfo
from schema.staff.vouchers import UsableVoucher
from schema.types.cashback import Money
from schema.types.member import Points, TierProgress
from schema.types.membership import Membership
from schema.types.offer import Offer
from schema.types.pagination import page_size
from schema.types.stamp_card import StampCardProgress
from schema.types.wallet import CardInWallet


def member_id_of(global_id: str) -> int:
    """The member id in a mutation's `member` input; `MemberNotFound` (a userError) when it is not a member's id."""
    member_id = MEMBER.decode(global_id)
    if member_id is None:
        raise MemberNotFound("no such member", field="member_id")
    return member_id


@strawberry.type
class MemberSummaryCore:
    """Who the member is, their points and their tier progress."""

    id: strawberry.ID = strawberry.field(description="The member's global id: pass it as `member` to mutations.")
    member_number: str
    name: str
    model: strawberry.Private[AnyMember]

    @classmethod
    def from_model(cls, member: AnyMember) -> Self:
        return cls(
            # The same global id as the member app's `me.id`.
            id=strawberry.ID(MEMBER.encode(member.id)),
            member_number=member.member_number,
            name=member.display_name,
            model=member,
        )

    @strawberry.field
    def points(self) -> Points:
        return Points.of(self.model)

    @strawberry.field(description="Cashback the member can spend (`cashbackSpend`), in the program's currency.")
    async def cashback_balance(self, info: StaffInfo) -> Money:
        return Money(amount=self.model.cashback_balance, currency=(await info.context.program()).currency)

    @strawberry.field(description="The current tier and how far the member is from the next one.")
    async def tier(self, info: StaffInfo) -> TierProgress:
        return await TierProgress.of(self.model, info.context)

    @strawberry.field(description="Whether the member has the card in Apple Wallet or Google Wallet.")
    async def card_in_wallet(self, info: StaffInfo) -> CardInWallet:
        return CardInWallet.from_domain(await info.context.loaders.cards_in_wallet.load(self.model.id))


@strawberry.type
class MemberSummaryBenefits:
    """What the member can use at the till now: offers, vouchers, stamp-card progress (loaded per request)."""

    model: strawberry.Private[AnyMember]

    @strawberry.field(description="Offers that apply to the member now, most relevant first.")
    async def active_offers(self, info: StaffInfo, first: int = 20) -> list[Offer]:
        items = await info.context.loaders.offers.load(self.model)
        return [Offer.from_member_offer(item) for item in items[: page_size(first)]]

    @strawberry.field(description="Usable vouchers, soonest expiry first, with what each is for.")
    async def active_vouchers(self, info: StaffInfo, first: int = 20) -> list[UsableVoucher]:
        items = await info.context.loaders.usable_vouchers.load((self.model.id, page_size(first)))
        return [UsableVoucher.from_domain(item, info.context.now) for item in items]

    @strawberry.field(description="The paid membership (plan, status, benefits such as free delivery); null if none.")
    async def membership(self, info: StaffInfo) -> Membership | None:
        view = await info.context.loaders.membership.load(self.model.id)
        return Membership.from_view(view) if view is not None else None

    @strawberry.field(description="Progress on every active stamp card.")
    async def stamp_cards(self, info: StaffInfo) -> list[StampCardProgress]:
        return [StampCardProgress.from_domain(p) for p in await info.context.loaders.stamp_cards.load(self.model.id)]


@strawberry.type(name="MemberSummary", description="What the checkout shows about a member in one glance.")
class MemberSummary(MemberSummaryCore, MemberSummaryBenefits):
    pass


@strawberry.type
class MemberLookupQuery:
    @strawberry.field(
        description=(
            "Find a member by scanned card barcode (member number + rotating code; single-use, valid for its short "
            "window), member number, phone or email. Null when nothing matches, the match is ambiguous, or the card "
            "code is expired or already used."
        )
    )
    async def member_lookup(self, info: StaffInfo, query: str) -> MemberSummary | None:
        info.context.require(StaffRole.CASHIER)
        member = await find_member(query, await info.context.program(), info.context.now)
        if member is None:
            return None
        info.context.loaders.prime_member(member)  # its qualifying value: the tier progress reads no more
        return MemberSummary.from_model(await settled(member, info.context.now))
