"""Push campaigns: a localised message, an optional attached offer and an audience (`loyalty.audience`), scheduled by
staff and written to the members' inboxes in keyset batches by the `send-push-campaigns` job.

Life of a campaign: DRAFT (created, updated) → SCHEDULED (`schedule_campaign`: texts, audience and the attached
offer checked for the scheduled time) → SENDING (the job took it) → SENT (every message written); CANCELLED from
DRAFT, SCHEDULED or SENDING (a campaign cancelled while sending writes no further batch, and what it wrote but was not
released yet is withdrawn: SUPPRESSED "cancelled"; a message already in an inbox stays there).

Writing (`send_due_campaigns`): a campaign due is claimed with a lease (`locked_until`, the fencing token); its
audience as of `started_at` is read in member id order after `cursor_member_id`, a batch at a time, and each batch's
messages are written (`loyalty.messages.schedule`) in the same transaction as the conditional update that moves the
cursor, so a worker killed at any point resumes after the last committed batch (once its lease ends) and a member
never gets the campaign twice (the unique (member, occasion) key backs it). Only members who consent to marketing
at that moment get a message (the release checks consent again: a withdrawal meanwhile suppresses it); `targeted`
counts the messages written. A member's text is picked by their most recently seen device's locale, else the
program's default locale (`PushPolicy.default_locale`).

Figures (`campaign_figures`): targeted; sent (messages released to the inbox); delivered (FCM accepted one of its
pushes); opened (the app reported an open); converted (the attached offer redeemed by the member within
`conversion_days` of the message's `sent_at`). One statement.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from loyalty import clock
from loyalty.actors import Actor
from loyalty.audience import Query, Targeting, condition, postgres
from loyalty.audit import record_audit
from loyalty.checks import check_amount, check_text, is_whole
from loyalty.errors import DomainError, InvalidInput, NotFound
from loyalty.messages import BODY_LIMIT, CANCELLED, TITLE_LIMIT, Outgoing, current_policy, localised, schedule
from loyalty.models import (
    Device,
    LifecycleStage,
    MessagePurpose,
    MessageStatus,
    Offer,
    Program,
    PushCampaign,
    PushCampaignStatus,
    PushMessage,
    StaffRole,
)
from loyalty.offers import OfferNotFound
from loyalty.program import load_program

log = logging.getLogger("klubb.campaigns")

MAX_LOCALES = 20
MAX_INTERESTS = 20
MAX_INTEREST = 64
MAX_CONVERSION_DAYS = 90
BATCH_SIZE = 1000  # members per transaction while writing a campaign
LEASE = timedelta(minutes=5)  # a worker silent this long is taken for dead; its campaign resumes elsewhere
_LOCALE = re.compile(r"^[a-z]{2,3}([-_][A-Za-z0-9]{2,8})?$")
DEFAULT_LOCALE = "en"


class CampaignNotFound(NotFound):
    code = "CAMPAIGN_NOT_FOUND"


class CampaignNotEditable(DomainError):
    """Only a draft can be changed; only a draft or scheduled campaign can be (re)scheduled."""

    code = "CAMPAIGN_NOT_EDITABLE"


class CampaignNotCancellable(DomainError):
    code = "CAMPAIGN_NOT_CANCELLABLE"


class OfferNotRunning(DomainError):
    """The attached offer is not active or not valid at the scheduled time."""

    code = "OFFER_NOT_RUNNING"


class InvalidSchedule(DomainError):
    code = "INVALID_SCHEDULE"


class CampaignsIncomplete(Exception):
    """Some campaigns failed while writing (each logged); they resume at the next run, after their lease."""


@dataclass(frozen=True)
class CampaignSpec:
    """What staff set on a draft: the message, the attached offer, the audience, the conversion window."""

    name: str
    title: Mapping[str, str]  # locale -> text; the default locale is required
    body: Mapping[str, str]
    offer_id: int | None = None
    tier_names: Sequence[str] = ()
    min_tier_rank: int | None = None
    lifecycle_stages: Sequence[str] = ()
    birthday_month: bool = False
    interests: Sequence[str] = ()
    min_spend: int | None = None
    conversion_days: int = 7


@dataclass(frozen=True)
class DryRun:
    """How many members a campaign reaches now; of them, how many consent to marketing; of those, how many have a
    device (the ones a push can reach: the others still find it in the inbox)."""

    reach: int
    consenting: int
    with_device: int


@dataclass(frozen=True)
class Figures:
    targeted: int
    sent: int
    delivered: int
    opened: int
    converted: int


async def default_locale(conn: BaseDBAsyncClient | None = None) -> str:
    """The program's default message locale (`[push] default_locale`), "en" before any policy is seeded."""
    return (await current_policy(conn)).default_locale


