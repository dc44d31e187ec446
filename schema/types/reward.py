"""The reward catalog as the member sees it: every visible reward, with whether they can redeem it now."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import models, rewards
from loyalty.keys import KeyRange
from loyalty.program import tiers_of
from loyalty.rows import AnyMember, AnyReward
from schema.context import Info
from schema.errors import BadRequest
from schema.global_ids import REWARD
from schema.types.enum_map import EnumMap
from schema.types.node import VisibleNode
from schema.types.pagination import decode_cursor, encode_cursor, forward_page_info


@strawberry.enum(name="RewardKind", description="What the voucher gives: see `value`.")
class RewardKind(Enum):
    FREE_PRODUCT = "FREE_PRODUCT"
    AMOUNT_OFF = "AMOUNT_OFF"
    PERCENT_OFF = "PERCENT_OFF"
    CASHBACK = "CASHBACK"
    DONATION = "DONATION"
    EXPERIENCE = "EXPERIENCE"


REWARD_KINDS = EnumMap(
    models.RewardKind,
    RewardKind,
    {
        models.RewardKind.FREE_PRODUCT: RewardKind.FREE_PRODUCT,
        models.RewardKind.AMOUNT_OFF: RewardKind.AMOUNT_OFF,
        models.RewardKind.PERCENT_OFF: RewardKind.PERCENT_OFF,
        models.RewardKind.CASHBACK: RewardKind.CASHBACK,
        models.RewardKind.DONATION: RewardKind.DONATION,
        models.RewardKind.EXPERIENCE: RewardKind.EXPERIENCE,
    },
)

NOT_AVAILABLE = rewards.Unavailable.NOT_AVAILABLE


@strawberry.enum(
    name="RewardUnavailableReason",
    description="Why a listed reward cannot be redeemed now; the error `rewardRedeem` would return.",
)
class RewardUnavailableReason(Enum):
    NOT_AVAILABLE = "NOT_AVAILABLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    MEMBERSHIP_REQUIRED = "MEMBERSHIP_REQUIRED"
    LIMIT_REACHED = "LIMIT_REACHED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INSUFFICIENT_POINTS = "INSUFFICIENT_POINTS"


UNAVAILABLE_REASONS = EnumMap(
    rewards.Unavailable,
    RewardUnavailableReason,
    {
        rewards.Unavailable.NOT_AVAILABLE: RewardUnavailableReason.NOT_AVAILABLE,
        rewards.Unavailable.NOT_ELIGIBLE: RewardUnavailableReason.NOT_ELIGIBLE,
        rewards.Unavailable.MEMBERSHIP_REQUIRED: RewardUnavailableReason.MEMBERSHIP_REQUIRED,
        rewards.Unavailable.LIMIT_REACHED: RewardUnavailableReason.LIMIT_REACHED,
        rewards.Unavailable.OUT_OF_STOCK: RewardUnavailableReason.OUT_OF_STOCK,
        rewards.Unavailable.INSUFFICIENT_POINTS: RewardUnavailableReason.INSUFFICIENT_POINTS,
    },
)


@strawberry.type(name="Reward")
class Reward(VisibleNode):
    id: relay.NodeID[int]
    name: str
    description: str
    kind: RewardKind
    points_cost: int
    value: int = strawberry.field(
        description="AMOUNT_OFF, CASHBACK, DONATION: minor units of the program's currency; PERCENT_OFF: percent."
    )
    sku: str | None = strawberry.field(description="The free product, for FREE_PRODUCT.")
    cause: str | None = strawberry.field(description="Who receives a DONATION.")
    min_tier: str | None = strawberry.field(description="Name of the lowest tier that may redeem it.")
    stock_left: int | None = strawberry.field(description="Units left; null: unlimited.")
    per_member_limit: int | None
    valid_until: datetime | None
    voucher_valid_days: int
    available: bool = strawberry.field(description="The signed-in member can redeem it now.")
    unavailable_reason: RewardUnavailableReason | None

    @classmethod
    def from_item(cls, item: rewards.CatalogItem, tier_names: dict[int, str]) -> Reward:
        reward = item.reward
        return cls(
            id=reward.id,
            name=reward.name,
            description=reward.description,
            kind=REWARD_KINDS.to_api(reward.kind),
            points_cost=reward.points_cost,
            value=reward.value,
            sku=reward.sku,
            cause=reward.cause,
            min_tier=tier_names.get(reward.min_tier_id) if reward.min_tier_id is not None else None,
            stock_left=reward.stock,
            per_member_limit=reward.per_member_limit,
            valid_until=reward.valid_until,
            voucher_valid_days=reward.voucher_valid_days,
            available=item.unavailable is None,
            unavailable_reason=UNAVAILABLE_REASONS.to_api(item.unavailable) if item.unavailable else None,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[Reward | None]:
        # Only rewards the member can see in the catalog; others resolve like missing ones.
        member = await info.context.loaders.member.load(info.context.require_member())
        if member is None:
            return [None for _ in node_ids]
        items = await info.context.loaders.reward_items(member).load_many(REWARD.keys(node_ids))
        names = tier_names(await info.context.program())
        visible = {i.reward.id: cls.from_item(i, names) for i in items if i and i.unavailable != NOT_AVAILABLE}
        return REWARD.pick(visible, node_ids)


def tier_names(program: models.Program) -> dict[int, str]:
    return {t.id: t.name for t in tiers_of(program)}


_INT = 2**32  # every part of the catalog key is a 32-bit integer column
_OFFSET = 2**31  # sort order and cost may be negative in the column type
_POSITIONS = KeyRange(0, _INT**3 - 1)


def _position(reward: AnyReward) -> int:
    # The catalog keyset (sort order, points cost, id) packed, order-preserving, into the one integer our
    # cursors carry.
    sort_order, cost, reward_id = rewards.catalog_key(reward)
    return ((sort_order + _OFFSET) * _INT + cost + _OFFSET) * _INT + reward_id


def _decode_position(cursor: str | None) -> tuple[int, int, int] | None:
    position = decode_cursor("reward", cursor, _POSITIONS)
    if position is None:
        return None
    shifted, reward_id = divmod(position, _INT)
    sort_order, cost = divmod(shifted, _INT)
    if reward_id not in REWARD.key_range:  # a forged id part must not reach the (32-bit) column
        raise BadRequest("`after` is not a cursor from this list")
    return (sort_order - _OFFSET, cost - _OFFSET, reward_id)


@strawberry.type(name="RewardConnection")
class RewardConnection(relay.Connection[Reward]):
    @classmethod
    async def load(cls, info: Info, member: AnyMember, size: int, after: str | None) -> RewardConnection:
        """A page of the catalog as `member` sees it at the request's instant."""
        program = await info.context.program()
        position = _decode_position(after)
        items = await rewards.catalog(member, program, info.context.now, limit=size + 1, after=position)
        names = tier_names(program)
        edges = [
            relay.Edge(node=Reward.from_item(item, names), cursor=encode_cursor("reward", _position(item.reward)))
            for item in items[:size]
        ]
        return cls(
            edges=edges,
            page_info=forward_page_info(edges, has_next_page=len(items) > size),
        )


@strawberry.type(name="DonationTotal")
class DonationTotal:
    cause: str
    amount: int = strawberry.field(description="Total donated, minor units of the program's currency.")
    donations: int = strawberry.field(description="How many donation rewards were redeemed.")
