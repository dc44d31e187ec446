"""Building members, devices and messages for the push tests (straight rows: the rules are about messages)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from loyalty import clock, messages
from loyalty.consent import member_actor, set_consent
from loyalty.models import (
    ConsentChannel,
    ConsentPurpose,
    ConsentSource,
    Device,
    DevicePlatform,
    Member,
    MessagePurpose,
    PushMessage,
)
from tests.loyalty.push_helpers import record_consents

_numbers = itertools.count(1)


async def new_members(count: int, *, timezone: str = "UTC", consent: bool = True) -> list[Member]:
    now = clock.now()
    first = next(_numbers)
    for _ in range(count - 1):
        next(_numbers)
    rows = [
        Member(
            firebase_uid=f"uid-{n}",
            member_number=f"M{n:09d}",
            card_secret="s" * 32,
            timezone=timezone,
            marketing_consent=consent,
            marketing_consent_at=now if consent else None,
            created_at=now,
            updated_at=now,
        )
        for n in range(first, first + count)
    ]
    await Member.bulk_create(rows, batch_size=1000)
    members = await Member.filter(member_number__in=[m.member_number for m in rows]).order_by("id")
    if consent:
        await record_consents([m.id for m in members], ConsentSource.APP)
    return members


async def withdraw_consent(member: Member) -> None:
    await set_consent(
        member.id, ConsentChannel.PUSH, ConsentPurpose.MARKETING, False, ConsentSource.APP, member_actor(member.id)
    )


async def new_member(*, timezone: str = "UTC", consent: bool = True) -> Member:
    return (await new_members(1, timezone=timezone, consent=consent))[0]


async def add_devices(member: Member, *tokens: str) -> list[Device]:
    now = clock.now()
    await Device.bulk_create(
        [
            Device(member_id=member.id, token=t, platform=DevicePlatform.ANDROID, created_at=now, last_seen_at=now)
            for t in tokens
        ]
    )
    return await Device.filter(token__in=list(tokens)).order_by("id")


def outgoing(member: Member | int, occasion: str, **overrides: Any) -> messages.Outgoing:
    values: dict[str, Any] = {
        "member_id": member if isinstance(member, int) else member.id,
        "occasion": occasion,
        "purpose": MessagePurpose.MARKETING,
        "title": "Double points",
        "body": "Double points on coffee this week",
        "due_at": clock.now(),
    }
    values.update(overrides)
    return messages.Outgoing(**values)


async def schedule(*owed: messages.Outgoing) -> None:
    async with in_transaction() as conn:
        await messages.schedule(conn, list(owed), clock.now())


async def message(member: Member, occasion: str) -> PushMessage:
    return await PushMessage.get(member_id=member.id, occasion=occasion)


async def sent_at(
    member: Member, occasion: str, at: datetime, purpose: MessagePurpose = MessagePurpose.MARKETING
) -> None:
    """A message the member was already sent at `at` (for the caps)."""
    await schedule(outgoing(member, occasion, due_at=at, purpose=purpose))
    await PushMessage.filter(member_id=member.id, occasion=occasion).update(status="sent", sent_at=at)
