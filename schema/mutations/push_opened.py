"""pushOpened: the app reports that the member opened a push notification (once counts; it also reads the message)."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.inbox import MessageNotFound, record_open
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.global_ids import INBOX_MESSAGE
from schema.types.inbox import InboxMessage


@strawberry.enum
class PushOpenedErrorCode(Enum):
    INVALID = "INVALID"
    MESSAGE_NOT_FOUND = "MESSAGE_NOT_FOUND"


@strawberry.type
class PushOpenedUserError(UserError):
    code: PushOpenedErrorCode


@strawberry.input
class PushOpenedInput:
    message_id: strawberry.ID = strawberry.field(description="The InboxMessage id the push carried.")


@strawberry.type
class PushOpenedPayload:
    message: InboxMessage | None
    user_errors: list[PushOpenedUserError]


async def push_opened(info: Info, input: PushOpenedInput) -> PushOpenedPayload:
    member_id = info.context.require_member()
    try:
        message_id = INBOX_MESSAGE.decode(input.message_id)
        if message_id is None:
            raise MessageNotFound("no such message", field="message_id")
        message = await record_open(member_id, message_id)
    except DomainError as error:
        return PushOpenedPayload(
            message=None, user_errors=[to_user_error(PushOpenedUserError, PushOpenedErrorCode, error)]
        )
    return PushOpenedPayload(message=InboxMessage.from_model(message), user_errors=[])