def check_texts(texts: object, field: str, limit: int, locale: str) -> dict[str, str]:
    """Localised texts: 1 to `MAX_LOCALES` locales ("en", "sv-SE"), each text 1 to `limit` characters, the default
    `locale` among them. Returns them as a dict."""
    if not isinstance(texts, Mapping) or not 1 <= len(texts) <= MAX_LOCALES:
        raise InvalidInput(f"{field} needs a text for 1 to {MAX_LOCALES} locales", field=field)
    checked: dict[str, str] = {}
    for key, text in texts.items():
        if not isinstance(key, str) or not _LOCALE.match(key):
            raise InvalidInput(f"{field}: {str(key)[:20]!r} is not a locale such as en or sv-SE", field=field)
        checked[key] = check_text(text, field, limit, label=f"{field} ({key})", multiline=field == "body")
    if locale not in checked:
        raise InvalidInput(f"{field} needs a text in the default locale {locale}", field=field)
    return checked


def _check_targeting(spec: CampaignSpec, program: Program) -> Targeting:
    tier_names = {t.name for t in program.tiers}
    for name in spec.tier_names:
        if name not in tier_names:
            raise InvalidInput(f"no tier named {str(name)[:64]!r}", field="tier_names")
    ranks = [t.rank for t in program.tiers]
    if spec.min_tier_rank is not None and not is_whole(spec.min_tier_rank, min(ranks), max(ranks)):
        raise InvalidInput(f"the minimum tier rank must be {min(ranks)} to {max(ranks)}", field="min_tier_rank")
    try:
        stages = tuple(LifecycleStage(s) for s in spec.lifecycle_stages)
    except ValueError as exc:
        raise InvalidInput(
            f"a lifecycle stage is one of {', '.join(s.value for s in LifecycleStage)}", field="lifecycle_stages"
        ) from exc
    if len(spec.interests) > MAX_INTERESTS:
        raise InvalidInput(f"at most {MAX_INTERESTS} interests", field="interests")
    interests = tuple(check_text(i, "interests", MAX_INTEREST, label="an interest").strip() for i in spec.interests)
    if spec.min_spend is not None:
        check_amount(spec.min_spend, "min_spend", label="the minimum spend")
    if not isinstance(spec.birthday_month, bool):
        raise InvalidInput("birthday month is true or false", field="birthday_month")
    return Targeting(
        tier_names=tuple(dict.fromkeys(spec.tier_names)),
        min_tier_rank=spec.min_tier_rank,
        lifecycle_stages=tuple(dict.fromkeys(stages)),
        birthday_month=spec.birthday_month,
        interests=tuple(dict.fromkeys(interests)),
        min_spend=spec.min_spend,
    )


async def _checked_values(spec: CampaignSpec) -> dict[str, Any]:
    """The campaign columns `spec` sets, checked (`InvalidInput`, `OfferNotFound`)."""
    name = check_text(spec.name, "name", 100).strip()
    locale = await default_locale()
    title = check_texts(spec.title, "title", TITLE_LIMIT, locale)
    body = check_texts(spec.body, "body", BODY_LIMIT, locale)
    targeting = _check_targeting(spec, await load_program())
    if not is_whole(spec.conversion_days, 1, MAX_CONVERSION_DAYS):
        raise InvalidInput(f"conversion days must be 1 to {MAX_CONVERSION_DAYS}", field="conversion_days")
    if spec.offer_id is not None and not await Offer.exists(id=spec.offer_id):
        raise OfferNotFound("no such offer", field="offer_id")
    return {
        "name": name,
        "title": title,
        "body": body,
        "offer_id": spec.offer_id,
        "tier_names": list(targeting.tier_names),
        "min_tier_rank": targeting.min_tier_rank,
        "lifecycle_stages": [s.value for s in targeting.lifecycle_stages],
        "birthday_month": targeting.birthday_month,
        "interests": list(targeting.interests),
        "min_spend": targeting.min_spend,
        "conversion_days": spec.conversion_days,
    }


