"""The push consumer end to end through the real firebase-admin SDK and the fake FCM: schedule → deliver_due →
the fake received it, the inbox row SENT; batching; every error class (unregistered token deleted, 429 with
Retry-After honoured, 5xx retried, 401 keeps tokens and logs an error, invalid dropped); expiry and the retry
horizon; the statements of a batch."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from loyalty import events, inbox
from loyalty.clock import FrozenClock
from loyalty.messages import release_due
from loyalty.models import (
    AutomationKind,
    Device,
    MessagePurpose,
    MessageStatus,
    PushAutomation,
    PushDelivery,
    PushMessage,
    PushPolicy,
)
from push.consumer import PushSending, claim_due
from push.fake import FakeFcm
from push.fcm import FcmSender
from tests.conftest import START
from tests.loyalty.test_purchase_statements import counted, kinds
from tests.push.helpers import add_devices, message, new_member, new_members, outgoing, schedule
from tests.worker.conftest import emit_event
from worker.runner import drain_once


@pytest.fixture(autouse=True)
async def no_caps(db: str) -> None:
    """The caps are `test_release.py`'s subject: here every message goes."""
    await PushPolicy.create(
        marketing_per_day=None, marketing_per_week=None, transactional_per_day=None, updated_at=START
    )


async def deliveries() -> list[tuple[str, str, int, str]]:
    rows = await PushDelivery.all().order_by("token").values_list("token", "status", "attempts", "fcm_message_id")
    return [(t, str(s), a, f) for t, s, a, f in rows]


