"""Paid membership: the plans, each member's membership as a state machine driven by payment events, its benefits.

klubb takes no payments. The shop's payment system reports each payment through `record_membership_payment`
(the staff API's `membershipPaymentRecord`), idempotent on (payment id, outcome): a replay returns the first
result, the same pair with other content is `DuplicateIdempotencyKey` (field `payment_id`).

States (`MembershipStatus`), one `Membership` row per member:

- SUCCEEDED payment: without a membership, or after a lapse, it starts ACTIVE for one period from the payment's
  `occurred_at`; otherwise it renews: the period extends from the current `period_end` (ACTIVE, in GRACE after a
  failed renewal, or CANCELLED: a payment reactivates a cancelled membership). A payment for another plan switches
  the plan at once (upgrade or downgrade: the benefits of the new plan apply from the payment on; the period still
  extends from the current end). A retired plan (`active = false`) renews its members but starts none.
- FAILED payment: ACTIVE → GRACE with `grace_until = period_end + grace_days`; the benefits stay during grace.
  Anything else is only recorded.
- REFUNDED: names the original succeeded payment (`refund_of`); the amount is at most what is left of it
  (`RefundExceedsPayment`). A refund that leaves nothing of the payment of the current period ends the membership
  now (LAPSED); other refunds are only recorded.
- `cancel_membership`: ACTIVE → CANCELLED, benefits until `period_end`, then LAPSED (a later successful payment
  reactivates it). In grace (the period is over and unpaid) cancelling lapses it at once.
- The `lapse-memberships` job (`lapse_due`): ACTIVE past `period_end` without a renewal payment goes to GRACE (a
  renewal the payment system has not reported yet) until `period_end + grace_days`; GRACE past `grace_until` and
  CANCELLED past `period_end` go to LAPSED. `due_at` is when the job must look next (index `status, due_at`).

Periods are months in the program's timezone on the wall clock: one month after Jan 31 00:00 is Feb 28 (29) 00:00,
the next Mar 28; a year after Feb 29 is Feb 28; the local time of day stays the same across DST.

Benefits (`Benefits`) are decided from the stored times against the request's `now`, never from the status
alone, so a membership whose time ran out gives nothing even before the job ran: ACTIVE and GRACE give benefits while
`now < grace_until` (an ACTIVE membership stores the grace it would get, `period_end + grace_days`), CANCELLED while
`now < period_end`. `effective_status` is the status the member sees. The benefits: the plan's earn multiplier
(multiplied with the tier's and the campaigns', `loyalty.earning`), its included offers (an offer named by a plan is
for that plan's members only, `loyalty.offers`), its early-access rank (offers and rewards with
`min_membership_rank`), and the free-delivery flag (shown; klubb delivers nothing).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from loyalty import clock, events
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import MAX_MONEY, check_amount, check_code, check_occurred_at, check_text, is_whole
from loyalty.errors import CurrencyMismatch, DomainError, InvalidInput, MoneyText, NotFound
from loyalty.idempotency import idempotent
from loyalty.ledger import lock_member, lock_member_with_program_version
from loyalty.models import (
    Member,
    Membership,
    MembershipPayment,
    MembershipPlan,
    MembershipStatus,
    Offer,
    PaymentOutcome,
    PlanPeriod,
    Program,
    StaffRole,
)
from loyalty.program import cached_plans, current_configuration, forget_cached_program, load_program

MAX_PAYMENT_ID = 64  # the column
MAX_PLAN_CODE = 32
AUDIT_PAYMENT = "membership.payment"
AUDIT_CANCEL = "membership.cancel"
# Statuses that give benefits while their time lasts (`benefits_until`).
GIVING = (MembershipStatus.ACTIVE, MembershipStatus.GRACE, MembershipStatus.CANCELLED)


class PlanUnknown(NotFound):
    code = "PLAN_UNKNOWN"


class PlanRetired(DomainError):
    """The plan takes no new members (its existing members still renew)."""

    code = "PLAN_RETIRED"


class PaymentNotFound(NotFound):
    """The refund names no succeeded payment of this member."""

    code = "PAYMENT_NOT_FOUND"


class RefundExceedsPayment(DomainError):
    """More than is left of the payment (`amount_left`, minor units) to refund."""

    code = "REFUND_EXCEEDS_PAYMENT"

    def __init__(self, *, amount_left: int) -> None:
        super().__init__(f"only {amount_left} of this payment is left to refund", field="amount")
        self.amount_left = amount_left

    def describe(self, money: MoneyText) -> str:
        return f"only {money(self.amount_left)} of this payment is left to refund"


class MembershipNotActive(DomainError):
    """Nothing to cancel: no membership, or one that has lapsed."""

    code = "MEMBERSHIP_NOT_ACTIVE"


# --- periods ----------------------------------------------------------------------------------------


def add_months(at: datetime, months: int, timezone: str) -> datetime:
    """`at` plus `months` calendar months on the wall clock of `timezone` (the day clamped to the month's last)."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    wall = local.replace(tzinfo=None).replace(year=year, month=month, day=day)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def period_after(start: datetime, period: PlanPeriod, timezone: str) -> datetime:
    """The end of the period that starts at `start`."""
    return add_months(start, 1 if period == PlanPeriod.MONTHLY else 12, timezone)


# --- what a membership gives ------------------------------------------------------------------------


def benefits_until(membership: Membership) -> datetime | None:
    """Until when `membership` gives benefits (exclusive), whatever the job has done yet; None once lapsed."""
    if membership.status in (MembershipStatus.ACTIVE, MembershipStatus.GRACE):
        return membership.grace_until
    if membership.status == MembershipStatus.CANCELLED:
        return membership.period_end
    return None


def gives_benefits(membership: Membership | None, at: datetime) -> bool:
    until = benefits_until(membership) if membership is not None else None
    return until is not None and at < until


def effective_status(membership: Membership, at: datetime) -> MembershipStatus:
    """The status as of `at`: LAPSED once the benefits ended, GRACE for an ACTIVE one past its period."""
    if not gives_benefits(membership, at):
        return MembershipStatus.LAPSED
    if membership.status == MembershipStatus.ACTIVE and at >= membership.period_end:
        return MembershipStatus.GRACE
    return membership.status


@dataclass(frozen=True)
class Benefits:
    """What a membership gives now: its plan's benefits."""

    plan_id: int
    plan_code: str
    earn_multiplier: Decimal
    free_delivery: bool
    early_access_rank: int
    included_offers: tuple[str, ...]

    @classmethod
    def of(cls, plan: MembershipPlan) -> Benefits:
        return cls(
            plan_id=plan.id,
            plan_code=plan.code,
            earn_multiplier=Decimal(plan.earn_multiplier),
            free_delivery=plan.free_delivery,
            early_access_rank=plan.early_access_rank,
            included_offers=tuple(plan.included_offers),
        )


def benefit_plan_sql(member_column: str) -> str:
    """A scalar subquery: the plan id of the membership of the member `member_column` if it gives benefits at the
    read's `now`, else NULL. Takes `benefit_plan_params(at)` (in this order) where it stands."""
    return (
        '(SELECT "ms"."plan_id" FROM "membership" AS "ms"'  # noqa: S608 - our text, values as parameters
        f' WHERE "ms"."member_id" = {member_column}'
        ' AND (("ms"."status" IN (?, ?) AND "ms"."grace_until" > ?) OR ("ms"."status" = ? AND "ms"."period_end" > ?)))'
    )


def benefit_plan_params(at: datetime) -> list[Any]:
    return [MembershipStatus.ACTIVE.value, MembershipStatus.GRACE.value, at, MembershipStatus.CANCELLED.value, at]


def giving_benefits(at: datetime) -> Q:
    """The ORM condition on `Membership` of `benefit_plan_sql`."""
    return Q(status__in=[MembershipStatus.ACTIVE, MembershipStatus.GRACE], grace_until__gt=at) | Q(
        status=MembershipStatus.CANCELLED, period_end__gt=at
    )


def benefits_of_plan(plans: Sequence[MembershipPlan], plan_id: int | None) -> Benefits | None:
    """The benefits of the plan `plan_id` among `plans` (None for None)."""
    if plan_id is None:
        return None
    plan = next((p for p in plans if p.id == plan_id), None)
    return Benefits.of(plan) if plan is not None else None


async def benefits_for(member_id: int, at: datetime, conn: BaseDBAsyncClient | None = None) -> Benefits | None:
    """The member's membership benefits at `at` (None without a membership giving any): one statement, plans cached."""
    rows = await Membership.filter(giving_benefits(at), member_id=member_id).using_db(conn).values("plan_id")
    return await plan_benefits(int(rows[0]["plan_id"])) if rows else None


async def benefits_of_member(member: Any, at: datetime, conn: BaseDBAsyncClient | None = None) -> Benefits | None:
    """The benefits of `member` (a `MemberRow`, which carries its membership's plan as of its read at `at`: no
    statement; or a `Member`: one statement) at `at`."""
    if hasattr(member, "membership_plan_id"):
        return await plan_benefits(member.membership_plan_id)
    return await benefits_for(member.id, at, conn)


async def plan_benefits(plan_id: int | None) -> Benefits | None:
    """The benefits of the plan `plan_id` from the cached plans (read again for a plan created since)."""
    if plan_id is None:
        return None
    plans = await cached_plans()
    if all(p.id != plan_id for p in plans):
        forget_cached_program()
        plans = await cached_plans()
    return benefits_of_plan(plans, plan_id)


def offer_is_for(
    offer_name: str, min_membership_rank: int | None, plans: Sequence[MembershipPlan], benefits: Benefits | None
) -> bool:
    """The membership rules of offer targeting: an offer named by a plan's `included_offers` is for members whose
    membership (giving benefits) includes it; `min_membership_rank` needs the plan's early-access rank at least that."""
    if min_membership_rank is not None and (benefits is None or benefits.early_access_rank < min_membership_rank):
        return False
    included_by_some = any(offer_name in plan.included_offers for plan in plans)
    return not included_by_some or (benefits is not None and offer_name in benefits.included_offers)


def membership_rank(benefits: Benefits | None) -> int:
    return benefits.early_access_rank if benefits is not None else 0


# --- the member's view ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipView:
    """A membership as the app and the till show it (`membership_of`)."""

    membership: Membership
    plan: MembershipPlan
    status: MembershipStatus  # effective, as of the read
    renews_at: datetime | None  # the period end, when a renewal is expected (ACTIVE)
    ends_at: datetime | None  # when the benefits end without a payment (CANCELLED: period end; GRACE: grace end)
    benefits: Benefits | None  # None once lapsed


def view(membership: Membership, plan: MembershipPlan, at: datetime) -> MembershipView:
    status = effective_status(membership, at)
    return MembershipView(
        membership=membership,
        plan=plan,
        status=status,
        renews_at=membership.period_end if status == MembershipStatus.ACTIVE else None,
        ends_at=(
            membership.period_end
            if status == MembershipStatus.CANCELLED
            else membership.grace_until
            if status == MembershipStatus.GRACE
            else None
        ),
        benefits=Benefits.of(plan) if status != MembershipStatus.LAPSED else None,
    )


async def memberships_of(member_ids: Sequence[int], at: datetime) -> dict[int, MembershipView]:
    """The members' memberships (lapsed ones too) by member id: one statement, plans cached."""
    if not member_ids:
        return {}
    plans = {plan.id: plan for plan in await cached_plans()}
    found = await Membership.filter(member_id__in=list(member_ids))
    if any(m.plan_id not in plans for m in found):  # a plan created since the cache was read
        forget_cached_program()
        plans = {plan.id: plan for plan in await cached_plans()}
    return {m.member_id: view(m, plans[m.plan_id], at) for m in found}


# --- payments ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRequest:
    member_id: int
    plan_code: str
    payment_id: str
    outcome: PaymentOutcome
    amount: int  # minor units
    currency: str
    occurred_at: datetime
    refund_of: str | None = None  # REFUNDED: the succeeded payment's id


@dataclass(frozen=True)
class PaymentRecorded:
    """The answer to a payment event (replayed as it was for a retry)."""

    payment_record_id: int
    member_id: int
    outcome: PaymentOutcome
    status: MembershipStatus | None  # the membership after it (None: the member has none)
    plan_code: str | None
    period_end: datetime | None
    grace_until: datetime | None
    events: list[str]  # the membership events it caused, in order


def _check_payment(request: PaymentRequest) -> None:
    check_code(request.payment_id, "payment_id", MAX_PAYMENT_ID, label="a payment id")
    check_code(request.plan_code, "plan_code", MAX_PLAN_CODE, label="a plan code")
    if not isinstance(request.outcome, PaymentOutcome):
        raise InvalidInput("the outcome is succeeded, failed or refunded", field="outcome")
    check_amount(request.amount, "amount", allow_zero=request.outcome == PaymentOutcome.FAILED)
    currency = request.currency
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise InvalidInput("currency must be an ISO 4217 code such as EUR", field="currency")
    check_occurred_at(request.occurred_at)
    if request.outcome == PaymentOutcome.REFUNDED:
        if request.refund_of is None:
            raise InvalidInput("a refund names the payment it refunds", field="refund_of")
        check_code(request.refund_of, "refund_of", MAX_PAYMENT_ID, label="the refunded payment id")
    elif request.refund_of is not None:
        raise InvalidInput("only a refund names another payment", field="refund_of")


def _document(request: PaymentRequest) -> dict[str, Any]:
    return {
        "member": request.member_id,
        "plan": request.plan_code,
        "amount": request.amount,
        "currency": request.currency,
        "occurred_at": request.occurred_at.astimezone(UTC).isoformat(),
        "refund_of": request.refund_of,
    }


def _snapshot(membership: Membership | None) -> dict[str, Any] | None:
    if membership is None:
        return None
    return {
        "status": membership.status.value,
        "plan_id": membership.plan_id,
        "period_end": membership.period_end.isoformat(),
        "grace_until": membership.grace_until.isoformat() if membership.grace_until else None,
    }


def _event_payload(membership: Membership, plan: MembershipPlan) -> dict[str, Any]:
    return {
        "plan": plan.code,
        "status": membership.status.value,
        "period_end": membership.period_end.isoformat(),
        "grace_until": membership.grace_until.isoformat() if membership.grace_until else None,
    }


def _start(membership: Membership, plan: MembershipPlan, program: Program, start: datetime, now: datetime) -> None:
    membership.plan_id = plan.id
    membership.status = MembershipStatus.ACTIVE
    membership.started_at = start
    membership.period_start = start
    membership.period_end = period_after(start, plan.period, program.timezone)
    membership.grace_until = membership.period_end + timedelta(days=plan.grace_days)
    membership.cancelled_at = None
    membership.lapsed_at = None
    membership.due_at = membership.period_end
    membership.updated_at = now


def _lapse(membership: Membership, now: datetime) -> None:
    membership.status = MembershipStatus.LAPSED
    membership.lapsed_at = now
    membership.grace_until = None
    membership.due_at = now
    membership.updated_at = now


async def _succeeded(
    conn: BaseDBAsyncClient,
    request: PaymentRequest,
    member: Member,
    plan: MembershipPlan,
    program: Program,
    membership: Membership | None,
    now: datetime,
    outbox: events.Outbox,
) -> tuple[Membership, datetime, datetime]:
    renewing = (
        membership is not None
        and membership.status != MembershipStatus.LAPSED
        and gives_benefits(membership, request.occurred_at)
    )
    if not plan.active and not (renewing and membership is not None and membership.plan_id == plan.id):
        raise PlanRetired("this plan takes no new members", field="plan_code")
    if membership is None:
        membership = Membership(member_id=member.id)
        _start(membership, plan, program, request.occurred_at, now)
        await membership.save(using_db=conn)
        kind = events.MEMBERSHIP_STARTED
    elif not renewing:
        _start(membership, plan, program, request.occurred_at, now)
        await membership.save(using_db=conn)
        kind = events.MEMBERSHIP_STARTED
    else:
        start = membership.period_end
        membership.plan_id = plan.id  # a plan change takes effect at once
        membership.status = MembershipStatus.ACTIVE
        membership.period_start = start
        membership.period_end = period_after(start, plan.period, program.timezone)
        membership.grace_until = membership.period_end + timedelta(days=plan.grace_days)
        membership.cancelled_at = None
        membership.due_at = membership.period_end
        membership.updated_at = now
        await membership.save(using_db=conn)
        kind = events.MEMBERSHIP_RENEWED
    outbox.add(kind, member_id=member.id, payload=_event_payload(membership, plan))
    return membership, membership.period_start, membership.period_end


def _failed(
    membership: Membership | None, plans: Sequence[MembershipPlan], at: datetime, now: datetime, outbox: events.Outbox
) -> bool:
    if membership is None or membership.status != MembershipStatus.ACTIVE or not gives_benefits(membership, at):
        return False  # only recorded: nothing was going to renew
    current = next(p for p in plans if p.id == membership.plan_id)
    membership.status = MembershipStatus.GRACE
    membership.grace_until = membership.period_end + timedelta(days=current.grace_days)
    membership.due_at = membership.grace_until
    membership.updated_at = now
    outbox.add(events.MEMBERSHIP_GRACE, member_id=membership.member_id, payload=_event_payload(membership, current))
    return True


async def record_membership_payment(actor: Actor, request: PaymentRequest) -> PaymentRecorded:
    """Record a payment event of the shop's payment system and move the membership (the module docstring).

    The actor needs the manager role (a staff member, or an integration's API key with that role): `Forbidden`.
    Refused, with nothing written: `InvalidInput` (field at fault), `MemberNotFound`, `PlanUnknown`, `PlanRetired`,
    `CurrencyMismatch` (not the plan's currency), `PaymentNotFound` (a refund of no succeeded payment of this
    member, or of another plan), `RefundExceedsPayment`, `DuplicateIdempotencyKey` (field `payment_id`: this payment
    id and outcome were recorded with other content). A replay answers as the first time.
    """
    actor.require(StaffRole.MANAGER)
    _check_payment(request)

    async def action(conn: BaseDBAsyncClient) -> PaymentRecorded:
        member, version = await lock_member_with_program_version(conn, request.member_id)
        configuration = await current_configuration(conn, version)
        program = configuration.program
        plan = next((p for p in configuration.plans if p.code == request.plan_code), None)
        if plan is None:
            raise PlanUnknown("no membership plan with this code", field="plan_code")
        if request.currency != plan.currency:
            raise CurrencyMismatch(f"the plan is paid in {plan.currency}, not {request.currency}", field="currency")
        now = clock.now()
        membership = await Membership.filter(member_id=member.id).using_db(conn).first()
        before = _snapshot(membership)
        outbox = events.Outbox()
        period: tuple[datetime | None, datetime | None] = (None, None)
        if request.outcome == PaymentOutcome.SUCCEEDED:
            membership, start, end = await _succeeded(conn, request, member, plan, program, membership, now, outbox)
            period = (start, end)
        elif request.outcome == PaymentOutcome.FAILED:
            if _failed(membership, configuration.plans, request.occurred_at, now, outbox):
                assert membership is not None
                await membership.save(using_db=conn)
        else:
            await _refunded(conn, request, member, plan, membership, now, outbox)
        payment = await MembershipPayment.create(
            payment_id=request.payment_id,
            outcome=request.outcome,
            member_id=member.id,
            plan_id=plan.id,
            amount=request.amount,
            currency=request.currency,
            period_start=period[0],
            period_end=period[1],
            occurred_at=request.occurred_at,
            created_at=now,
            using_db=conn,
        )
        caused = [event.type for event in outbox.pending]
        await outbox.flush(conn)
        await record_audit(
            actor,
            AUDIT_PAYMENT,
            conn=conn,
            member_id=member.id,
            target=f"membership_payment:{payment.id}",
            before=before,
            after={**(_snapshot(membership) or {}), "outcome": request.outcome.value, "amount": request.amount},
            reason=request.payment_id,
        )
        shown_plan = (
            next((p.code for p in configuration.plans if p.id == membership.plan_id), None) if membership else None
        )
        return PaymentRecorded(
            payment_record_id=payment.id,
            member_id=member.id,
            outcome=request.outcome,
            status=membership.status if membership else None,
            plan_code=shown_plan,
            period_end=membership.period_end if membership else None,
            grace_until=membership.grace_until if membership else None,
            events=caused,
        )

    key = f"{request.outcome.value}:{request.payment_id}"
    return await idempotent("membership_payment", key, _document(request), PaymentRecorded, action, field="payment_id")


async def _refunded(
    conn: BaseDBAsyncClient,
    request: PaymentRequest,
    member: Member,
    plan: MembershipPlan,
    membership: Membership | None,
    now: datetime,
    outbox: events.Outbox,
) -> None:
    original = (
        await MembershipPayment.filter(
            payment_id=request.refund_of, outcome=PaymentOutcome.SUCCEEDED, member_id=member.id, plan_id=plan.id
        )
        .using_db(conn)
        .select_for_update()
        .first()
    )
    if original is None:
        raise PaymentNotFound("no succeeded payment of this member and plan with this id", field="refund_of")
    left = original.amount - original.refunded_amount
    if request.amount > left:
        raise RefundExceedsPayment(amount_left=left)
    await (
        MembershipPayment.filter(id=original.id)
        .using_db(conn)
        .update(refunded_amount=F("refunded_amount") + request.amount)
    )
    outbox.add(
        events.MEMBERSHIP_PAYMENT_REFUNDED,
        member_id=member.id,
        payload={"payment_id": original.payment_id, "amount": request.amount, "left": left - request.amount},
    )
    current = (
        membership is not None
        and membership.status != MembershipStatus.LAPSED
        and original.period_end == membership.period_end
    )
    if request.amount == left and current:
        assert membership is not None
        _lapse(membership, now)
        await membership.save(using_db=conn)
        outbox.add(events.MEMBERSHIP_LAPSED, member_id=member.id, payload=_event_payload(membership, plan))


# --- cancelling -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancelled:
    member_id: int
    status: MembershipStatus
    ends_at: datetime  # the benefits end here (now, for one that was in grace)


async def cancel_membership(actor: Actor | None, member_id: int) -> Cancelled:
    """Cancel at period end: ACTIVE → CANCELLED (benefits until `period_end`, then the job lapses it); in grace
    (the period is over and unpaid) → LAPSED at once. Cancelling a cancelled membership answers the same again.

    `actor` is staff (any role: a member asking at the till) or None for the member themself (the app). Refused:
    `MemberNotFound`, `MembershipNotActive` (no membership, or a lapsed one). Audited when staff cancel.
    """
    if actor is not None:
        actor.require(StaffRole.CASHIER)
    async with in_transaction() as conn:
        member = await lock_member(conn, member_id)
        now = clock.now()
        membership = await Membership.filter(member_id=member.id).using_db(conn).first()
        if membership is None or effective_status(membership, now) == MembershipStatus.LAPSED:
            raise MembershipNotActive("there is no membership to cancel", field="member_id")
        if membership.status == MembershipStatus.CANCELLED:
            return Cancelled(member.id, membership.status, membership.period_end)
        before = _snapshot(membership)
        plan = next(p for p in await cached_plans() if p.id == membership.plan_id)
        outbox = events.Outbox()
        in_grace = effective_status(membership, now) == MembershipStatus.GRACE
        membership.status = MembershipStatus.CANCELLED
        membership.cancelled_at = now
        membership.grace_until = None
        membership.due_at = membership.period_end
        membership.updated_at = now
        outbox.add(events.MEMBERSHIP_CANCELLED, member_id=member.id, payload=_event_payload(membership, plan))
        if in_grace:
            _lapse(membership, now)
            outbox.add(events.MEMBERSHIP_LAPSED, member_id=member.id, payload=_event_payload(membership, plan))
        await membership.save(using_db=conn)
        await outbox.flush(conn)
        if actor is not None:
            await record_audit(
                actor,
                AUDIT_CANCEL,
                conn=conn,
                member_id=member.id,
                target=f"membership:{membership.id}",
                before=before,
                after=_snapshot(membership),
            )
        ends_at = now if in_grace else membership.period_end
        return Cancelled(member.id, membership.status, ends_at)


# --- the lapse job ----------------------------------------------------------------------------------


def due(at: datetime) -> Q:
    """The memberships the job must look at: not lapsed, `due_at` reached (index `status, due_at`)."""
    return Q(status__in=list(GIVING), due_at__lte=at)


async def step_due(membership_id: int, member_id: int, at: datetime) -> bool:
    """Move one due membership on (ACTIVE past its period → GRACE, or LAPSED once its benefits ended), with the
    member locked and the row read again (a payment meanwhile wins). False if there was nothing to do."""
    async with in_transaction() as conn:
        await lock_member(conn, member_id)
        membership = await Membership.filter(id=membership_id).using_db(conn).first()
        if membership is None or membership.status not in GIVING or membership.due_at > at:
            return False
        plan = next((p for p in await cached_plans() if p.id == membership.plan_id), None)
        if plan is None:
            forget_cached_program()
            plan = next(p for p in await cached_plans() if p.id == membership.plan_id)
        outbox = events.Outbox()
        if gives_benefits(membership, at):
            if membership.status != MembershipStatus.ACTIVE:
                return False  # not due yet (due_at was early)
            membership.status = MembershipStatus.GRACE  # a renewal the payment system has not reported (yet)
            assert membership.grace_until is not None
            membership.due_at = membership.grace_until
            membership.updated_at = at
            outbox.add(events.MEMBERSHIP_GRACE, member_id=member_id, payload=_event_payload(membership, plan))
        else:
            _lapse(membership, at)
            outbox.add(events.MEMBERSHIP_LAPSED, member_id=member_id, payload=_event_payload(membership, plan))
        await membership.save(using_db=conn)
        await outbox.flush(conn)
        return True


# --- configuration ----------------------------------------------------------------------------------

_PLAN_KEYS = {
    "code",
    "name",
    "price",
    "currency",
    "period",
    "earn_multiplier",
    "included_offers",
    "free_delivery",
    "early_access_rank",
    "grace_days",
    "active",
}


def _plan_values(spec: Any, program: Program, offer_names: set[str]) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise InvalidInput("membership plan config: each [[membership_plans]] is a table", field="membership_plans")
    unknown = sorted(set(spec) - _PLAN_KEYS)
    if unknown:
        raise InvalidInput(f"membership plan config: unknown setting {unknown[0]!r}", field=unknown[0])
    code = check_code(spec.get("code"), "code", MAX_PLAN_CODE, label="membership plan config: a code")
    where = f"membership plan {code!r}"
    name = check_text(spec.get("name"), "name", 100, label=f"{where}: a name")
    price = spec.get("price")
    if not is_whole(price, 0, MAX_MONEY):
        raise InvalidInput(f"{where}: price must be a whole number of minor units", field="price")
    currency = spec.get("currency", program.currency)
    if currency != program.currency:
        raise InvalidInput(f"{where}: currency must be the program's ({program.currency})", field="currency")
    try:
        period = PlanPeriod(str(spec.get("period")))
    except ValueError:
        raise InvalidInput(f"{where}: period must be monthly or yearly", field="period") from None
    raw = spec.get("earn_multiplier", 1)
    try:
        multiplier = Decimal(str(raw)) if not isinstance(raw, bool) and isinstance(raw, int | float) else None
    except InvalidOperation:
        multiplier = None
    if multiplier is None or not Decimal(1) <= multiplier < Decimal(1000) or multiplier != round(multiplier, 3):
        raise InvalidInput(
            f"{where}: earn_multiplier must be a number from 1 to 999.999 (3 decimals)", field="earn_multiplier"
        )
    included = spec.get("included_offers", [])
    if not isinstance(included, list) or not all(isinstance(o, str) for o in included):
        raise InvalidInput(f"{where}: included_offers must be a list of offer names", field="included_offers")
    missing = [o for o in included if o not in offer_names]
    if missing:
        raise InvalidInput(f"{where}: no offer named {missing[0]!r}", field="included_offers")
    values: dict[str, Any] = {"name": name, "price": price, "currency": currency, "period": period}
    values["earn_multiplier"] = multiplier
    values["included_offers"] = list(dict.fromkeys(included))
    for key, low, high, default in (
        ("early_access_rank", 0, 100, 0),
        ("grace_days", 0, 365, 7),
    ):
        value = spec.get(key, default)
        if not is_whole(value, low, high):
            raise InvalidInput(f"{where}: {key} must be a whole number from {low} to {high}", field=key)
        values[key] = value
    for key, default in (("free_delivery", False), ("active", True)):
        value = spec.get(key, default)
        if not isinstance(value, bool):
            raise InvalidInput(f"{where}: {key} must be true or false", field=key)
        values[key] = value
    return {"code": code, **values}


async def apply_membership_config(specs: Any) -> int:
    """Create or update the plans of `[[membership_plans]]` by code (after the program and the offers: a plan's
    currency must be the program's, its included offers must exist). Plans not in the file stay as they are (retire
    one with `active = false`: its members run on until they lapse). Validated whole before anything is written;
    `InvalidInput` names the setting at fault. Returns the number of plans written."""
    if not specs:
        return 0
    if not isinstance(specs, list):
        raise InvalidInput("membership plan config: [[membership_plans]] is a list of tables", field="membership_plans")
    program = await load_program()
    offer_names = {str(name) for name in await Offer.all().values_list("name", flat=True)}
    plans = [_plan_values(spec, program, offer_names) for spec in specs]
    codes = [plan["code"] for plan in plans]
    if len(set(codes)) != len(codes):
        raise InvalidInput("membership plan config: two plans with one code", field="code")
    async with in_transaction() as conn:
        for values in plans:
            code = values.pop("code")
            await MembershipPlan.update_or_create(code=code, defaults=values, using_db=conn)
    forget_cached_program()
    return len(plans)