def targeting_of(campaign: PushCampaign) -> Targeting:
    return Targeting(
        tier_names=tuple(campaign.tier_names),
        min_tier_rank=campaign.min_tier_rank,
        lifecycle_stages=tuple(LifecycleStage(s) for s in campaign.lifecycle_stages),
        birthday_month=campaign.birthday_month,
        interests=tuple(campaign.interests),
        min_spend=campaign.min_spend,
    )


def _audited(campaign: PushCampaign) -> dict[str, Any]:
    return {
        "status": campaign.status.value,
        "name": campaign.name,
        "offer_id": campaign.offer_id,
        "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
        "targeting": {k: v for k, v in asdict(targeting_of(campaign)).items()},
    }


# --- staff actions ------------------------------------------------------------------------------


async def create_campaign(actor: Actor, spec: CampaignSpec) -> PushCampaign:
    """A new DRAFT campaign; audited. `Forbidden` below manager; `InvalidInput` (texts, targeting, conversion days),
    `OfferNotFound`."""
    actor.require(StaffRole.MANAGER)
    values = await _checked_values(spec)
    now = clock.now()
    async with in_transaction() as conn:
        campaign = await PushCampaign.create(
            **values, created_by=f"{actor.kind}:{actor.id}", created_at=now, updated_at=now, using_db=conn
        )
        await record_audit(
            actor, "push_campaign.create", conn=conn, target=f"push_campaign:{campaign.id}", after=_audited(campaign)
        )
    return campaign


async def _locked(conn: BaseDBAsyncClient, campaign_id: int) -> PushCampaign:
    campaign = await PushCampaign.filter(id=campaign_id).using_db(conn).select_for_update().first()
    if campaign is None:
        raise CampaignNotFound("no such push campaign", field="campaign_id")
    return campaign


async def get_campaign(campaign_id: int) -> PushCampaign:
    campaign = await PushCampaign.get_or_none(id=campaign_id)
    if campaign is None:
        raise CampaignNotFound("no such push campaign", field="campaign_id")
    return campaign


async def update_campaign(actor: Actor, campaign_id: int, spec: CampaignSpec) -> PushCampaign:
    """Replace a DRAFT's message, offer and audience; audited. `CampaignNotFound`, `CampaignNotEditable` (not a
    draft), and the errors of `create_campaign`."""
    actor.require(StaffRole.MANAGER)
    values = await _checked_values(spec)
    async with in_transaction() as conn:
        campaign = await _locked(conn, campaign_id)
        if campaign.status != PushCampaignStatus.DRAFT:
            raise CampaignNotEditable(f"a {campaign.status.value} campaign cannot be changed", field="campaign_id")
        before = _audited(campaign)
        campaign.update_from_dict({**values, "updated_at": clock.now()})
        await _save_audited(conn, actor, "update", campaign, before)
    return campaign


async def schedule_campaign(actor: Actor, campaign_id: int, at: datetime | None = None) -> PushCampaign:
    """Schedule a DRAFT (or move a SCHEDULED campaign) to `at` (now when None); audited.

    `InvalidSchedule` for a time without a timezone or in the past (a minute of slack), `CampaignNotEditable` once
    sending started, `OfferNotRunning` when the attached offer is inactive or not valid at `at`; the texts are checked
    again against the current default locale (`InvalidInput`).
    """
    actor.require(StaffRole.MANAGER)
    now = clock.now()
    when = now if at is None else at
    if when.tzinfo is None:
        raise InvalidSchedule("the scheduled time needs a timezone", field="scheduled_at")
    if when < now - timedelta(minutes=1):
        raise InvalidSchedule("the scheduled time is in the past", field="scheduled_at")
    locale = await default_locale()
    async with in_transaction() as conn:
        campaign = await _locked(conn, campaign_id)
        if campaign.status not in (PushCampaignStatus.DRAFT, PushCampaignStatus.SCHEDULED):
            raise CampaignNotEditable(f"a {campaign.status.value} campaign cannot be scheduled", field="campaign_id")
        check_texts(campaign.title, "title", TITLE_LIMIT, locale)
        check_texts(campaign.body, "body", BODY_LIMIT, locale)
        if campaign.offer_id is not None:
            offer = await Offer.get_or_none(id=campaign.offer_id, using_db=conn)
            if offer is None or not offer.active or not offer.valid_from <= when < offer.valid_until:
                raise OfferNotRunning("the attached offer is not running at the scheduled time", field="offer_id")
        before = _audited(campaign)
        campaign.status = PushCampaignStatus.SCHEDULED
        campaign.scheduled_at = when
        campaign.updated_at = now
        await _save_audited(conn, actor, "schedule", campaign, before)
    return campaign