async def test_a_scheduled_message_reaches_each_device_and_the_inbox(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given a member with two devices and an offer message expiring in an hour
    member = await new_member()
    await add_devices(member, "tok-a", "tok-b")
    expires = clock.now() + timedelta(hours=1)
    await schedule(outgoing(member, "campaign:7", offer_id=None, target="offer:42", expires_at=expires))
    # when the consumer delivers what is due
    attempts = await PushSending(sender).deliver_due(None)
    # then FCM got one push per device, with ids and a deep link only, the offer's collapse key and TTL
    assert attempts == 2
    sent = await message(member, "campaign:7")
    assert (sent.status, sent.sent_at, sent.delivered_at) == (MessageStatus.SENT, clock.now(), clock.now())
    pushed = fake.sent_to("tok-a")
    assert len(pushed) == 1
    assert len(fake.sent_to("tok-b")) == 1
    assert pushed[0]["notification"] == {"title": "Double points", "body": "Double points on coffee this week"}
    assert pushed[0]["data"] == {
        "message_id": inbox.message_global_id(sent.id),
        "deep_link": "klubb://offers/T2ZmZXI6NDI=",
    }
    assert pushed[0]["android"] == {"priority": "normal", "ttl": "3600s"}
    assert pushed[0]["apns"]["headers"]["apns-priority"] == "5"
    recorded = await deliveries()
    assert [(t, s, a) for t, s, a, _ in recorded] == [("tok-a", "sent", 1), ("tok-b", "sent", 1)]
    assert sorted(f for *_, f in recorded) == ["projects/klubb-test/messages/1", "projects/klubb-test/messages/2"]
    # and nothing is sent twice
    assert await PushSending(sender).deliver_due(None) == 0
    assert fake.sent == 2


async def test_collapse_key_and_priority(db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender) -> None:
    # given an urgent transactional message with its own collapse key, and a message with an offer and none
    member = await new_member()
    await add_devices(member, "tok-a")
    await schedule(
        outgoing(
            member, "voucher_expiring:1", purpose=MessagePurpose.TRANSACTIONAL, urgent=True, collapse_key="voucher:9"
        ),
        outgoing(member, "campaign:1", offer_id=None, collapse_key=""),
    )
    # when delivered
    await PushSending(sender).deliver_due(None)
    # then the urgent one is high priority with its collapse key; the other has none
    by_message = {p["data"]["message_id"]: p for p in fake.sent_to("tok-a")}
    urgent = by_message[inbox.message_global_id((await message(member, "voucher_expiring:1")).id)]
    assert urgent["android"] == {"priority": "high", "collapse_key": "voucher:9"}
    assert urgent["apns"]["headers"] == {"apns-priority": "10", "apns-collapse-id": "voucher:9"}
    plain = by_message[inbox.message_global_id((await message(member, "campaign:1")).id)]
    assert plain["android"] == {"priority": "normal"}


async def test_many_messages_go_in_batches_of_at_most_500(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given 1,100 members with a device each and a message each
    members = await new_members(1100)
    await Device.bulk_create(
        [Device(member_id=m.id, token=f"tok-{m.id}", platform="android", created_at=clock.now(),
                last_seen_at=clock.now()) for m in members],
        batch_size=1000,
    )  # fmt: skip
    await schedule(*(outgoing(m, "campaign:1", purpose=MessagePurpose.TRANSACTIONAL) for m in members))
    # when delivered with batches of 500
    attempts = await PushSending(sender, batch_size=500).deliver_due(None)
    # then every device got it once
    assert attempts == 1100
    assert fake.sent == 1100
    assert sorted(r.message["token"] for r in fake.received) == sorted(f"tok-{m.id}" for m in members)
    assert await PushDelivery.filter(status="sent").count() == 1100
    assert await PushMessage.filter(status="sent", delivered_at=clock.now()).count() == 1100


async def test_an_unregistered_token_is_deleted_and_its_delivery_dropped(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given a member with a live and a dead token (and the fake's "not a valid token")
    member = await new_member()
    await add_devices(member, "tok-live", "tok-dead", "tok-bogus")
    fake.unregistered.add("tok-dead")
    fake.invalid_tokens.add("tok-bogus")
    await schedule(outgoing(member, "campaign:1"))
    # when delivered
    await PushSending(sender).deliver_due(None)
    # then the dead devices are gone, their deliveries dropped (the token kept as a record)
    assert await Device.all().values_list("token", flat=True) == ["tok-live"]
    rows = await PushDelivery.all().order_by("token").values_list("token", "status", "device_id")
    live = await Device.get(token="tok-live")
    assert rows == [("tok-bogus", "dropped", None), ("tok-dead", "dropped", None), ("tok-live", "sent", live.id)]
    assert (await message(member, "campaign:1")).delivered_at == clock.now()


async def test_429_waits_for_retry_after_then_sends(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given FCM answering 429 with Retry-After: 600 (more than the first backoff, 30 s)
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 429, fcm_code="QUOTA_EXCEEDED", retry_after="600")
    await schedule(outgoing(member, "campaign:1"))
    consumer = PushSending(sender)
    # when delivered
    assert await consumer.deliver_due(None) == 1
    # then it waits 600 s, not the backoff's 30 s
    row = await PushDelivery.get(token="tok-a")
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, clock.now() + timedelta(seconds=600))
    assert row.last_error.startswith("429")
    clock.advance(timedelta(seconds=599))
    assert await consumer.deliver_due(None) == 0
    # and once it has waited, it is sent
    clock.advance(timedelta(seconds=1))
    assert await consumer.deliver_due(None) == 1
    assert await deliveries() == [("tok-a", "sent", 2, "projects/klubb-test/messages/1")]


async def test_a_5xx_is_retried_with_backoff(db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender) -> None:
    # given FCM failing with 502 (which the SDK itself does not retry) twice
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 502, times=2)
    await schedule(outgoing(member, "campaign:1"))
    consumer = PushSending(sender)
    # when delivered, then retried after 30 s, then 60 s
    await consumer.deliver_due(None)
    assert (await PushDelivery.get(token="tok-a")).next_attempt_at == clock.now() + timedelta(seconds=30)
    clock.advance(timedelta(seconds=30))
    await consumer.deliver_due(None)
    assert (await PushDelivery.get(token="tok-a")).next_attempt_at == clock.now() + timedelta(seconds=60)
    clock.advance(timedelta(seconds=60))
    await consumer.deliver_due(None)
    assert await deliveries() == [("tok-a", "sent", 3, "projects/klubb-test/messages/1")]


async def test_401_keeps_the_tokens_logs_an_error_and_retries(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender, caplog: pytest.LogCaptureFixture
) -> None:
    # given FCM refusing our credentials (google-auth refreshes and repeats a request once after a 401)
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 401, times=10)
    await schedule(outgoing(member, "campaign:1"))
    consumer = PushSending(sender)
    # when delivered
    with caplog.at_level(logging.ERROR, logger="klubb.push.consumer"):
        await consumer.deliver_due(None)
    # then the device stays, an error is logged, and the push is retried later
    assert await Device.all().values_list("token", flat=True) == ["tok-a"]
    assert [r.levelno for r in caplog.records if r.name == "klubb.push.consumer"] == [logging.ERROR]
    row = await PushDelivery.get(token="tok-a")
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, clock.now() + timedelta(seconds=30))
    # and once the credentials are fixed it is sent
    fake.failures.clear()
    clock.advance(timedelta(seconds=30))
    await consumer.deliver_due(None)
    assert await deliveries() == [("tok-a", "sent", 2, "projects/klubb-test/messages/1")]


