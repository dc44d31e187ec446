"""The member's inbox: every message they were sent (`PushMessage` once released, `sent_at` set), newest first.

An item is in the inbox while it is SENT and not expired (`expires_at` NULL or later than now: a message about an
offer goes when the offer ends). The app reports what the member read (`mark_read`) and which pushes they opened
(`record_open`, which also reads it); both keep the first time and are idempotent. Another member's message and one
not sent (scheduled or suppressed) answer like a missing one; an expired one leaves the list and `node(id:)` but can
still be marked read or opened (the app's copy can be older than the expiry).

What a message opens is its `target`: "offer:<id>", "reward:<id>", "voucher:<id>", or "" for the app's home.
`deep_link` makes the app's link for it — `klubb://offers/<global id>`, `klubb://rewards/<…>`,
`klubb://vouchers/<…>`, `klubb://home` — here, not in the schema, because the push payload (`push/`, which may not
import `schema`) carries the same link and the message's own global id (`message_global_id`). The global ids are the
member API's (`loyalty.keys.global_id`, decoded by `schema.global_ids`); tests/schema/test_inbox.py checks they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from loyalty import clock, sql
from loyalty.errors import InvalidInput, NotFound
from loyalty.keys import global_id
from loyalty.models import MessageStatus, PushMessage

MAX_MARK = 100  # message ids per `mark_read`: one page of the inbox


class MessageNotFound(NotFound):
    """No such message in the member's inbox — also another member's, which must look exactly like a missing one."""

    code = "MESSAGE_NOT_FOUND"


class InboxRow(NamedTuple):
    """What the inbox shows of a `push_message` row."""

    id: int
    member_id: int
    title: str
    body: str
    target: str
    sent_at: datetime
    read_at: datetime | None
    opened_at: datetime | None
    expires_at: datetime | None


class _Cursor(NamedTuple):
    sent_at: datetime
    id: int


class TargetKind(StrEnum):
    OFFER = "offer"
    REWARD = "reward"
    VOUCHER = "voucher"


DEEP_LINK_HOME = "klubb://home"
# Per target kind: the app's route and the member API's type name.
_ROUTES = {
    TargetKind.OFFER: ("offers", "Offer"),
    TargetKind.REWARD: ("rewards", "Reward"),
    TargetKind.VOUCHER: ("vouchers", "Voucher"),
}
MESSAGE_TYPE_NAME = "InboxMessage"


def message_global_id(message_id: int) -> str:
    """The member API's id of an inbox message: what a push carries so the app can report `pushOpened`."""
    return global_id(MESSAGE_TYPE_NAME, message_id)


def target_global_id(target: str) -> str | None:
    """The member API's id of what a message opens (an Offer, Reward or Voucher), or None for the app's home."""
    parsed = parse_target(target)
    return None if parsed is None else global_id(_ROUTES[parsed[0]][1], parsed[1])


def deep_link(target: str) -> str:
    """The app's link for a message's target: `klubb://offers/<global id>` (rewards and vouchers alike), or
    `klubb://home` for none (or a target this version does not know)."""
    parsed = parse_target(target)
    if parsed is None:
        return DEEP_LINK_HOME
    route, type_name = _ROUTES[parsed[0]]
    return f"klubb://{route}/{global_id(type_name, parsed[1])}"


def parse_target(target: str) -> tuple[TargetKind, int] | None:
    """(kind, primary key) of a message's `target`; None for the home ("") or a target this version does not know."""
    kind, _, key = target.partition(":")
    if kind not in TargetKind.__members__.values() or not key.isascii() or not key.isdigit() or key.startswith("0"):
        return None
    return TargetKind(kind), int(key)


_COLUMNS = sql.columns(InboxRow, "m")
_IN_INBOX = ' "m"."member_id" = ? AND "m"."status" = ? AND ("m"."expires_at" IS NULL OR "m"."expires_at" > ?)'
_ORDER = ' ORDER BY "m"."sent_at" DESC, "m"."id" DESC LIMIT ?'
_PAGE = sql.rows(
    "inbox.page",
    PushMessage,
    InboxRow,
    f'SELECT {_COLUMNS} FROM "push_message" AS "m" WHERE{_IN_INBOX}{_ORDER}',  # noqa: S608 - names from the row type
)
# After the cursor's message: its (sent_at, id) read by subqueries of the same statement (the member's own message
# only: a cursor of another member's message reads NULL, an empty page), compared as stored: exact on both engines.
# The first condition is implied by the second; PostgreSQL uses it to start the index scan on (member_id, sent_at)
# at the cursor instead of filtering every newer message (0.08 ms rather than 1.8 ms 5,000 messages deep).
_CURSOR = ' FROM "push_message" AS "c" WHERE "c"."id" = ? AND "c"."member_id" = ?'
_CURSOR_SENT_AT = f'(SELECT "c"."sent_at"{_CURSOR})'
_CURSOR_KEY = f"(SELECT {sql.columns(_Cursor, 'c')}{_CURSOR})"
_PAGE_AFTER = sql.rows(
    "inbox.page_after",
    PushMessage,
    InboxRow,
    f'SELECT {_COLUMNS} FROM "push_message" AS "m" WHERE{_IN_INBOX}'  # noqa: S608 - names from the row type
    f' AND "m"."sent_at" <= {_CURSOR_SENT_AT} AND ("m"."sent_at", "m"."id") < {_CURSOR_KEY}'
    f"{_ORDER}",
)