async def _save_audited(
    conn: BaseDBAsyncClient, actor: Actor, action: str, campaign: PushCampaign, before: dict[str, Any]
) -> None:
    """Save a changed campaign and audit the change (`push_campaign.<action>`, before/after) in `conn`."""
    await campaign.save(using_db=conn)
    await record_audit(
        actor,
        f"push_campaign.{action}",
        conn=conn,
        target=f"push_campaign:{campaign.id}",
        before=before,
        after=_audited(campaign),
    )


async def cancel_campaign(actor: Actor, campaign_id: int) -> PushCampaign:
    """Cancel a DRAFT, SCHEDULED or SENDING campaign: no further batch is written, and its messages not released yet
    are withdrawn (SUPPRESSED "cancelled"); audited.
    `CampaignNotFound`, `CampaignNotCancellable` (SENT or CANCELLED)."""
    actor.require(StaffRole.MANAGER)
    async with in_transaction() as conn:
        campaign = await _locked(conn, campaign_id)
        if campaign.status in (PushCampaignStatus.SENT, PushCampaignStatus.CANCELLED):
            raise CampaignNotCancellable(f"a {campaign.status.value} campaign cannot be cancelled", field="campaign_id")
        before = _audited(campaign)
        campaign.status = PushCampaignStatus.CANCELLED
        campaign.updated_at = clock.now()
        campaign.locked_until = None
        await _save_audited(conn, actor, "cancel", campaign, before)
        await (
            PushMessage.filter(campaign_id=campaign.id, status=MessageStatus.SCHEDULED)
            .using_db(conn)
            .update(status=MessageStatus.SUPPRESSED, suppressed_reason=CANCELLED)
        )
    return campaign


async def list_campaigns(
    actor: Actor, *, limit: int, before_id: int | None = None, status: PushCampaignStatus | None = None
) -> list[PushCampaign]:
    """Campaigns newest first (id descending), `limit` of them, below `before_id`; manager and above."""
    actor.require(StaffRole.MANAGER)
    query = PushCampaign.all()
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    if status is not None:
        query = query.filter(status=status)
    return list(await query.order_by("-id").limit(limit))


# --- the audience -------------------------------------------------------------------------------


async def dry_run(campaign: PushCampaign, at: datetime | None = None) -> DryRun:
    """Who `campaign` reaches at `at` (now): counted in one statement over the members (plus at most two small reads
    of distinct timezones and interests, `loyalty.audience.condition`)."""
    at = clock.now() if at is None else at
    conn = connections.get("default")
    program = await load_program()
    query = Query(postgres(conn))
    where = await condition(conn, query, targeting_of(campaign), program, at)
    consent = '"m"."marketing_consent"'  # a boolean on PostgreSQL, 0 or 1 on SQLite: true as it stands
    text = (
        'SELECT COUNT(*) AS "reach",'  # noqa: S608 - the condition's text is ours, its values parameters
        f' COALESCE(SUM(CASE WHEN {consent} THEN 1 ELSE 0 END), 0) AS "consenting",'
        f' COALESCE(SUM(CASE WHEN {consent} AND "m"."id" IN (SELECT "member_id" FROM "device")'
        ' THEN 1 ELSE 0 END), 0) AS "with_device"'
        f' FROM "member" AS "m" WHERE {where}'
    )
    row = (await conn.execute_query_dict(text, query.values))[0]
    return DryRun(reach=int(row["reach"]), consenting=int(row["consenting"]), with_device=int(row["with_device"]))


