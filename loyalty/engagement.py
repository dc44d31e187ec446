"""Engagement events posted by integrations (review written, social share, app installed, survey answered).

Each active `EngagementRule` names an event type, the points it earns and optional per-member limits per day and
per month. Days and months are the member's calendar ones (`Member.timezone`), counted by the event's
`occurred_at`: a review written at 23:30 in Stockholm counts for that Stockholm day. A limit of N lets the N-th
event of the period earn and refuses the next with `LIMIT_REACHED` (nothing written).

Idempotent on (event type, external id): a retry returns the first answer; the same pair for another member or
time is `IDEMPOTENCY_KEY_REUSED`. Points are credited immediately available, as a ledger `ADJUSTMENT` whose
description names the event type (the ledger's entry kinds are fixed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import clock, ledger
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import check_code, check_occurred_at
from loyalty.errors import DomainError
from loyalty.idempotency import idempotent
from loyalty.models import EngagementEvent, EngagementRule, EntryKind, StaffRole
from loyalty.program import load_program

_EVENT_TYPE_LIMIT = 32  # EngagementRule.event_type / EngagementEvent.event_type
_EXTERNAL_ID_LIMIT = 128


class UnknownEventType(DomainError):
    code = "UNKNOWN_EVENT_TYPE"


class LimitReached(DomainError):
    code = "LIMIT_REACHED"


@dataclass(frozen=True)
class EngagementResult:
    event_id: int
    member_id: int
    event_type: str
    points: int


def _local_periods(at: datetime, zone: ZoneInfo) -> dict[str, tuple[datetime, datetime]]:
    """The member's calendar day and month containing `at`, as UTC [start, end) bounds."""
    local = at.astimezone(zone)
    day = local.date()
    month = day.replace(day=1)
    next_day = day + timedelta(days=1)
    next_month = (month + timedelta(days=32)).replace(day=1)

    def start(d: Any) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)

    return {"day": (start(day), start(next_day)), "month": (start(month), start(next_month))}


def _check(event_type: str, external_id: str, occurred_at: datetime) -> None:
    if not event_type or len(event_type) > _EVENT_TYPE_LIMIT or not event_type.isprintable():
        raise UnknownEventType(f"no active engagement rule for event type {event_type!r}", field="event_type")
    check_code(external_id, "external_id", _EXTERNAL_ID_LIMIT, label="an external id")
    check_occurred_at(occurred_at)


async def record_engagement(
    actor: Actor, member_id: int, *, event_type: str, external_id: str, occurred_at: datetime
) -> EngagementResult:
    """Credit the points of an engagement event by its rule, within the member's limits; audited.

    The actor needs the cashier role (`Forbidden`); engagement is bound to no store.
    """
    actor.require(StaffRole.CASHIER)
    _check(event_type, external_id, occurred_at)

    async def action(conn: BaseDBAsyncClient) -> EngagementResult:
        rule = await EngagementRule.get_or_none(event_type=event_type, active=True, using_db=conn)
        if rule is None:
            raise UnknownEventType(f"no active engagement rule for event type {event_type!r}", field="event_type")
        # The member lock serializes this member's events, so two concurrent ones cannot both take the last slot.
        member = await ledger.lock_member(conn, member_id)
        periods = _local_periods(occurred_at, ZoneInfo(member.timezone))
        for period, limit in (("day", rule.per_day_limit), ("month", rule.per_month_limit)):
            if limit is None:
                continue
            start, end = periods[period]
            used = (
                await EngagementEvent.filter(
                    member_id=member.id, event_type=event_type, occurred_at__gte=start, occurred_at__lt=end
                )
                .using_db(conn)
                .count()
            )
            if used >= limit:
                raise LimitReached(f"{event_type} earns at most {limit} times per {period}", field="occurred_at")
        if rule.points > 0:
            await ledger.credit_available(
                conn,
                member,
                await load_program(conn),
                rule.points,
                kind=EntryKind.ADJUSTMENT,
                description=f"engagement: {event_type}",
            )
        event = await EngagementEvent.create(
            member_id=member.id,
            event_type=event_type,
            external_id=external_id,
            occurred_at=occurred_at,
            points=rule.points,
            created_at=clock.now(),
            using_db=conn,
        )
        await record_audit(
            actor,
            "engagement.record",
            conn=conn,
            member_id=member.id,
            target=f"engagement:{event.id}",
            after={"event_type": event_type, "external_id": external_id, "points": rule.points},
        )
        return EngagementResult(event.id, member.id, event_type, rule.points)

    request = {"member": member_id, "occurred_at": occurred_at.astimezone(UTC).isoformat()}
    # Hashed: type and external id together may exceed the idempotency key's 128 characters.
    key = hashlib.sha256(f"{event_type}\0{external_id}".encode()).hexdigest()
    return await idempotent("engagement", key, request, EngagementResult, action, field="external_id")
