"""The signed-in member: card, points, tier progress and activity."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import strawberry
from strawberry import relay

from loyalty import card, referrals, tiers
from loyalty.offers import lifecycle_stage
from loyalty.rows import AnyMember
from loyalty.tiers import tier_progress
from schema.context import Info, RequestContext
from schema.global_ids import ACTIVITY_ENTRY, INBOX_MESSAGE, MEMBER
from schema.types.activity import ActivityConnection
from schema.types.cashback import Cashback
from schema.types.consent import Consent
from schema.types.inbox import InboxMessageConnection
from schema.types.membership import Membership
from schema.types.node import VisibleNode
from schema.types.offer import LIFECYCLE_STAGES, LifecycleStage, OfferConnection, decode_offer_cursor
from schema.types.pagination import decode_cursor, page_size
from schema.types.program import Tier
from schema.types.referral import MemberReferral
from schema.types.stamp_card import StampCardProgress
from schema.types.voucher import VoucherConnection, VoucherStatus
from schema.types.wallet import Wallet


@strawberry.type
class MemberCard:
    barcode_value: str = strawberry.field(description="What the till scans; changes with `code`.")
    barcode_format: str
    code: str = strawberry.field(description="One-time checkout code a cashier can type.")
    code_expires_at: datetime


@strawberry.type
class ExpiringPoints:
    amount: int
    expires_at: datetime


@strawberry.type
class Points:
    available: int
    pending: int = strawberry.field(description="Earned, spendable once the return window ends.")
    lifetime_earned: int
    member_id: strawberry.Private[int]

    @classmethod
    def of(cls, member: AnyMember) -> Points:
        """The member's cached balances (equal to the ledger sums)."""
        return cls(
            available=member.points_available,
            pending=member.points_pending,
            lifetime_earned=member.lifetime_earned,
            member_id=member.id,
        )

    @strawberry.field(description="Available points expiring within the program's warning window, soonest first.")
    async def expiring_soon(self, info: Info) -> list[ExpiringPoints]:
        expiring = await info.context.loaders.expiring_points.load(self.member_id)
        return [ExpiringPoints(amount=amount, expires_at=at) for at, amount in expiring]


@strawberry.type
class TierProgress:
    current: Tier
    next: Tier | None
    qualifying_value: int
    next_threshold: int | None
    remaining_to_next: int | None
    progress: float = strawberry.field(description="0 to 1 from the current tier's threshold to the next one's.")
    period_ends_at: datetime
    held_until: datetime | None = strawberry.field(description="The current tier is kept at least until then.")
    needed_to_keep: int = strawberry.field(description="Qualifying value still needed this period to keep the tier.")

    @classmethod
    async def of(cls, member: AnyMember, context: RequestContext) -> TierProgress:
        """The member's tier progress as of the request (the qualifying value goes through its DataLoader)."""
        value = await context.loaders.qualifying_value.load(member.id)
        return cls.from_domain(tier_progress(member, await context.program(), value, context.now))

    @classmethod
    def from_domain(cls, progress: tiers.TierProgress) -> TierProgress:
        return cls(
            current=Tier.from_model(progress.current),
            next=Tier.from_model(progress.next) if progress.next else None,
            qualifying_value=progress.qualifying_value,
            next_threshold=progress.next_threshold,
            remaining_to_next=progress.remaining_to_next,
            progress=progress.progress,
            period_ends_at=progress.period_ends_at,
            held_until=progress.held_until,
            needed_to_keep=progress.needed_to_keep,
        )