async def _audience_batch(
    conn: BaseDBAsyncClient, campaign: PushCampaign, program: Program, after_id: int, limit: int
) -> list[int]:
    """The next `limit` consenting member ids of the audience (as of `started_at`) after `after_id`."""
    assert campaign.started_at is not None
    query = Query(postgres(conn))
    where = await condition(conn, query, targeting_of(campaign), program, campaign.started_at)
    text = (
        f'SELECT "m"."id" FROM "member" AS "m" WHERE {where}'  # noqa: S608
        f' AND "m"."marketing_consent" AND "m"."id" > {query.param(after_id)}'
        f' ORDER BY "m"."id" LIMIT {query.param(limit)}'
    )
    return [int(row["id"]) for row in await conn.execute_query_dict(text, query.values)]


async def latest_locales(conn: BaseDBAsyncClient, member_ids: Sequence[int]) -> dict[int, str]:
    """Each member's most recently seen device's locale (members without a device are missing)."""
    rows = await (
        Device.filter(member_id__in=member_ids)
        .using_db(conn)
        .order_by("member_id", "last_seen_at", "id")
        .values_list("member_id", "locale")
    )
    return {int(member_id): str(locale) for member_id, locale in rows}  # the latest of each member comes last


# --- the job ------------------------------------------------------------------------------------


class _LeaseLost(Exception):
    """The campaign was cancelled, or another worker took it over, since this worker's last batch."""


def _due(at: datetime) -> Q:
    scheduled = Q(status=PushCampaignStatus.SCHEDULED, scheduled_at__lte=at)
    abandoned = Q(status=PushCampaignStatus.SENDING) & (Q(locked_until__isnull=True) | Q(locked_until__lt=at))
    return scheduled | abandoned


async def _claim(campaign: PushCampaign, now: datetime) -> datetime | None:
    """Take `campaign` for this worker: its lease (the fencing token), or None if it is no longer due."""
    lease = now + LEASE
    started = campaign.started_at or now
    taken = await PushCampaign.filter(_due(now), id=campaign.id).update(
        status=PushCampaignStatus.SENDING, started_at=started, locked_until=lease, updated_at=now
    )
    if taken != 1:
        return None
    campaign.status, campaign.started_at, campaign.locked_until = PushCampaignStatus.SENDING, started, lease
    return lease


def _message(
    campaign: PushCampaign, offer: Offer | None, member_id: int, locale: str, default: str, now: datetime
) -> Outgoing:
    return Outgoing(
        member_id=member_id,
        occasion=f"campaign:{campaign.id}",
        purpose=MessagePurpose.MARKETING,
        title=localised(campaign.title, locale, default),
        body=localised(campaign.body, locale, default),
        due_at=now,
        target=f"offer:{offer.id}" if offer is not None else "",
        campaign_id=campaign.id,
        offer_id=offer.id if offer is not None else None,
        collapse_key=f"campaign:{campaign.id}",
        expires_at=offer.valid_until if offer is not None else None,
    )


async def _write_batch(
    campaign: PushCampaign, offer: Offer | None, program: Program, lease: datetime, default: str, batch_size: int
) -> tuple[datetime, int] | None:
    """Write the next batch of `campaign`'s messages and move its cursor, in one transaction; the new lease and the
    number written, or None when the audience is exhausted. `_LeaseLost` if the campaign is no longer ours."""
    async with in_transaction() as conn:
        now = clock.now()
        cursor = campaign.cursor_member_id
        member_ids = await _audience_batch(conn, campaign, program, cursor, batch_size)
        if not member_ids:
            return None
        locales = await latest_locales(conn, member_ids)
        messages = [_message(campaign, offer, m, locales.get(m, default), default, now) for m in member_ids]
        await schedule(conn, messages, now)
        renewed = now + LEASE
        moved = (
            await PushCampaign.filter(
                id=campaign.id, status=PushCampaignStatus.SENDING, locked_until=lease, cursor_member_id=cursor
            )
            .using_db(conn)
            .update(cursor_member_id=member_ids[-1], targeted=campaign.targeted + len(member_ids), locked_until=renewed)
        )
        if moved != 1:
            raise _LeaseLost  # rolls the batch back
    campaign.cursor_member_id, campaign.targeted, campaign.locked_until = (
        member_ids[-1],
        campaign.targeted + len(member_ids),
        renewed,
    )
    return renewed, len(member_ids)