async def inbox_page(member_id: int, at: datetime, limit: int, after: int | None = None) -> list[InboxRow]:
    """The member's inbox as of `at`, newest first (by `sent_at`, then id): `limit` messages after message `after`.

    One statement whatever the page (keyset on (sent_at, id), the cursor's read inside it).
    """
    live = [member_id, MessageStatus.SENT.value, at]
    if after is None:
        return await sql.fetch_rows(_PAGE, [*live, limit])
    return await sql.fetch_rows(_PAGE_AFTER, [*live, after, member_id, after, member_id, limit])


def _sent(member_id: int) -> Q:
    return Q(member_id=member_id, status=MessageStatus.SENT)


def _in_inbox(member_id: int, at: datetime) -> Q:
    return _sent(member_id) & (Q(expires_at__isnull=True) | Q(expires_at__gt=at))


async def unread_count(member_id: int, at: datetime) -> int:
    """How many messages in the member's inbox as of `at` are unread: the app's badge. One statement."""
    return await PushMessage.filter(_in_inbox(member_id, at), read_at__isnull=True).count()


async def inbox_messages(member_id: int, message_ids: Sequence[int], at: datetime) -> dict[int, PushMessage]:
    """Those of `message_ids` in the member's inbox as of `at`, by id (what `node(id:)` may show)."""
    if not message_ids:
        return {}
    found = await PushMessage.filter(_in_inbox(member_id, at), id__in=list(message_ids))
    return {message.id: message for message in found}


async def mark_read(member_id: int, message_ids: Sequence[int]) -> list[PushMessage]:
    """Mark the member's messages read (those read before keep their time); returns them in the order asked.

    All or nothing. An expired message may still be marked (the app's list may be older than its expiry). Errors:
    `InvalidInput` (no ids, more than `MAX_MARK`), `MessageNotFound` (field `ids`) if any is not a message sent to
    the member (another member's, scheduled, suppressed, or none).
    """
    unique = list(dict.fromkeys(message_ids))
    if not 1 <= len(unique) <= MAX_MARK:
        raise InvalidInput(f"give 1 to {MAX_MARK} message ids", field="ids")
    now = clock.now()
    async with in_transaction() as conn:
        found = await PushMessage.filter(_sent(member_id), id__in=unique).using_db(conn)
        if len(found) < len(unique):
            raise MessageNotFound("no such message", field="ids")
        unread = [message.id for message in found if message.read_at is None]
        if unread:
            await PushMessage.filter(id__in=unread, read_at__isnull=True).using_db(conn).update(read_at=now)
        by_id = {message.id: message for message in found}
        for message_id in unread:
            by_id[message_id].read_at = now
        return [by_id[message_id] for message_id in unique]


async def record_open(member_id: int, message_id: int) -> PushMessage:
    """The app reports that the member opened the push of this message: `opened_at` and `read_at` are set the first
    time (each keeps a first time already there); a second report changes nothing. An expired message's open is
    recorded too (a notification can outlive its offer on the device). Errors: `MessageNotFound` (field
    `message_id`) for a message not sent to the member."""
    now = clock.now()
    async with in_transaction() as conn:
        message = await PushMessage.filter(_sent(member_id), id=message_id).using_db(conn).first()
        if message is None:
            raise MessageNotFound("no such message", field="message_id")
        if message.opened_at is not None:
            return message  # reported before: opening it also read it
        # Conditional: of two concurrent reports, the first time stays.
        await PushMessage.filter(id=message.id, opened_at__isnull=True).using_db(conn).update(opened_at=now)
        message.opened_at = now
        if message.read_at is None:
            await PushMessage.filter(id=message.id, read_at__isnull=True).using_db(conn).update(read_at=now)
            message.read_at = now
        return message
