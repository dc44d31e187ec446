"""Push messages: how producers (campaigns, automations, transactional events) owe a member a message.

A producer builds `Outgoing` values and calls `schedule`: one `PushMessage` per member and occasion, written at most
once whatever the number of runs (the unique (member, occasion) key; a second run's rows are ignored).

`release_due` releases due messages (the push consumer, `push.consumer`, calls it before sending), a batch per
transaction: the messages are claimed with ``FOR UPDATE SKIP LOCKED`` (no lease: the transaction is the claim, so a
worker killed mid-batch releases nothing), the rules read what they need in a fixed number of statements whatever
the batch, and the outcomes are written set-based. The rules, in this order, at the moment of release:

1. expired (`expires_at` ≤ now) → SUPPRESSED "expired";
2. marketing without the member's (push, marketing) opt-in now (the `Consent` record, read in the releasing
   transaction by `loyalty.consent.members_with_marketing_consent`; not the member's cache, which the audience
   queries read: an opt-out between scheduling and sending suppresses) → SUPPRESSED "consent";
3. inside quiet hours in the member's timezone (`PushPolicy.quiet_start`/`quiet_end`, may span midnight; an unknown
   timezone counts as UTC), unless transactional and urgent → `due_at` moved to the end of quiet hours (local wall
   time, DST-correct through zoneinfo: days are counted on the local calendar, then converted), still SCHEDULED:
   the caps are checked when it is finally released;
4. frequency caps per member and purpose (`PushPolicy.<purpose>_per_day` / `_per_week`, NULL = no cap) over ROLLING
   windows — the last 24 hours and the last 7 x 24 hours before now, counted on `sent_at` of SENT messages (inbox
   included), this batch's releases included. Rolling, not calendar: a calendar day would let a member get the
   day's cap at 23:59 and again at 00:01. A message over a cap → SUPPRESSED "cap", dropped rather than postponed (an
   offer pushed days late is worse than none, and postponed messages would pile up against the next window);
5. otherwise SENT (`sent_at` = now: it is in the inbox) with one `PushDelivery` per device of the member (one
   batched INSERT, unique per (message, device)); a member without a device still gets it in the inbox (SENT, no
   delivery): the inbox is the channel that needs no device.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from loyalty import clock, consent
from loyalty.models import (
    AutomationKind,
    Device,
    Member,
    MessagePurpose,
    MessageStatus,
    PushDelivery,
    PushMessage,
    PushPolicy,
)

log = logging.getLogger("klubb.messages")

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


# Suppression reasons (`PushMessage.suppressed_reason`).
EXPIRED = "expired"
NO_CONSENT = "consent"
CAPPED = "cap"
CANCELLED = "cancelled"  # the campaign was cancelled before the message was released

DAY = timedelta(days=1)
WEEK = timedelta(days=7)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown member timezone %r: quiet hours in UTC", name)
        return ZoneInfo("UTC")


def _at_local(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """`wall` on `day` in `zone`, in UTC. fold=0 (PEP 495): an ambiguous wall time (autumn) is its first instant; a
    nonexistent one (inside the spring-forward gap) is read with the offset before the change (02:30 → 03:30 summer
    time)."""
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC)


def quiet_until(now: datetime, zone: ZoneInfo, start: time | None, end: time | None) -> datetime | None:
    """When the quiet hours `start`-`end` (local wall times in `zone`, spanning midnight if start > end) that cover
    `now` end, in UTC; None if `now` is outside them or there are none (no start, no end, or start == end)."""
    if start is None or end is None:
        return None
    # Tortoise hands TimeFields back tagged UTC (use_tz); they are the member's local wall times.
    start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if start == end:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    today = local.date()
    if start < end:
        inside, end_day = start <= wall < end, today
    elif wall >= start:
        inside, end_day = True, today + DAY
    else:
        inside, end_day = wall < end, today
    if not inside:
        return None
    until = _at_local(end_day, end, zone)
    return until if until > now else None


@dataclass(frozen=True)
class Released:
    """What one `release_due` batch did: counts per outcome, and the number of deliveries owed."""

    sent: int = 0
    deliveries: int = 0
    postponed: int = 0
    suppressed: Mapping[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.sent + self.postponed + sum(self.suppressed.values())


def _due(now: datetime) -> Q:
    return Q(status=MessageStatus.SCHEDULED, due_at__lte=now)


def _caps(policy: PushPolicy, purpose: MessagePurpose) -> tuple[int | None, int | None]:
    if purpose is MessagePurpose.MARKETING:
        return policy.marketing_per_day, policy.marketing_per_week
    return policy.transactional_per_day, policy.transactional_per_week


async def current_policy(conn: BaseDBAsyncClient | None = None) -> PushPolicy:
    """The program's sending policy (`[push]` of the program file); the model's defaults before one is seeded."""
    policy = await PushPolicy.all().using_db(conn).order_by("id").first()
    # No row yet: the model's defaults (1 marketing a day, 3 a week, 10 transactional a day, no quiet hours).
    return policy if policy is not None else PushPolicy(updated_at=clock.now())


async def _sent_counts(
    conn: BaseDBAsyncClient, member_ids: Iterable[int], now: datetime
) -> dict[tuple[int, str], list[int]]:
    """(member, purpose) → [sent in the last 24 h, sent in the last 7 days], one grouped statement."""
    rows = (
        await PushMessage.filter(member_id__in=list(member_ids), status=MessageStatus.SENT, sent_at__gt=now - WEEK)
        .annotate(week=Count("id"), day=Count("id", _filter=Q(sent_at__gt=now - DAY)))
        .group_by("member_id", "purpose")
        .using_db(conn)
        .values_list("member_id", "purpose", "day", "week")
    )
    return {(int(m), str(p)): [int(d), int(w)] for m, p, d, w in rows}


async def release_due(limit: int = 500, now: datetime | None = None) -> Released:
    """Release up to `limit` due SCHEDULED messages (oldest `due_at` first) in one transaction (module docstring:
    the rules and their order). Statements per batch, whatever its size: the claim, the policy, the members'
    timezones, their consents (if marketing is released), the sent counts, the devices, then one UPDATE per outcome
    (and per distinct new due time) and one INSERT of the deliveries."""
    now = now or clock.now()
    async with in_transaction() as conn:
        # Ordered by the index's own column alone: with ", id" PostgreSQL sorted every due row per batch (a
        # campaign's 50,000 share one due_at: 58 ms a batch, not 1 ms; bench/README.md, push end to end).
        messages = (
            await PushMessage.filter(_due(now))
            .order_by("due_at")
            .limit(limit)
            .using_db(conn)
            .select_for_update(skip_locked=True)
            .only("id", "member_id", "purpose", "urgent", "due_at", "expires_at")
        )
        if not messages:
            return Released()
        policy = await current_policy(conn)
        member_ids = sorted({m.member_id for m in messages})
        timezones = dict(await Member.filter(id__in=member_ids).using_db(conn).values_list("id", "timezone"))
        marketing = {m.member_id for m in messages if m.purpose == MessagePurpose.MARKETING}
        consenting = await consent.members_with_marketing_consent(sorted(marketing), conn)
        counts = await _sent_counts(conn, member_ids, now)
        devices: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for device_id, member_id, token in (
            await Device.filter(member_id__in=member_ids).using_db(conn).values_list("id", "member_id", "token")
        ):
            devices[member_id].append((device_id, token))

        suppressed: dict[str, list[int]] = defaultdict(list)
        moved: dict[datetime, list[int]] = defaultdict(list)
        sent: list[PushMessage] = []
        zones: dict[str, ZoneInfo] = {}
        for message in messages:
            timezone = str(timezones.get(message.member_id, "UTC"))
            purpose = MessagePurpose(message.purpose)
            if message.expires_at is not None and message.expires_at <= now:
                suppressed[EXPIRED].append(message.id)
                continue
            if purpose is MessagePurpose.MARKETING and message.member_id not in consenting:
                suppressed[NO_CONSENT].append(message.id)
                continue
            if not (purpose is MessagePurpose.TRANSACTIONAL and message.urgent):
                zone = zones.get(timezone) or zones.setdefault(timezone, _zone(timezone))
                until = quiet_until(now, zone, policy.quiet_start, policy.quiet_end)
                if until is not None:
                    moved[until].append(message.id)
                    continue
            per_day, per_week = _caps(policy, purpose)
            count = counts.setdefault((message.member_id, purpose.value), [0, 0])
            if (per_day is not None and count[0] >= per_day) or (per_week is not None and count[1] >= per_week):
                suppressed[CAPPED].append(message.id)
                continue
            count[0] += 1
            count[1] += 1
            sent.append(message)

        for reason, ids in suppressed.items():
            await (
                PushMessage.filter(id__in=ids)
                .using_db(conn)
                .update(status=MessageStatus.SUPPRESSED, suppressed_reason=reason)
            )
        for until, ids in moved.items():
            await PushMessage.filter(id__in=ids).using_db(conn).update(due_at=until)
        owed = [
            PushDelivery(
                message_id=message.id,
                device_id=device_id,
                token=token,
                next_attempt_at=now,
                created_at=now,
            )
            for message in sent
            for device_id, token in devices.get(message.member_id, ())
        ]
        if sent:
            await (
                PushMessage.filter(id__in=[m.id for m in sent])
                .using_db(conn)
                .update(status=MessageStatus.SENT, sent_at=now)
            )
        if owed:
            await PushDelivery.bulk_create(owed, ignore_conflicts=True, using_db=conn)
    return Released(
        sent=len(sent),
        deliveries=len(owed),
        postponed=sum(len(ids) for ids in moved.values()),
        suppressed={reason: len(ids) for reason, ids in suppressed.items()},
    )
