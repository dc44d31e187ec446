"""Paid membership: plans from the program file, payments driving the state machine, cancelling, the lapse job,
periods on the program's wall clock, refunds, idempotency and refusals with nothing written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from loyalty import jobs
from loyalty.actors import Forbidden
from loyalty.clock import FrozenClock
from loyalty.errors import CurrencyMismatch, DuplicateIdempotencyKey, InvalidInput, MemberNotFound
from loyalty.memberships import (
    MembershipNotActive,
    PaymentNotFound,
    PaymentRequest,
    PlanRetired,
    PlanUnknown,
    RefundExceedsPayment,
    add_months,
    benefits_for,
    cancel_membership,
    effective_status,
    record_membership_payment,
)
from loyalty.models import AuditLog, Member, Membership, MembershipPayment, MembershipStatus, PaymentOutcome, Program
from tests.loyalty.ledger_helpers import configure, new_member
from tests.loyalty.membership_helpers import (
    CASHIER,
    MANAGER,
    PLUS,
    membership_events,
    pay,
    plans,
    written,
)

STOCKHOLM = ZoneInfo("Europe/Stockholm")
NOTHING = {"membership": 0, "payment": 0, "outbox": 0, "audit": 0, "idempotency": 0}


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=STOCKHOLM).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
async def member(program: Program) -> Member:
    await configure(timezone="Europe/Stockholm")
    await plans()
    return await new_member("anna")


async def _membership(member: Member) -> Membership:
    return await Membership.get(member_id=member.id)


# --- periods ------------------------------------------------------------------------------------------


def test_months_are_added_on_the_wall_clock_and_clamped_to_the_month() -> None:
    # given month ends, a leap day and the DST changes of Stockholm
    zone = "Europe/Stockholm"
    # then Jan 31 + 1 month is the end of February (leap or not), then the 28th of March
    assert add_months(local(2026, 1, 31), 1, zone) == local(2026, 2, 28)
    assert add_months(local(2028, 1, 31), 1, zone) == local(2028, 2, 29)
    assert add_months(local(2026, 2, 28), 1, zone) == local(2026, 3, 28)
    # and a year after Feb 29 is Feb 28
    assert add_months(local(2028, 2, 29), 12, zone) == local(2029, 2, 28)
    # and 10:00 stays 10:00 across the spring and autumn changes (the UTC offset moves)
    assert add_months(local(2026, 3, 15, 10), 1, zone) == datetime(2026, 4, 15, 8, tzinfo=UTC)
    assert add_months(local(2026, 10, 15, 10), 1, zone) == datetime(2026, 11, 15, 9, tzinfo=UTC)


# --- starting and renewing ----------------------------------------------------------------------------


async def test_a_first_payment_starts_the_membership_for_one_period(member: Member, clock: FrozenClock) -> None:
    # when the payment system reports the first payment
    result = await pay(clock, member.id, "p1", at=local(2026, 3, 10, 14))

    # then the membership is active for one month from the payment, with the grace it would get
    end = local(2026, 4, 10, 14)
    membership = await _membership(member)
    assert (membership.status, membership.started_at, membership.period_start, membership.period_end) == (
        MembershipStatus.ACTIVE,
        local(2026, 3, 10, 14),
        local(2026, 3, 10, 14),
        end,
    )
    assert (membership.grace_until, membership.due_at, membership.cancelled_at) == (end + timedelta(days=7), end, None)
    assert (result.status, result.plan_code, result.period_end, result.grace_until, result.events) == (
        MembershipStatus.ACTIVE,
        "PLUS",
        end,
        end + timedelta(days=7),
        ["membership.started"],
    )
    payment = await MembershipPayment.get()
    assert (payment.payment_id, payment.outcome, payment.amount, payment.period_start, payment.period_end) == (
        "p1",
        PaymentOutcome.SUCCEEDED,
        4900,
        local(2026, 3, 10, 14),
        end,
    )
    audit = await AuditLog.get()
    assert (audit.actor_type, audit.action, audit.member_id, audit.before, audit.reason) == (
        "api_key",
        "membership.payment",
        member.id,
        None,
        "p1",
    )
    assert await membership_events(member.id) == ["membership.started"]


async def test_monthly_renewals_go_jan_31_feb_28_mar_28(member: Member, clock: FrozenClock) -> None:
    # given a membership started on Jan 31 at midnight, Stockholm time
    clock.set(local(2026, 1, 31))
    await pay(clock, member.id, "jan")
    # when the next two renewals are paid a little before each period ends
    await pay(clock, member.id, "feb", at=local(2026, 2, 27))
    feb = await _membership(member)
    await pay(clock, member.id, "mar", at=local(2026, 3, 27))
    mar = await _membership(member)

    # then each period runs from the previous end: Feb 28, then Mar 28 (the 31st is not remembered)
    assert (feb.period_start, feb.period_end) == (local(2026, 2, 28), local(2026, 3, 28))
    assert (mar.period_start, mar.period_end, mar.status) == (
        local(2026, 3, 28),
        local(2026, 4, 28),
        MembershipStatus.ACTIVE,
    )
    assert await membership_events(member.id) == ["membership.started", "membership.renewed", "membership.renewed"]


async def test_a_monthly_period_across_the_spring_dst_change_keeps_the_local_time(
    member: Member, clock: FrozenClock
) -> None:
    # when a member pays on Mar 15 at 10:00 in Stockholm (UTC+1)
    await pay(clock, member.id, "p1", at=local(2026, 3, 15, 10))

    # then the period ends on Apr 15 at 10:00 Stockholm (UTC+2): 08:00 UTC, an hour short of 31 days
    membership = await _membership(member)
    assert membership.period_end == datetime(2026, 4, 15, 8, tzinfo=UTC)
    assert membership.period_end - membership.period_start == timedelta(days=31, hours=-1)


async def test_a_yearly_plan_paid_on_feb_29_ends_on_feb_28(member: Member, clock: FrozenClock) -> None:
    # when the yearly plan is paid on a leap day
    await pay(clock, member.id, "y1", plan="YEAR", amount=49000, at=local(2028, 2, 29, 9))

    # then the year ends on Feb 28, and the renewal runs to Feb 28 again
    assert (await _membership(member)).period_end == local(2029, 2, 28, 9)
    await pay(clock, member.id, "y2", plan="YEAR", amount=49000, at=local(2029, 2, 20))
    assert (await _membership(member)).period_end == local(2030, 2, 28, 9)


async def test_a_plan_change_on_renewal_takes_effect_at_once(member: Member, clock: FrozenClock) -> None:
    # given a Plus member
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    # when the renewal is paid for Premium ten days before the period ends
    result = await pay(clock, member.id, "p2", plan="PREMIUM", amount=9900, at=local(2026, 3, 31))

    # then the plan is Premium from now (its benefits at once), the period extends from the current end
    membership = await _membership(member)
    assert (result.plan_code, membership.period_start, membership.period_end) == (
        "PREMIUM",
        local(2026, 4, 10),
        local(2026, 5, 10),
    )
    benefits = await benefits_for(member.id, clock.now())
    assert benefits is not None
    assert (benefits.plan_code, benefits.early_access_rank) == ("PREMIUM", 2)


# --- failed payments, grace and the job ---------------------------------------------------------------


async def test_failed_renewal_grace_then_paid_is_active_again(member: Member, clock: FrozenClock) -> None:
    # given an active membership whose renewal fails at the period end
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    result = await pay(clock, member.id, "p2", outcome=PaymentOutcome.FAILED, amount=0, at=local(2026, 4, 10))

    # then it is in grace for the plan's 7 days, benefits kept
    assert (result.status, result.grace_until, result.events) == (
        MembershipStatus.GRACE,
        local(2026, 4, 17),
        ["membership.grace"],
    )
    assert (await _membership(member)).due_at == local(2026, 4, 17)
    assert await benefits_for(member.id, clock.now()) is not None
    # when the retry succeeds during the grace
    result = await pay(clock, member.id, "p3", at=local(2026, 4, 12))

    # then it is active again for the next period, counted from the old period end
    membership = await _membership(member)
    assert (membership.status, membership.period_start, membership.period_end, membership.grace_until) == (
        MembershipStatus.ACTIVE,
        local(2026, 4, 10),
        local(2026, 5, 10),
        local(2026, 5, 17),
    )
    assert await membership_events(member.id) == ["membership.started", "membership.grace", "membership.renewed"]


async def test_failed_renewal_grace_ends_exactly_at_grace_until_and_the_job_lapses_it(
    member: Member, clock: FrozenClock
) -> None:
    # given a membership in grace until Apr 17 00:00
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await pay(clock, member.id, "p2", outcome=PaymentOutcome.FAILED, amount=0, at=local(2026, 4, 10))
    grace_end = local(2026, 4, 17)

    # when the job runs a second before the grace ends: nothing, benefits stay
    clock.set(grace_end - timedelta(seconds=1))
    assert await jobs.lapse_memberships() == 0
    assert await benefits_for(member.id, clock.now()) is not None
    # then at the grace end exactly the benefits are gone, before the job ran
    clock.set(grace_end)
    assert await benefits_for(member.id, clock.now()) is None
    assert effective_status(await _membership(member), clock.now()) == MembershipStatus.LAPSED
    # and the job lapses it, once
    assert await jobs.lapse_memberships() == 1
    assert await jobs.lapse_memberships() == 0
    membership = await _membership(member)
    assert (membership.status, membership.lapsed_at, membership.grace_until) == (
        MembershipStatus.LAPSED,
        grace_end,
        None,
    )
    assert await membership_events(member.id) == ["membership.started", "membership.grace", "membership.lapsed"]


async def test_an_active_membership_past_its_period_goes_to_grace_then_lapses(
    member: Member, clock: FrozenClock
) -> None:
    # given an active membership whose renewal is never reported
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    end = local(2026, 4, 10)

    # when the job runs a second before the period end: nothing
    clock.set(end - timedelta(seconds=1))
    assert await jobs.lapse_memberships() == 0
    assert effective_status(await _membership(member), clock.now()) == MembershipStatus.ACTIVE
    # then at the period end exactly it shows in grace (before the job), and the job moves it there
    clock.set(end)
    assert effective_status(await _membership(member), clock.now()) == MembershipStatus.GRACE
    assert await jobs.lapse_memberships() == 1
    membership = await _membership(member)
    assert (membership.status, membership.grace_until, membership.due_at) == (
        MembershipStatus.GRACE,
        end + timedelta(days=7),
        end + timedelta(days=7),
    )
    # and a second before the grace ends it still gives benefits; at the end the job lapses it
    clock.set(end + timedelta(days=7, seconds=-1))
    assert await jobs.lapse_memberships() == 0
    assert await benefits_for(member.id, clock.now()) is not None
    clock.set(end + timedelta(days=7))
    assert await jobs.lapse_memberships() == 1
    assert (await _membership(member)).status == MembershipStatus.LAPSED
    assert await membership_events(member.id) == ["membership.started", "membership.grace", "membership.lapsed"]


async def test_a_job_run_long_after_both_ends_lapses_in_one_step(member: Member, clock: FrozenClock) -> None:
    # given an active membership nobody looked at for two months
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    clock.set(local(2026, 6, 1))

    # when the job runs
    assert await jobs.lapse_memberships() == 1

    # then it lapsed at once, without a grace step
    assert (await _membership(member)).status == MembershipStatus.LAPSED
    assert await membership_events(member.id) == ["membership.started", "membership.lapsed"]


async def test_a_payment_after_a_lapse_starts_again(member: Member, clock: FrozenClock) -> None:
    # given a membership that lapsed
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    clock.set(local(2026, 5, 1))
    await jobs.lapse_memberships()
    # when the member pays again
    result = await pay(clock, member.id, "p2", at=local(2026, 5, 3, 12))

    # then it starts again from the payment
    membership = await _membership(member)
    assert (membership.status, membership.started_at, membership.period_end, membership.lapsed_at) == (
        MembershipStatus.ACTIVE,
        local(2026, 5, 3, 12),
        local(2026, 6, 3, 12),
        None,
    )
    assert result.events == ["membership.started"]


# --- cancelling -------------------------------------------------------------------------------------


async def test_cancel_keeps_benefits_until_the_period_end_then_the_job_lapses_it(
    member: Member, clock: FrozenClock
) -> None:
    # given an active membership
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    end = local(2026, 4, 10)
    # when the member cancels it
    clock.set(local(2026, 3, 20))
    cancelled = await cancel_membership(None, member.id)

    # then it is cancelled with benefits until the period end
    assert (cancelled.status, cancelled.ends_at) == (MembershipStatus.CANCELLED, end)
    membership = await _membership(member)
    assert (membership.status, membership.cancelled_at, membership.due_at, membership.grace_until) == (
        MembershipStatus.CANCELLED,
        local(2026, 3, 20),
        end,
        None,
    )
    # and cancelling again answers the same, with no second event
    assert await cancel_membership(None, member.id) == cancelled
    clock.set(end - timedelta(seconds=1))
    assert await benefits_for(member.id, clock.now()) is not None
    assert await jobs.lapse_memberships() == 0
    clock.set(end)
    assert await benefits_for(member.id, clock.now()) is None
    assert await jobs.lapse_memberships() == 1
    assert (await _membership(member)).status == MembershipStatus.LAPSED
    assert await membership_events(member.id) == [
        "membership.started",
        "membership.cancelled",
        "membership.lapsed",
    ]
    assert await AuditLog.filter(action="membership.cancel").count() == 0  # the member's own doing


async def test_a_payment_reactivates_a_cancelled_membership(member: Member, clock: FrozenClock) -> None:
    # given a cancelled membership
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    clock.set(local(2026, 3, 20))
    await cancel_membership(MANAGER, member.id)
    # when a renewal is paid before its end
    result = await pay(clock, member.id, "p2", at=local(2026, 4, 9))

    # then it is active and renews from the period end
    membership = await _membership(member)
    assert (membership.status, membership.cancelled_at, membership.period_end) == (
        MembershipStatus.ACTIVE,
        None,
        local(2026, 5, 10),
    )
    assert result.events == ["membership.renewed"]
    assert await AuditLog.filter(action="membership.cancel").count() == 1


async def test_cancelling_in_grace_lapses_at_once(member: Member, clock: FrozenClock) -> None:
    # given a membership in grace
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await pay(clock, member.id, "p2", outcome=PaymentOutcome.FAILED, amount=0, at=local(2026, 4, 10))
    # when it is cancelled
    clock.set(local(2026, 4, 11))
    cancelled = await cancel_membership(None, member.id)

    # then the benefits end now
    assert (cancelled.status, cancelled.ends_at) == (MembershipStatus.LAPSED, local(2026, 4, 11))
    assert await benefits_for(member.id, clock.now()) is None


async def test_nothing_to_cancel_is_refused(member: Member, clock: FrozenClock) -> None:
    # given a member without a membership, and an unknown member
    with pytest.raises(MembershipNotActive):
        await cancel_membership(None, member.id)
    with pytest.raises(MemberNotFound):
        await cancel_membership(MANAGER, member.id + 99)
    # then nothing was written
    assert await written() == NOTHING


# --- refunds ------------------------------------------------------------------------------------------


async def test_a_partial_refund_is_only_recorded(member: Member, clock: FrozenClock) -> None:
    # given a paid membership
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    # when part of the payment is refunded
    result = await pay(
        clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=1000, refund_of="p1", at=local(2026, 3, 12)
    )

    # then the membership runs on, the payment remembers the refund
    assert (result.status, result.events) == (MembershipStatus.ACTIVE, ["membership.payment_refunded"])
    assert (await MembershipPayment.get(payment_id="p1")).refunded_amount == 1000


async def test_a_full_refund_of_the_current_payment_ends_the_membership_now(member: Member, clock: FrozenClock) -> None:
    # given a paid membership, partly refunded
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await pay(clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=1000, refund_of="p1")
    # when the rest is refunded
    result = await pay(
        clock, member.id, "r2", outcome=PaymentOutcome.REFUNDED, amount=3900, refund_of="p1", at=local(2026, 3, 15)
    )

    # then it lapsed now
    assert (result.status, result.events) == (
        MembershipStatus.LAPSED,
        ["membership.payment_refunded", "membership.lapsed"],
    )
    membership = await _membership(member)
    assert (membership.status, membership.lapsed_at) == (MembershipStatus.LAPSED, local(2026, 3, 15))
    assert await benefits_for(member.id, clock.now()) is None


async def test_a_full_refund_of_an_earlier_period_is_only_recorded(member: Member, clock: FrozenClock) -> None:
    # given a membership renewed once
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await pay(clock, member.id, "p2", at=local(2026, 4, 9))
    # when the first period's payment is refunded in full
    result = await pay(clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=4900, refund_of="p1")

    # then the paid renewal stands
    assert (result.status, result.events) == (MembershipStatus.ACTIVE, ["membership.payment_refunded"])


async def test_a_refund_larger_than_what_is_left_is_refused_with_nothing_written(
    member: Member, clock: FrozenClock
) -> None:
    # given a payment of 49.00 of which 10.00 was refunded
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await pay(clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=1000, refund_of="p1")
    before = await written()

    # when 39.01 is refunded
    with pytest.raises(RefundExceedsPayment) as refused:
        await pay(clock, member.id, "r2", outcome=PaymentOutcome.REFUNDED, amount=3901, refund_of="p1")

    # then REFUND_EXCEEDS_PAYMENT names what is left, and nothing was written
    assert (refused.value.code, refused.value.amount_left, refused.value.field) == (
        "REFUND_EXCEEDS_PAYMENT",
        3900,
        "amount",
    )
    assert refused.value.describe(lambda n: f"€{n / 100:.2f}") == "only €39.00 of this payment is left to refund"
    assert await written() == before
    assert (await MembershipPayment.get(payment_id="p1")).refunded_amount == 1000


async def test_a_refund_of_an_unknown_payment_is_refused(member: Member, clock: FrozenClock) -> None:
    # given a paid membership
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    before = await written()
    # when a refund names a payment that is not this member's succeeded one, or names none
    with pytest.raises(PaymentNotFound):
        await pay(clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=100, refund_of="nope")
    with pytest.raises(InvalidInput) as refused:
        await pay(clock, member.id, "r1", outcome=PaymentOutcome.REFUNDED, amount=100)
    assert refused.value.field == "refund_of"
    # then nothing was written
    assert await written() == before


# --- idempotency and refusals -------------------------------------------------------------------------


async def test_a_replay_returns_the_first_result_and_other_content_is_refused(
    member: Member, clock: FrozenClock
) -> None:
    # given a recorded payment
    first = await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    before = await written()

    # when the payment system sends it again, later
    clock.set(local(2026, 3, 11))
    replay = await pay(clock, member.id, "p1", at=local(2026, 3, 10))

    # then the answer is the first one and nothing more was written
    assert replay == first
    assert await written() == before
    # and the same payment id with another amount is refused, naming the payment id
    with pytest.raises(DuplicateIdempotencyKey) as refused:
        await pay(clock, member.id, "p1", amount=5000, at=local(2026, 3, 10))
    assert refused.value.field == "payment_id"
    assert await written() == before
    # while the same id with another outcome is another event
    refund = await pay(clock, member.id, "p1", outcome=PaymentOutcome.REFUNDED, amount=100, refund_of="p1")
    assert refund.events == ["membership.payment_refunded"]


@pytest.mark.parametrize(
    ("change", "error", "code", "field"),
    [
        ({"plan": "GOLD"}, PlanUnknown, "PLAN_UNKNOWN", "plan_code"),
        ({"currency": "SEK"}, CurrencyMismatch, "CURRENCY_MISMATCH", "currency"),
        ({"payment_id": "p\x001"}, InvalidInput, "INVALID", "payment_id"),
        ({"payment_id": "x" * 65}, InvalidInput, "INVALID", "payment_id"),
        ({"payment_id": " "}, InvalidInput, "INVALID", "payment_id"),
        ({"plan": "PL\x00US"}, InvalidInput, "INVALID", "plan_code"),
        ({"amount": 10**15}, InvalidInput, "INVALID", "amount"),
        ({"amount": 2**63}, InvalidInput, "INVALID", "amount"),
        ({"amount": 0}, InvalidInput, "INVALID", "amount"),
        ({"amount": -1}, InvalidInput, "INVALID", "amount"),
        ({"currency": "E\x00R"}, InvalidInput, "INVALID", "currency"),
        ({"refund_of": "p0"}, InvalidInput, "INVALID", "refund_of"),
    ],
)
async def test_bad_payments_are_refused_with_nothing_written(
    member: Member, clock: FrozenClock, change: dict[str, object], error: type[Exception], code: str, field: str
) -> None:
    # when a payment is reported with one thing wrong
    rest = {key: value for key, value in change.items() if key != "payment_id"}
    with pytest.raises(error) as refused:
        await pay(clock, member.id, str(change.get("payment_id", "p1")), **rest)  # type: ignore[arg-type]

    # then the precise code names the input at fault, and nothing was written
    assert (refused.value.code, refused.value.field) == (code, field)  # type: ignore[attr-defined]
    assert await written() == NOTHING


async def test_unknown_member_future_time_and_cashier_are_refused(member: Member, clock: FrozenClock) -> None:
    # when the member does not exist, the time is in the future, or a cashier reports the payment
    with pytest.raises(MemberNotFound):
        await pay(clock, member.id + 99, "p1")
    later = PaymentRequest(
        member.id, "PLUS", "p1", PaymentOutcome.SUCCEEDED, 4900, "EUR", clock.now() + timedelta(hours=1)
    )
    with pytest.raises(InvalidInput) as refused:
        await record_membership_payment(MANAGER, later)
    assert refused.value.field == "occurred_at"
    with pytest.raises(Forbidden):
        await pay(clock, member.id, "p1", actor=CASHIER)
    # then nothing was written
    assert await written() == NOTHING


async def test_a_retired_plan_renews_its_members_but_starts_none(member: Member, clock: FrozenClock) -> None:
    # given a Plus member, and Plus retired
    await pay(clock, member.id, "p1", at=local(2026, 3, 10))
    await plans({**PLUS, "active": False})
    other = await new_member("bo")
    # when the member renews and another member starts
    assert (await pay(clock, member.id, "p2", at=local(2026, 4, 1))).events == ["membership.renewed"]
    with pytest.raises(PlanRetired):
        await pay(clock, other.id, "p3")
    # then the other has none
    assert await Membership.filter(member_id=other.id).count() == 0


# --- configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "SEK"}, "currency"),
        ({"period": "weekly"}, "period"),
        ({"price": -1}, "price"),
        ({"price": 1.5}, "price"),
        ({"earn_multiplier": 0.5}, "earn_multiplier"),
        ({"earn_multiplier": "2"}, "earn_multiplier"),
        ({"included_offers": ["No such offer"]}, "included_offers"),
        ({"grace_days": -1}, "grace_days"),
        ({"free_delivery": "yes"}, "free_delivery"),
        ({"colour": "gold"}, "colour"),
        ({"code": ""}, "code"),
    ],
)
async def test_bad_plan_config_is_refused_naming_the_setting(
    program: Program, change: dict[str, object], field: str
) -> None:
    # when a plan of the program file has one bad setting
    with pytest.raises(InvalidInput) as refused:
        await plans({**PLUS, **change})
    # then the error names it and no plan was written
    assert refused.value.field == field
    assert await written() == NOTHING
    from loyalty.models import MembershipPlan

    assert await MembershipPlan.all().count() == 0


async def test_plans_are_written_by_code_and_updated_on_a_second_seed(program: Program) -> None:
    # given the plans seeded once
    await plans()
    # when a plan's price changes in the file and it is seeded again
    await plans({**PLUS, "price": 5900})
    from loyalty.models import MembershipPlan

    # then the plan was updated in place, the others kept
    rows = await MembershipPlan.all().order_by("id").values_list("code", "price", "currency", "active")
    assert rows == [("PLUS", 5900, "EUR", True), ("YEAR", 49000, "EUR", True), ("PREMIUM", 9900, "EUR", True)]
