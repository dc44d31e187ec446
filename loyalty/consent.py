"""The member's consents per channel and purpose, and their history: the one way to change one.

`Consent` is the current answer for (member, channel, purpose); every change also appends a `ConsentChange` (who,
when, how: the source and the actor). No row means never asked, which is no consent. (push, marketing) is cached on
the member (`marketing_consent`, `marketing_consent_at`: what the audience queries filter on) and written here in
the same transaction, so the two never disagree (`tests/invariants.py` checks it after every database test).

Withdrawal takes effect at once: nothing is queued here, and the sender re-checks the consent when it releases a
message. Setting a consent to what it already is changes nothing and records nothing; a first answer is recorded
even when it is a refusal (it answers a question never asked, and stamps `marketing_consent_at`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from loyalty import clock, events
from loyalty.checks import check_code
from loyalty.errors import InvalidInput, MemberNotFound
from loyalty.models import Consent, ConsentChange, ConsentChannel, ConsentPurpose, ConsentSource, Member

MAX_ACTOR = 64  # the column


def member_actor(member_id: int) -> str:
    """How a consent change made by the member themselves records its actor."""
    return f"member:{member_id}"


@dataclass(frozen=True)
class ConsentState:
    """One consent as the member app shows it: never asked is not granted, with no time."""

    channel: ConsentChannel
    purpose: ConsentPurpose
    granted: bool
    changed_at: datetime | None


def _check(
    channel: object, purpose: object, granted: object, source: object, actor: object
) -> tuple[ConsentChannel, ConsentPurpose, ConsentSource]:
    if not isinstance(channel, ConsentChannel):
        raise InvalidInput(f"channel must be one of {', '.join(c.value for c in ConsentChannel)}", field="channel")
    if not isinstance(purpose, ConsentPurpose):
        raise InvalidInput(f"purpose must be one of {', '.join(p.value for p in ConsentPurpose)}", field="purpose")
    if not isinstance(granted, bool):
        raise InvalidInput("granted must be true or false", field="granted")
    if not isinstance(source, ConsentSource):
        raise InvalidInput(f"source must be one of {', '.join(s.value for s in ConsentSource)}", field="source")
    check_code(actor, "actor", MAX_ACTOR)
    return channel, purpose, source


async def apply_consent(
    conn: BaseDBAsyncClient,
    member: Member,
    channel: ConsentChannel,
    purpose: ConsentPurpose,
    granted: bool,
    source: ConsentSource,
    actor: str,
    now: datetime,
) -> list[str]:
    """Inside `conn`, with `member` locked by the caller: write the consent and its change if it changes.

    Sets the member's cached columns on `member` for (push, marketing) without saving them, and returns the member
    fields it changed, for the caller's one UPDATE of the member (`loyalty.members.update_profile`, `set_consent`).
    """
    _check(channel, purpose, granted, source, actor)
    current = await Consent.filter(member_id=member.id, channel=channel, purpose=purpose).using_db(conn).first()
    if current is not None and current.granted == granted:
        return []
    if current is None:
        await Consent.create(
            member_id=member.id,
            channel=channel,
            purpose=purpose,
            granted=granted,
            source=source,
            changed_at=now,
            using_db=conn,
        )
    else:
        current.granted, current.source, current.changed_at = granted, source, now
        await current.save(using_db=conn, update_fields=["granted", "source", "changed_at"])
    await ConsentChange.create(
        member_id=member.id,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source=source,
        actor=actor,
        recorded_at=now,
        using_db=conn,
    )
    if (channel, purpose) != (ConsentChannel.PUSH, ConsentPurpose.MARKETING):
        return []
    member.marketing_consent = granted
    member.marketing_consent_at = now
    return ["marketing_consent", "marketing_consent_at"]


async def set_consent(
    member_id: int,
    channel: ConsentChannel,
    purpose: ConsentPurpose,
    granted: bool,
    source: ConsentSource,
    actor: str,
) -> ConsentState:
    """Grant or withdraw the member's consent for `channel` and `purpose`, recording who (`actor`: "member:<id>",
    "staff:<id>", "system"), when and how (`source`); returns the consent as it now is.

    One transaction under the member's lock: the consent, its change and the member's cached (push, marketing)
    consent, with a `member.updated` event when the cache moved. Errors: `InvalidInput` (channel, purpose, granted,
    source, actor), `MemberNotFound`.
    """
    _check(channel, purpose, granted, source, actor)
    now = clock.now()
    async with in_transaction() as conn:
        member = await Member.filter(id=member_id).using_db(conn).select_for_update().first()
        if member is None:
            raise MemberNotFound("no such member", field="member_id")
        changed = await apply_consent(conn, member, channel, purpose, granted, source, actor, now)
        if changed:
            member.updated_at = now
            await member.save(using_db=conn, update_fields=[*changed, "updated_at"])
            await events.emit(conn, events.MEMBER_UPDATED, member_id=member.id, payload={"fields": changed})
        found = await Consent.filter(member_id=member_id, channel=channel, purpose=purpose).using_db(conn).get()
        return ConsentState(found.channel, found.purpose, found.granted, found.changed_at)


async def consents_of(member_id: int, conn: BaseDBAsyncClient | None = None) -> list[ConsentState]:
    """Every (channel, purpose) the app can ask about, in declaration order: the member's answer, or not granted
    (no time) where they never gave one. One statement."""
    found = {(c.channel, c.purpose): c for c in await Consent.filter(member_id=member_id).using_db(conn)}
    states = []
    for channel in ConsentChannel:
        for purpose in ConsentPurpose:
            row = found.get((channel, purpose))
            states.append(
                ConsentState(channel, purpose, row.granted, row.changed_at)
                if row is not None
                else ConsentState(channel, purpose, False, None)
            )
    return states


async def has_marketing_consent(member_id: int, conn: BaseDBAsyncClient | None = None) -> bool:
    """Does the member consent to marketing pushes now (their (push, marketing) consent granted)? One statement."""
    return member_id in await members_with_marketing_consent([member_id], conn)


async def members_with_marketing_consent(member_ids: Sequence[int], conn: BaseDBAsyncClient | None = None) -> set[int]:
    """Those of `member_ids` who consent to marketing pushes now: what the sender checks when it releases marketing
    messages (one statement for a batch). Reads `consent`, the record, not the member's cache."""
    if not member_ids:
        return set()
    granted = Consent.filter(
        member_id__in=list(member_ids),
        channel=ConsentChannel.PUSH,
        purpose=ConsentPurpose.MARKETING,
        granted=True,
    ).using_db(conn)
    return set(cast(list[int], await granted.values_list("member_id", flat=True)))
