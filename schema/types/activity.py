"""The member's activity feed: ledger entries as a Relay connection, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import models
from loyalty.rows import AnyEntry
from schema.context import Info
from schema.global_ids import ACTIVITY_ENTRY
from schema.types.enum_map import EnumMap
from schema.types.node import VisibleNode
from schema.types.pagination import encode_cursor, forward_page_info


@strawberry.enum(name="ActivityKind", description="What moved the points.")
class ActivityKind(Enum):
    EARN = "earn"
    REDEEM = "redeem"
    EXPIRE = "expire"
    REFUND_CLAWBACK = "refund_clawback"
    ADJUSTMENT = "adjustment"
    REFERRAL_BONUS = "referral_bonus"
    BIRTHDAY = "birthday"
    REVERSAL = "reversal"


ACTIVITY_KINDS = EnumMap(
    models.EntryKind,
    ActivityKind,
    {
        models.EntryKind.EARN: ActivityKind.EARN,
        models.EntryKind.REDEEM: ActivityKind.REDEEM,
        models.EntryKind.EXPIRE: ActivityKind.EXPIRE,
        models.EntryKind.REFUND_CLAWBACK: ActivityKind.REFUND_CLAWBACK,
        models.EntryKind.ADJUSTMENT: ActivityKind.ADJUSTMENT,
        models.EntryKind.REFERRAL_BONUS: ActivityKind.REFERRAL_BONUS,
        models.EntryKind.BIRTHDAY: ActivityKind.BIRTHDAY,
        models.EntryKind.REVERSAL: ActivityKind.REVERSAL,
    },
    # Pending points becoming available moves nothing the member sees: the feed (loyalty.activity) leaves it out.
    hidden=frozenset({models.EntryKind.MATURE}),
)

_DESCRIPTIONS = {
    models.EntryKind.EARN: "Purchase",
    models.EntryKind.REDEEM: "Points redeemed",
    models.EntryKind.EXPIRE: "Points expired",
    models.EntryKind.REFUND_CLAWBACK: "Return",
    models.EntryKind.ADJUSTMENT: "Adjustment",
    models.EntryKind.REFERRAL_BONUS: "Referral bonus",
    models.EntryKind.BIRTHDAY: "Birthday reward",
    models.EntryKind.REVERSAL: "Redemption cancelled",
}


@strawberry.type(name="ActivityEntry")
class ActivityEntry(VisibleNode):
    id: relay.NodeID[int]
    kind: ActivityKind
    points: int = strawberry.field(description="Change of the member's points (available and pending).")
    pending: int = strawberry.field(description="Part of `points` that is pending until the return window ends.")
    description: str
    occurred_at: datetime = strawberry.field(
        description="When it happened: a purchase's receipt time (`purchaseRecord.occurredAt`), else when recorded."
    )

    @classmethod
    def from_model(cls, entry: AnyEntry) -> ActivityEntry:
        return cls(
            id=entry.id,
            kind=ACTIVITY_KINDS.to_api(entry.kind),
            points=entry.delta_available + entry.delta_pending,
            pending=entry.delta_pending,
            description=entry.description or _DESCRIPTIONS.get(entry.kind, entry.kind.value),
            # Entries written before `occurred_at` existed have none: they happened when they were written.
            occurred_at=entry.occurred_at or entry.created_at,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[ActivityEntry | None]:
        # Only the signed-in member's entries: someone else's id looks exactly like a missing one.
        member_id = info.context.require_member()
        ids = ACTIVITY_ENTRY.keys(node_ids)
        entries = await models.LedgerEntry.filter(id__in=ids, member_id=member_id) if ids else []
        return ACTIVITY_ENTRY.pick({e.id: cls.from_model(e) for e in entries}, node_ids)


@strawberry.type(name="ActivityConnection")
class ActivityConnection(relay.Connection[ActivityEntry]):
    @classmethod
    def from_page(cls, entries: Sequence[AnyEntry], size: int) -> ActivityConnection:
        edges = [relay.Edge(node=ActivityEntry.from_model(e), cursor=encode_cursor("activity", e.id)) for e in entries]
        return cls(
            edges=edges[:size],
            page_info=forward_page_info(edges[:size], has_next_page=len(entries) > size),
        )
