"""The member's inbox: the messages they were sent, newest first, each with what it opens in the app."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import strawberry
from strawberry import relay

from loyalty import inbox
from loyalty.models import PushMessage
from schema.context import Info
from schema.global_ids import INBOX_MESSAGE
from schema.types.node import VisibleNode
from schema.types.pagination import encode_cursor, forward_page_info

AnyMessage = inbox.InboxRow | PushMessage


@strawberry.type(name="InboxMessage", description="A message you were sent (also as a push, if you have a device).")
class InboxMessage(VisibleNode):
    id: relay.NodeID[int]
    title: str
    body: str
    deep_link: str = strawberry.field(
        description="What the message opens in the app: klubb://offers/<id>, klubb://rewards/<id>, "
        "klubb://vouchers/<id> (global ids), or klubb://home."
    )
    target_id: strawberry.ID | None = strawberry.field(
        description="The global id of the Offer, Reward or Voucher it is about; null for none."
    )
    sent_at: datetime
    read_at: datetime | None
    opened_at: datetime | None = strawberry.field(description="When you opened its push notification.")
    expires_at: datetime | None = strawberry.field(description="It leaves the inbox then (its offer ends).")

    @classmethod
    def from_model(cls, message: AnyMessage) -> InboxMessage:
        assert message.sent_at is not None  # only sent messages are in an inbox
        return cls(
            id=message.id,
            title=message.title,
            body=message.body,
            deep_link=inbox.deep_link(message.target),
            target_id=strawberry.ID(found) if (found := inbox.target_global_id(message.target)) else None,
            sent_at=message.sent_at,
            read_at=message.read_at,
            opened_at=message.opened_at,
            expires_at=message.expires_at,
        )

    @classmethod
    async def resolve_visible(cls, info: Info, node_ids: Sequence[str]) -> list[InboxMessage | None]:
        # Only what is in the signed-in member's inbox now: another member's message looks exactly like a missing one.
        member_id = info.context.require_member()
        found = await inbox.inbox_messages(member_id, INBOX_MESSAGE.keys(node_ids), info.context.now)
        return INBOX_MESSAGE.pick({key: cls.from_model(m) for key, m in found.items()}, node_ids)


@strawberry.type(name="InboxMessageConnection")
class InboxMessageConnection(relay.Connection[InboxMessage]):
    @classmethod
    def from_page(cls, messages: Sequence[inbox.InboxRow], size: int) -> InboxMessageConnection:
        edges = [relay.Edge(node=InboxMessage.from_model(m), cursor=encode_cursor("inbox", m.id)) for m in messages]
        return cls(
            edges=edges[:size],
            page_info=forward_page_info(edges[:size], has_next_page=len(messages) > size),
        )
