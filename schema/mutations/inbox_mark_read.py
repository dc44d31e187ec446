"""inboxMarkRead: the member read these inbox messages (up to a page at once); all or nothing."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.inbox import MAX_MARK, MessageNotFound, mark_read, unread_count
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.global_ids import INBOX_MESSAGE
from schema.types.inbox import InboxMessage


@strawberry.enum
class InboxMarkReadErrorCode(Enum):
    INVALID = "INVALID"
    MESSAGE_NOT_FOUND = "MESSAGE_NOT_FOUND"


@strawberry.type
class InboxMarkReadUserError(UserError):
    code: InboxMarkReadErrorCode


@strawberry.input
class InboxMarkReadInput:
    ids: list[strawberry.ID] = strawberry.field(description=f"1 to {MAX_MARK} InboxMessage ids; one is a list of one.")


@strawberry.type
class InboxMarkReadPayload:
    messages: list[InboxMessage] | None = strawberry.field(description="In the order given, each with its readAt.")
    unread_count: int | None = strawberry.field(description="What `me.inboxUnreadCount` now says.")
    user_errors: list[InboxMarkReadUserError]


async def inbox_mark_read(info: Info, input: InboxMarkReadInput) -> InboxMarkReadPayload:
    member_id = info.context.require_member()
    try:
        ids = [INBOX_MESSAGE.decode(global_id) for global_id in input.ids]
        known = [message_id for message_id in ids if message_id is not None]
        if len(known) < len(ids):
            raise MessageNotFound("no such message", field="ids")
        messages = await mark_read(member_id, known)
    except DomainError as error:
        return InboxMarkReadPayload(
            messages=None,
            unread_count=None,
            user_errors=[to_user_error(InboxMarkReadUserError, InboxMarkReadErrorCode, error)],
        )
    return InboxMarkReadPayload(
        messages=[InboxMessage.from_model(m) for m in messages],
        unread_count=await unread_count(member_id, info.context.now),
        user_errors=[],
    )
