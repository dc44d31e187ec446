"""`memberUpdated`: the signed-in member's points, tier and vouchers changed (live updates for an open app).

The first message is the member's current state with no `changes` (so nothing that changed between the app's last
query and its subscription is missed); then one message per notice from the outbox worker, read fresh from the
database when it arrives (a duplicate notice repeats the same state; one statement unless a lot is due to settle).
The websocket's own context lives as long as the connection, so nothing here uses its DataLoaders or its `now`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum

import strawberry

from loyalty import clock
from loyalty.live import Change
from loyalty.members import member_rows, settled
from loyalty.program import cached_program
from loyalty.tiers import tier_progress
from schema.context import Info
from schema.errors import NotAuthenticated, PublicError
from schema.types.enum_map import EnumMap
from schema.types.member import TierProgress


@strawberry.enum(description="What a `memberUpdated` message says changed, for the app to refresh.")
class MemberChange(Enum):
    POINTS = "POINTS"
    TIER = "TIER"
    VOUCHERS = "VOUCHERS"
    OFFERS = "OFFERS"


MEMBER_CHANGES = EnumMap(
    Change,
    MemberChange,
    {
        Change.POINTS: MemberChange.POINTS,
        Change.TIER: MemberChange.TIER,
        Change.VOUCHERS: MemberChange.VOUCHERS,
        Change.OFFERS: MemberChange.OFFERS,
    },
)


@strawberry.type
class PointsBalance:
    available: int
    pending: int = strawberry.field(description="Earned, spendable once the return window ends.")
    lifetime_earned: int


@strawberry.type
class MemberUpdate:
    changes: list[MemberChange] = strawberry.field(
        description="What changed since the previous message (in this order: POINTS, TIER, VOUCHERS, OFFERS); "
        "empty in the first message, which is the state when you subscribed."
    )
    points: PointsBalance
    tier: TierProgress


class LiveUpdatesOff(PublicError):
    def __init__(self) -> None:
        super().__init__("live updates are not enabled on this server", "LIVE_UPDATES_OFF")


async def member_update(member_id: int, changes: frozenset[Change]) -> MemberUpdate | None:
    """The member's state now, with `changes`; None once the member no longer exists."""
    now = clock.now()
    program = await cached_program()
    row = (await member_rows([member_id], program, now)).get(member_id)
    if row is None:
        return None
    member = await settled(row, now)  # a lot that matured or expired by now shows as it is
    progress = tier_progress(member, program, row.qualifying_value, now)
    return MemberUpdate(
        changes=[MEMBER_CHANGES.to_api(change) for change in Change if change in changes],
        points=PointsBalance(
            available=member.points_available, pending=member.points_pending, lifetime_earned=member.lifetime_earned
        ),
        tier=TierProgress.from_domain(progress),
    )


async def member_updated(info: Info) -> AsyncGenerator[MemberUpdate, None]:
    member_id = info.context.require_member()
    live = info.context.live
    if live is None:
        raise LiveUpdatesOff()
    subscription = await live.subscribe(member_id)  # before the first read, so no change falls between the two
    try:
        changes: frozenset[Change] = frozenset()
        while True:
            update = await member_update(member_id, changes)
            if update is None:
                raise NotAuthenticated("this member no longer exists")
            yield update
            changes = await subscription.next()
    finally:
        subscription.close()


@strawberry.type
class Subscription:
    member_updated: AsyncGenerator[MemberUpdate, None] = strawberry.subscription(
        resolver=member_updated,
        description="Your points, tier and vouchers as they change (graphql-transport-ws; authenticate in "
        "connection_init).",
    )