@strawberry.type(name="Member")
class Member(VisibleNode):
    id: relay.NodeID[int]
    member_number: str
    display_name: str
    email: str | None
    birthday: date | None
    interests: list[str]
    marketing_consent: bool
    marketing_consent_at: datetime | None
    timezone: str
    model: strawberry.Private[AnyMember]

    @classmethod
    def from_model(cls, member: AnyMember) -> Member:
        return cls(
            id=member.id,
            member_number=member.member_number,
            display_name=member.display_name,
            email=member.email,
            birthday=member.birthday,
            interests=list(member.interests),
            marketing_consent=member.marketing_consent,
            marketing_consent_at=member.marketing_consent_at,
            timezone=member.timezone,
            model=member,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[Member | None]:
        # A member can refetch only themselves; any other id resolves like a missing one.
        member_id = info.context.require_member()
        member = await info.context.loaders.member.load(member_id) if member_id in MEMBER.keys(node_ids) else None
        return MEMBER.pick({member_id: cls.from_model(member)} if member else {}, node_ids)

    @strawberry.field
    async def card(self, info: Info) -> MemberCard:
        program = await info.context.program()
        code = card.card_code(self.model, info.context.now, program.card_code_seconds)
        return MemberCard(
            barcode_value=code.barcode_value,
            barcode_format=card.BARCODE_FORMAT,
            code=code.code,
            code_expires_at=code.expires_at,
        )

    @strawberry.field
    def points(self) -> Points:
        return Points.of(self.model)

    @strawberry.field(description="Your referral code, the link to share and how your referrals went.")
    async def referral(self, info: Info) -> MemberReferral:
        summary = await referrals.referral_summary(self.model.id)
        return MemberReferral.from_domain(summary, info.context.public_url)

    @strawberry.field(description="Cashback: money to spend at a till, and what moved it.")
    def cashback(self) -> Cashback:
        return Cashback(member_id=self.model.id, amount=self.model.cashback_balance)

    @strawberry.field(description="Adding the member card to a wallet app.")
    def wallet(self) -> Wallet:
        return Wallet(member_id=self.model.id)

    @strawberry.field
    async def tier(self, info: Info) -> TierProgress:
        return await TierProgress.of(self.model, info.context)

    @strawberry.field(description="Points activity, newest first.")
    async def activity(self, info: Info, first: int = 20, after: str | None = None) -> ActivityConnection:
        size = page_size(first)
        before = decode_cursor("activity", after, ACTIVITY_ENTRY.key_range)
        entries = await info.context.loaders.activity.load((self.model.id, size + 1, before))
        return ActivityConnection.from_page(entries, size)

    @strawberry.field(
        description="Offers that apply to you now, most relevant first: ones you activated, then by priority, "
        "then ending soonest."
    )
    async def offers(self, info: Info, first: int = 20, after: str | None = None) -> OfferConnection:
        size = page_size(first)
        after_key = decode_offer_cursor(after)
        return OfferConnection.from_ranked(await info.context.loaders.offers.load(self.model), size, after_key)

    @strawberry.field(description="New, active, lapsing or lapsed: decides which offers you get.")
    async def lifecycle_stage(self, info: Info) -> LifecycleStage:
        stage = lifecycle_stage(self.model, await info.context.program(), info.context.now)
        return LIFECYCLE_STAGES.to_api(stage)

    @strawberry.field(
        description="Your vouchers: usable ones first, soonest expiry first; then used, cancelled and expired ones."
    )
    async def vouchers(
        self,
        info: Info,
        first: int = 20,
        after: str | None = None,
        status: VoucherStatus | None = None,
    ) -> VoucherConnection:
        return await VoucherConnection.load(info, self.model.id, first, after, status)

    @strawberry.field(description="Your paid membership; null if you never had one.")
    async def membership(self, info: Info) -> Membership | None:
        view = await info.context.loaders.membership.load(self.model.id)
        return Membership.from_view(view) if view is not None else None

    @strawberry.field(description="Your progress on every active stamp card.")
    async def stamp_cards(self, info: Info) -> list[StampCardProgress]:
        return [StampCardProgress.from_domain(p) for p in await info.context.loaders.stamp_cards.load(self.model.id)]

    @strawberry.field(description="Your consents per channel and purpose (not granted until you opt in).")
    async def consents(self, info: Info) -> list[Consent]:
        return [Consent.from_domain(state) for state in await info.context.loaders.consents.load(self.model.id)]

    @strawberry.field(description="Messages you were sent, newest first; each leaves the inbox when it expires.")
    async def inbox(self, info: Info, first: int = 20, after: str | None = None) -> InboxMessageConnection:
        size = page_size(first)
        after_id = decode_cursor("inbox", after, INBOX_MESSAGE.key_range)
        messages = await info.context.loaders.inbox.load((self.model.id, size + 1, after_id))
        return InboxMessageConnection.from_page(messages, size)

    @strawberry.field(description="How many messages in your inbox are unread.")
    async def inbox_unread_count(self, info: Info) -> int:
        return await info.context.loaders.inbox_unread.load(self.model.id)