async def send_campaign(campaign: PushCampaign, batch_size: int = BATCH_SIZE) -> int:
    """Write a due campaign's remaining messages, then mark it SENT; returns the messages this call wrote (0 if
    another worker holds it or it is not due)."""
    lease = await _claim(campaign, clock.now())
    if lease is None:
        return 0
    program = await load_program()
    default = await default_locale()
    offer = await Offer.get_or_none(id=campaign.offer_id) if campaign.offer_id is not None else None
    written = 0
    # An attached offer that ended meanwhile: every message would expire unread, so none is written.
    if offer is None or offer.valid_until > clock.now():
        while True:
            try:
                step = await _write_batch(campaign, offer, program, lease, default, batch_size)
            except _LeaseLost:
                log.warning("push campaign %s: cancelled or taken over; this worker stops", campaign.id)
                return written
            if step is None:
                break
            lease, count = step
            written += count
    now = clock.now()
    await PushCampaign.filter(id=campaign.id, status=PushCampaignStatus.SENDING, locked_until=lease).update(
        status=PushCampaignStatus.SENT, finished_at=now, locked_until=None, updated_at=now
    )
    return written


async def send_due_campaigns(batch_size: int = BATCH_SIZE) -> int:
    """The job `send-push-campaigns`: every SCHEDULED campaign due (and every SENDING one whose worker's lease
    ended) written out. Returns the messages written. A failing campaign is logged and the others go on; the run then
    raises `CampaignsIncomplete`."""
    written, failed = 0, []
    for campaign in await PushCampaign.filter(_due(clock.now())).order_by("scheduled_at", "id"):
        try:
            written += await send_campaign(campaign, batch_size)
        except Exception:
            log.exception("push campaign %s failed; it resumes at the next run", campaign.id)
            failed.append(campaign.id)
    if failed:
        raise CampaignsIncomplete(f"push campaigns {', '.join(map(str, failed))} failed; {written} messages written")
    return written


# --- figures ------------------------------------------------------------------------------------


async def campaign_figures(campaign_id: int) -> Figures:
    """targeted, sent, delivered, opened, converted (see the module docstring): one statement after the campaign."""
    campaign = await get_campaign(campaign_id)
    conn = connections.get("default")
    query = Query(postgres(conn))
    sent = query.param(MessageStatus.SENT.value)
    if campaign.offer_id is None:
        converted = "0"
    else:
        offer = query.param(campaign.offer_id)
        if query.postgres:
            until = f'"pm"."sent_at" + CAST({query.param(timedelta(days=campaign.conversion_days))} AS INTERVAL)'
            redeemed, start = '"r"."redeemed_at"', '"pm"."sent_at"'
        else:  # ISO text with an offset: julianday reads it as the instant it is
            until = f'julianday("pm"."sent_at") + {query.param(campaign.conversion_days)}'
            redeemed, start = 'julianday("r"."redeemed_at")', 'julianday("pm"."sent_at")'
        converted = (
            "COALESCE(SUM(CASE WHEN"  # noqa: S608 - our text, values as parameters
            ' "pm"."sent_at" IS NOT NULL AND EXISTS (SELECT 1 FROM "offer_redemption" AS "r"'
            f' WHERE "r"."offer_id" = {offer} AND "r"."member_id" = "pm"."member_id"'
            f" AND {redeemed} >= {start} AND {redeemed} < {until}) THEN 1 ELSE 0 END), 0)"
        )
    text = (
        f'SELECT COALESCE(SUM(CASE WHEN "pm"."status" = {sent} THEN 1 ELSE 0 END), 0) AS "sent",'  # noqa: S608
        ' COALESCE(SUM(CASE WHEN "pm"."delivered_at" IS NOT NULL THEN 1 ELSE 0 END), 0) AS "delivered",'
        ' COALESCE(SUM(CASE WHEN "pm"."opened_at" IS NOT NULL THEN 1 ELSE 0 END), 0) AS "opened",'
        f' {converted} AS "converted"'
        f' FROM "push_message" AS "pm" WHERE "pm"."campaign_id" = {query.param(campaign.id)}'
    )
    row = (await conn.execute_query_dict(text, query.values))[0]
    return Figures(
        targeted=campaign.targeted,
        sent=int(row["sent"]),
        delivered=int(row["delivered"]),
        opened=int(row["opened"]),
        converted=int(row["converted"]),
    )
