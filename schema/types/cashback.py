"""The member's cashback (`me.cashback`): the balance as money and its activity, a Relay connection newest first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import cashback, models
from loyalty.rows import CashbackEntryRow
from schema.context import Info
from schema.global_ids import CASHBACK_ENTRY
from schema.types.enum_map import EnumMap
from schema.types.node import VisibleNode
from schema.types.pagination import decode_cursor, encode_cursor, forward_page_info, page_size


@strawberry.type(description="An amount of money: minor units of `currency` (ISO 4217).")
class Money:
    amount: int
    currency: str


@strawberry.enum(name="CashbackKind", description="What moved the cashback balance.")
class CashbackKind(Enum):
    CREDIT = "credit"
    SPEND = "spend"
    PAYOUT = "payout"
    RETURN = "return"
    ADJUSTMENT = "adjustment"


CASHBACK_KINDS = EnumMap(
    models.CashbackKind,
    CashbackKind,
    {
        models.CashbackKind.CREDIT: CashbackKind.CREDIT,
        models.CashbackKind.SPEND: CashbackKind.SPEND,
        models.CashbackKind.PAYOUT: CashbackKind.PAYOUT,
        models.CashbackKind.RETURN: CashbackKind.RETURN,
        models.CashbackKind.ADJUSTMENT: CashbackKind.ADJUSTMENT,
    },
)


@strawberry.type(name="CashbackEntry")
class CashbackEntry(VisibleNode):
    id: relay.NodeID[int]
    kind: CashbackKind
    amount: Money = strawberry.field(description="Change of the balance: positive in, negative out.")
    description: str
    occurred_at: datetime

    @classmethod
    def from_row(cls, entry: CashbackEntryRow | models.CashbackEntry) -> CashbackEntry:
        return cls(
            id=entry.id,
            kind=CASHBACK_KINDS.to_api(entry.kind),
            amount=Money(amount=entry.amount, currency=entry.currency),
            description=entry.description or cashback.DESCRIPTIONS[entry.kind],
            occurred_at=entry.created_at,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[CashbackEntry | None]:
        # Only the signed-in member's entries: someone else's id looks exactly like a missing one.
        member_id = info.context.require_member()
        ids = CASHBACK_ENTRY.keys(node_ids)
        entries = await models.CashbackEntry.filter(id__in=ids, member_id=member_id) if ids else []
        return CASHBACK_ENTRY.pick({e.id: cls.from_row(e) for e in entries}, node_ids)


@strawberry.type(name="CashbackEntryConnection")
class CashbackEntryConnection(relay.Connection[CashbackEntry]):
    @classmethod
    def from_page(cls, entries: Sequence[CashbackEntryRow], size: int) -> CashbackEntryConnection:
        edges = [relay.Edge(node=CashbackEntry.from_row(e), cursor=encode_cursor("cashback", e.id)) for e in entries]
        return cls(
            edges=edges[:size],
            page_info=forward_page_info(edges[:size], has_next_page=len(entries) > size),
        )


@strawberry.type(name="Cashback", description="Money the member holds with the program: spend it at a till.")
class Cashback:
    member_id: strawberry.Private[int]
    amount: strawberry.Private[int]

    @strawberry.field(description="The balance, in the program's currency.")
    async def balance(self, info: Info) -> Money:
        return Money(amount=self.amount, currency=(await info.context.program()).currency)

    @strawberry.field(description="What moved the balance, newest first.")
    async def activity(self, info: Info, first: int = 20, after: str | None = None) -> CashbackEntryConnection:
        size = page_size(first)
        before = decode_cursor("cashback", after, CASHBACK_ENTRY.key_range)
        entries = await info.context.loaders.cashback_activity.load((self.member_id, size + 1, before))
        return CashbackEntryConnection.from_page(entries, size)
