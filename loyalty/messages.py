"""Push messages: how producers (campaigns, automations, transactional events) owe a member a message.

A producer builds `Outgoing` values and calls `schedule`: one `PushMessage` per member and occasion, written at most
once whatever the number of runs (the unique (member, occasion) key; a second run's rows are ignored). Releasing a
due message — consent, frequency caps, quiet hours, expiry, then the inbox and one delivery per device — is the push
consumer's job (`push.consumer`, with the rules in this module).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty.models import AutomationKind, MessagePurpose, PushMessage

# Texts are cut to what the columns hold rather than refused: a long localised body must not stop a campaign.
TITLE_LIMIT = 200
BODY_LIMIT = 1000


@dataclass(frozen=True)
class Outgoing:
    """One message owed to one member for one occasion (unique per member: "campaign:12", "welcome", …)."""

    member_id: int
    occasion: str
    purpose: MessagePurpose
    title: str
    body: str
    due_at: datetime
    target: str = ""  # "offer:<id>", "reward:<id>", "voucher:<id>" or "" (home)
    urgent: bool = False
    campaign_id: int | None = None
    automation: AutomationKind | None = None
    offer_id: int | None = None
    collapse_key: str = ""
    expires_at: datetime | None = None


def localised(texts: Mapping[str, str], locale: str, default_locale: str) -> str:
    """The text for `locale` ("sv-SE" falls back to "sv"), else the default locale's, else any; "" if none."""
    for candidate in (locale, locale.split("-")[0].split("_")[0], default_locale):
        if candidate and texts.get(candidate):
            return texts[candidate]
    return next((text for text in texts.values() if text), "")


async def schedule(conn: BaseDBAsyncClient, messages: Sequence[Outgoing], now: datetime) -> None:
    """Write `messages` in one batched INSERT inside `conn`, skipping any (member, occasion) already written."""
    if not messages:
        return
    rows = [
        PushMessage(
            member_id=m.member_id,
            occasion=m.occasion,
            purpose=m.purpose,
            urgent=m.urgent,
            campaign_id=m.campaign_id,
            automation=m.automation,
            title=m.title[:TITLE_LIMIT],
            body=m.body[:BODY_LIMIT],
            target=m.target,
            offer_id=m.offer_id,
            collapse_key=m.collapse_key,
            due_at=m.due_at,
            expires_at=m.expires_at,
            created_at=now,
        )
        for m in messages
    ]
    await PushMessage.bulk_create(rows, ignore_conflicts=True, using_db=conn)
