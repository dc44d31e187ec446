"""Personalized offers as the member app (and the till) sees them, and the `me.offers` connection."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import models
from loyalty.keys import INT64, KeyRange
from loyalty.offers import MemberOffer, relevance_key
from schema.context import Info
from schema.global_ids import OFFER
from schema.types.enum_map import EnumMap
from schema.types.node import VisibleNode
from schema.types.pagination import decode_cursor_key, encode_cursor, forward_page_info


@strawberry.enum(
    name="OfferBenefit", description="What the offer gives: bonus points, an amount or percent off, or a free item."
)
class OfferBenefit(Enum):
    BONUS_POINTS = "bonus_points"
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"
    FREE_ITEM = "free_item"


OFFER_BENEFITS = EnumMap(
    models.OfferBenefit,
    OfferBenefit,
    {
        models.OfferBenefit.BONUS_POINTS: OfferBenefit.BONUS_POINTS,
        models.OfferBenefit.AMOUNT_OFF: OfferBenefit.AMOUNT_OFF,
        models.OfferBenefit.PERCENT_OFF: OfferBenefit.PERCENT_OFF,
        models.OfferBenefit.FREE_ITEM: OfferBenefit.FREE_ITEM,
    },
)


@strawberry.enum(
    name="LifecycleStage",
    description="Where a member is in the program: new, active, lapsing (no recent purchase) or lapsed.",
)
class LifecycleStage(Enum):
    NEW = "new"
    ACTIVE = "active"
    LAPSING = "lapsing"
    LAPSED = "lapsed"


LIFECYCLE_STAGES = EnumMap(
    models.LifecycleStage,
    LifecycleStage,
    {
        models.LifecycleStage.NEW: LifecycleStage.NEW,
        models.LifecycleStage.ACTIVE: LifecycleStage.ACTIVE,
        models.LifecycleStage.LAPSING: LifecycleStage.LAPSING,
        models.LifecycleStage.LAPSED: LifecycleStage.LAPSED,
    },
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
CursorKey = tuple[int, int, int, int]  # see `relevance_key`: activated (0 or 1), priority, end, id
_ACTIVATED = KeyRange(0, 1)


@strawberry.type(name="Offer")
class Offer(VisibleNode):
    id: relay.NodeID[int]
    name: str
    description: str
    benefit: OfferBenefit
    value: int = strawberry.field(
        description="Points for BONUS_POINTS, minor units for AMOUNT_OFF, percent for PERCENT_OFF, 0 for FREE_ITEM."
    )
    free_item_sku: str | None = strawberry.field(description="The product given for FREE_ITEM.")
    valid_from: datetime
    valid_until: datetime = strawberry.field(description="The offer ends at this instant.")
    requires_activation: bool = strawberry.field(description="The member must activate it in the app before use.")
    activated: bool
    remaining_uses: int
    min_spend: int | None = strawberry.field(description="Minimum purchase total (minor units) to redeem it.")

    @classmethod
    def from_member_offer(cls, item: MemberOffer) -> Offer:
        offer = item.offer
        return cls(
            id=offer.id,
            name=offer.name,
            description=offer.description,
            benefit=OFFER_BENEFITS.to_api(offer.benefit),
            value=offer.value,
            free_item_sku=offer.sku if offer.benefit == models.OfferBenefit.FREE_ITEM else None,
            valid_from=offer.valid_from,
            valid_until=offer.valid_until,
            requires_activation=offer.requires_activation,
            activated=item.activated,
            remaining_uses=item.remaining_uses,
            min_spend=offer.min_spend,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[Offer | None]:
        # Only offers that apply to the signed-in member now: any other id looks exactly like a missing one.
        member = await info.context.loaders.member.load(info.context.require_member())
        applying = await info.context.loaders.offers.load(member) if member else []
        return OFFER.pick({i.offer.id: cls.from_member_offer(i) for i in applying}, node_ids)


def _cursor_key(item: MemberOffer) -> CursorKey:
    activated, priority, ends, offer_id = relevance_key(item)
    return activated, priority, (ends - _EPOCH) // _MICROSECOND, offer_id


def decode_offer_cursor(cursor: str | None) -> CursorKey | None:
    """The ranking key inside an opaque offers cursor: the next page starts after it, even if that offer is gone."""
    key = decode_cursor_key("offer", cursor, _ACTIVATED, INT64, INT64, OFFER.key_range)
    return None if key is None else (key[0], key[1], key[2], key[3])


@strawberry.type(name="OfferConnection")
class OfferConnection(relay.Connection[Offer]):
    @classmethod
    def from_ranked(cls, items: list[MemberOffer], size: int, after: CursorKey | None) -> OfferConnection:
        """One page of `items` (already most relevant first) after the cursor key `after`."""
        keyed = [(_cursor_key(item), item) for item in items]
        if after is not None:
            keyed = [(key, item) for key, item in keyed if key > after]
        edges = [relay.Edge(node=Offer.from_member_offer(item), cursor=encode_cursor("offer", *k)) for k, item in keyed]
        page = edges[:size]
        return cls(
            edges=page,
            page_info=forward_page_info(page, has_next_page=len(edges) > size),
        )