async def test_an_invalid_message_is_dropped(db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender) -> None:
    # given FCM refusing the message itself (400 about a field), and a message that cannot be a push (no title)
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 400)
    await schedule(outgoing(member, "campaign:1"), outgoing(member, "campaign:2", title="", due_at=clock.now()))
    # when delivered
    attempts = await PushSending(sender, release_batch=1).deliver_due(None)
    # then both deliveries are dropped (only one reached FCM), the device kept
    assert attempts == 1
    rows = await PushDelivery.all().order_by("id").values_list("status", "last_error")
    assert [s for s, _ in rows] == ["dropped", "dropped"]
    assert rows[1][1].startswith("invalid: a push's title")
    assert await Device.all().count() == 1


async def test_a_delivery_for_an_expired_offer_is_dropped_unsent(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given a message released while valid whose first push failed, and the offer ends before the retry
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 502)
    await schedule(outgoing(member, "campaign:1", expires_at=clock.now() + timedelta(seconds=40)))
    consumer = PushSending(sender)
    await consumer.deliver_due(None)
    # when the retry is due after the offer ended
    clock.advance(timedelta(seconds=45))
    assert await consumer.deliver_due(None) == 0
    # then it is dropped without a second request
    assert (await PushDelivery.get(token="tok-a")).status == "dropped"
    assert fake.requests == 1


async def test_retries_give_up_after_the_horizon(db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender) -> None:
    # given a push failing for more than the retry horizon (1 hour)
    member = await new_member()
    await add_devices(member, "tok-a")
    fake.fail("tok-a", 502, times=100)
    await schedule(outgoing(member, "campaign:1"))
    consumer = PushSending(sender, retry_hours=1)
    # when retried as they fall due
    for _ in range(20):
        await consumer.deliver_due(None)
        row = await PushDelivery.get(token="tok-a")
        if row.status != "pending":
            break
        clock.set(row.next_attempt_at)
    # then the 8th attempt, failing at 63.5 min (0.5 + 1 + 2 + 4 + 8 + 16 + 32 min of waits), drops it
    assert (row.status, row.attempts) == ("dropped", 8)
    assert clock.now() - START == timedelta(minutes=63.5)


@pytest.mark.parametrize("size", [5, 40])
async def test_a_batch_has_a_fixed_statement_budget(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender, size: int
) -> None:
    # given members with a device each, one of them dead, and released messages
    members = await new_members(size)
    for m in members:
        await add_devices(m, f"tok-{m.id}")
    fake.unregistered.add(f"tok-{members[0].id}")
    await schedule(*(outgoing(m, "campaign:1") for m in members))
    consumer = PushSending(sender)
    # when one batch is claimed, sent and recorded
    await release_due()
    claim = await claim_due(500, 60)
    with counted() as counter:
        await consumer._send(claim)
    # then: sent, message delivered, devices seen, dropped, the dead device deleted
    assert [k for k in kinds(counter.statements) if k.split()[0] not in ("BEGIN", "COMMIT")] == [
        "UPDATE push_delivery",  # sent
        "UPDATE push_message",  # delivered_at
        "UPDATE device",  # last_seen_at
        "UPDATE push_delivery",  # dropped
        "DELETE FROM",  # the dead token's device
    ]
    assert len(claim.deliveries) == size


async def test_fan_out_turns_points_earned_into_a_push(
    db: str, clock: FrozenClock, fake: FakeFcm, sender: FcmSender
) -> None:
    # given the points-earned automation on, a member with a device, and a points.earned event in the outbox
    await PushAutomation.create(
        kind=AutomationKind.POINTS_EARNED, enabled=True, title={"en": "Points earned"},
        body={"en": "You earned {points} points"}, updated_at=START,
    )  # fmt: skip
    member = await new_member()
    await add_devices(member, "tok-a")
    event = await emit_event(events.POINTS_EARNED, member_id=member.id, points=12)
    # when the worker drains the outbox with the push consumer
    attempts = await drain_once([PushSending(sender)])
    # then the automation's message is in the inbox and pushed once; a second drain sends nothing more
    assert attempts == 1
    sent = await message(member, f"points_earned:{event.id}")
    assert (sent.status, sent.purpose) == (MessageStatus.SENT, MessagePurpose.TRANSACTIONAL)
    assert [p["data"]["message_id"] for p in fake.sent_to("tok-a")] == [inbox.message_global_id(sent.id)]
    assert await drain_once([PushSending(sender)]) == 0
