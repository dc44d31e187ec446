"""me.inbox, me.inboxUnreadCount, inboxMarkRead, pushOpened and InboxMessage ids: the member's sent messages, newest
first, another member's looking exactly like missing ones."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from loyalty import inbox
from loyalty.clock import FrozenClock
from loyalty.models import Member, MessagePurpose, MessageStatus, PushMessage
from schema.global_ids import INBOX_MESSAGE, OFFER, REWARD, VOUCHER
from tests.schema.conftest import SQLCounter

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
INBOX_QUERY = (OPERATIONS / "Inbox.graphql").read_text()
MARK_READ = (OPERATIONS / "InboxMarkRead.graphql").read_text()
PUSH_OPENED = (OPERATIONS / "PushOpened.graphql").read_text()
NODE = "query($id: ID!) { node(id: $id) { __typename ... on InboxMessage { id title } } }"


async def _message(
    member: Member,
    name: str,
    sent_at: datetime | None,
    *,
    status: MessageStatus = MessageStatus.SENT,
    target: str = "",
    expires_at: datetime | None = None,
) -> PushMessage:
    return await PushMessage.create(
        member_id=member.id,
        occasion=name,
        purpose=MessagePurpose.MARKETING,
        title=f"Title {name}",
        body=f"Body {name}",
        target=target,
        status=status,
        due_at=sent_at or datetime(2020, 1, 1),
        created_at=sent_at or datetime(2020, 1, 1),
        sent_at=sent_at,
        expires_at=expires_at,
    )


def _gid(message: PushMessage) -> str:
    return INBOX_MESSAGE.encode(message.id)


def _node(message: PushMessage, deep_link: str, target_id: str | None, **times: str | None) -> dict[str, Any]:
    assert message.sent_at is not None
    return {
        "id": _gid(message),
        "title": message.title,
        "body": message.body,
        "deepLink": deep_link,
        "targetId": target_id,
        "sentAt": message.sent_at.isoformat(),
        "readAt": None,
        "openedAt": None,
        "expiresAt": message.expires_at.isoformat() if message.expires_at else None,
        **times,
    }


async def test_the_inbox_lists_sent_messages_newest_first_with_their_deep_links(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given Anna's messages in every state, and one of Bo's
    now = clock.now()
    offer = await _message(
        anna, "offer", now - timedelta(hours=3), target="offer:12", expires_at=now + timedelta(days=2)
    )
    home = await _message(anna, "home", now - timedelta(hours=2))
    voucher = await _message(anna, "voucher", now - timedelta(hours=1), target="voucher:5")
    reward = await _message(anna, "reward", now - timedelta(hours=1), target="reward:9")  # same instant: by id
    await _message(anna, "expired", now - timedelta(minutes=5), expires_at=now)
    await _message(anna, "scheduled", None, status=MessageStatus.SCHEDULED)
    await _message(anna, "suppressed", None, status=MessageStatus.SUPPRESSED)
    await _message(bo, "bos", now)

    # when her inbox loads
    result = await as_member(anna).execute(INBOX_QUERY)

    # then the four sent, live messages, newest first, each with its link and target id
    nodes = [edge["node"] for edge in result["data"]["me"]["inbox"]["edges"]]
    assert nodes == [
        _node(reward, f"klubb://rewards/{REWARD.encode(9)}", REWARD.encode(9)),
        _node(voucher, f"klubb://vouchers/{VOUCHER.encode(5)}", VOUCHER.encode(5)),
        _node(home, "klubb://home", None),
        _node(offer, f"klubb://offers/{OFFER.encode(12)}", OFFER.encode(12)),
    ]
    assert result["data"]["me"]["inboxUnreadCount"] == 4
    assert result["data"]["me"]["inbox"]["pageInfo"] == {"hasNextPage": False, "endCursor": _cursor(offer)}


def _cursor(message: PushMessage) -> str:
    return base64.urlsafe_b64encode(f"inbox:{message.id}".encode()).decode()


async def test_the_inbox_pages_by_cursor_in_one_statement_however_long(
    anna: Member, as_member: Any, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    counts = []
    seen: list[str] = []
    for batch in (5, 45):
        # given more messages (pairs sent at one instant: the cursor orders them by id)
        for index in range(batch):
            await _message(anna, f"m{batch}-{index}", clock.now() - timedelta(minutes=index // 2))
        await as_member(anna).execute(INBOX_QUERY)  # the program cached
        # when the inbox loads page after page
        seen, after = [], None
        while True:
            sql_counter.statements.clear()
            page = await as_member(anna).execute(INBOX_QUERY, {"after": after})
            counts.append(len(sql_counter.statements))
            connection = page["data"]["me"]["inbox"]
            seen += [edge["node"]["id"] for edge in connection["edges"]]
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]
        clock.advance(timedelta(hours=1))

    # then every message once, newest first, each page three statements (member, page, unread count)
    expected = await PushMessage.filter(member_id=anna.id).order_by("-sent_at", "-id")
    assert seen == [_gid(m) for m in expected]
    assert counts == [3] * 4  # one page of 5, then three of 50


async def test_marking_read_is_all_or_nothing_and_keeps_the_first_time(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given two of Anna's messages, one of Bo's and one not sent
    first = await _message(anna, "first", clock.now() - timedelta(hours=2))
    second = await _message(anna, "second", clock.now() - timedelta(hours=1))
    bos = await _message(bo, "bos", clock.now())
    scheduled = await _message(anna, "scheduled", None, status=MessageStatus.SCHEDULED)
    client = as_member(anna)

    # when she marks the first read, then both (a minute later)
    one = await client.execute(MARK_READ, {"input": {"ids": [_gid(first)]}})
    read_at = clock.now().isoformat()
    clock.advance(timedelta(minutes=1))
    both = await client.execute(MARK_READ, {"input": {"ids": [_gid(second), _gid(first), _gid(second)]}})

    # then each keeps its first time
    assert one["data"]["inboxMarkRead"] == {
        "messages": [{"id": _gid(first), "readAt": read_at}],
        "unreadCount": 1,
        "userErrors": [],
    }
    assert both["data"]["inboxMarkRead"] == {
        "messages": [{"id": _gid(second), "readAt": clock.now().isoformat()}, {"id": _gid(first), "readAt": read_at}],
        "unreadCount": 0,
        "userErrors": [],
    }

    # and with another member's, a scheduled, a malformed or another type's id among them: nothing is marked
    await PushMessage.filter(id=second.id).update(read_at=None)
    refusal = {
        "messages": None,
        "unreadCount": None,
        "userErrors": [{"code": "MESSAGE_NOT_FOUND", "message": "no such message", "field": ["input", "ids"]}],
    }
    for wrong in (_gid(bos), _gid(scheduled), "not an id", OFFER.encode(second.id), INBOX_MESSAGE.encode(10**15)):
        result = await client.execute(MARK_READ, {"input": {"ids": [_gid(second), wrong]}})
        assert result["data"]["inboxMarkRead"] == refusal, wrong
    assert (await PushMessage.get(id=second.id)).read_at is None


async def test_marking_nothing_or_too_much_is_invalid(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    message = await _message(anna, "one", clock.now())
    client = as_member(anna)

    none = await client.execute(MARK_READ, {"input": {"ids": []}})
    many = await client.execute(MARK_READ, {"input": {"ids": [INBOX_MESSAGE.encode(i) for i in range(1, 102)]}})

    invalid = [{"code": "INVALID", "message": "give 1 to 100 message ids", "field": ["input", "ids"]}]
    assert none["data"]["inboxMarkRead"]["userErrors"] == invalid
    assert many["data"]["inboxMarkRead"]["userErrors"] == invalid
    assert (await PushMessage.get(id=message.id)).read_at is None


async def test_an_opened_push_is_recorded_once_and_reads_its_message(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given a message Anna read yesterday, one she did not, and Bo's
    read = await _message(anna, "read", clock.now() - timedelta(days=2))
    await PushMessage.filter(id=read.id).update(read_at=clock.now() - timedelta(days=1))
    unread = await _message(anna, "unread", clock.now() - timedelta(hours=1), expires_at=clock.now())  # just expired
    bos = await _message(bo, "bos", clock.now())
    client = as_member(anna)

    # when she opens both pushes, the second twice (a minute apart)
    opened_read = await client.execute(PUSH_OPENED, {"input": {"messageId": _gid(read)}})
    opened_at = clock.now().isoformat()
    opened = await client.execute(PUSH_OPENED, {"input": {"messageId": _gid(unread)}})
    clock.advance(timedelta(minutes=1))
    again = await client.execute(PUSH_OPENED, {"input": {"messageId": _gid(unread)}})

    # then the first open counts, and reads a message not read yet (an expired one too: the tray outlives it)
    yesterday = (clock.now() - timedelta(minutes=1) - timedelta(days=1)).isoformat()
    assert opened_read["data"]["pushOpened"] == {
        "message": {"id": _gid(read), "readAt": yesterday, "openedAt": opened_at},
        "userErrors": [],
    }
    expected = {"message": {"id": _gid(unread), "readAt": opened_at, "openedAt": opened_at}, "userErrors": []}
    assert opened["data"]["pushOpened"] == expected
    assert again["data"]["pushOpened"] == expected

    # and Bo's message, or a malformed id, answers like a missing one and writes nothing
    for wrong in (_gid(bos), "bm9wZQ==", ""):
        result = await client.execute(PUSH_OPENED, {"input": {"messageId": wrong}})
        assert result["data"]["pushOpened"] == {
            "message": None,
            "userErrors": [
                {"code": "MESSAGE_NOT_FOUND", "message": "no such message", "field": ["input", "messageId"]}
            ],
        }
    assert (await PushMessage.get(id=bos.id)).opened_at is None


async def test_node_refetches_only_the_members_live_messages(
    anna: Member, bo: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given a live message of Anna's, an expired one, and Bo's
    live = await _message(anna, "live", clock.now())
    expired = await _message(anna, "expired", clock.now() - timedelta(hours=1), expires_at=clock.now())
    bos = await _message(bo, "bos", clock.now())

    # when Anna refetches each by id
    found = [(await as_member(anna).execute(NODE, {"id": _gid(m)}))["data"]["node"] for m in (live, expired, bos)]

    # then hers; the expired and Bo's exactly like missing ones
    assert found == [{"__typename": "InboxMessage", "id": _gid(live), "title": "Title live"}, None, None]


def test_the_domain_builds_the_member_apis_ids_and_links() -> None:
    # The push payload carries these (push/ cannot import schema): they must be the member API's own ids
    assert inbox.message_global_id(42) == INBOX_MESSAGE.encode(42)
    assert inbox.target_global_id("offer:7") == OFFER.encode(7)
    assert inbox.target_global_id("reward:7") == REWARD.encode(7)
    assert inbox.target_global_id("voucher:7") == VOUCHER.encode(7)
    assert [inbox.deep_link(t) for t in ("", "offer:", "offer:07", "offer:x", "coupon:3", "offer:٣", "voucher:3")] == [
        "klubb://home",
        "klubb://home",
        "klubb://home",
        "klubb://home",
        "klubb://home",
        "klubb://home",
        f"klubb://vouchers/{VOUCHER.encode(3)}",
    ]
