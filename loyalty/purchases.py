"""Purchases at the checkout: record a receipt with its lines, preview what it earns, refund it by amount or lines.

`record_purchase` runs in one transaction under the receipt's idempotency key (scope `purchase`, unique per store):
the purchase and its lines, the points by the earning rules (`loyalty.earning`) credited through the ledger core
(`loyalty.ledger`), the qualifying credit and tier re-evaluation, `Member.last_purchase_at`, stamps and stamp-card
vouchers (`loyalty.stamps`), the outbox events and the audit entry. A retry returns the first answer; the same
receipt with other content is `IDEMPOTENCY_KEY_REUSED`. Receipts above the program's sanity limits (per receipt,
per member and day) are refused before anything is written.

`refund_purchase` claws a refund's points back in proportion to the money refunded (by amount, cumulatively over the
purchase) or to the quantity returned (by lines), never more than the purchase earned; idempotent per (store, refund).
Cashback the receipt was paid with (`cashbackSpend` with the same store and receipt id) comes back in proportion to
the money refunded (`loyalty.cashback.return_for_refund`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F, Subquery
from tortoise.functions import Sum
from tortoise.queryset import QuerySet

from loyalty import cashback, clock, events, ledger, memberships, referrals
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.checks import MAX_REFERENCE, check_amount, check_code, check_occurred_at, check_store_code
from loyalty.earning import EarnBreakdown, LineInput, active_rules, active_rules_in, compute_points
from loyalty.errors import (
    CurrencyMismatch,
    DomainError,
    InvalidInput,
    MemberNotFound,
    MoneyText,
    PurchaseNotFound,
    RefundExceedsPurchase,
)
from loyalty.idempotency import idempotent
from loyalty.models import (
    Member,
    Membership,
    Program,
    Purchase,
    PurchaseLine,
    QualifyingCredit,
    Referral,
    ReferralStatus,
    Refund,
    StaffRole,
    TierMetric,
)
from loyalty.program import current_configuration, load_program
from loyalty.stamps import StampOutcome, add_stamps
from loyalty.tiers import apply_tier_decision, decide_tier, period_end, period_start, undo_unfounded_upgrade

MAX_LINES = 500
# Items on one receipt line: a typo guard far above any basket, well inside the quantity columns (32-bit) and
# the stamp counts a line's quantity adds to.
MAX_QUANTITY = 10_000


class LinesTotalMismatch(DomainError):
    code = "LINES_TOTAL_MISMATCH"

    def __init__(self, *, lines_total: int, total: int) -> None:
        super().__init__(f"the lines that are not voided add up to {lines_total}, not {total}", field="total")
        self.lines_total = lines_total
        self.total = total

    def describe(self, money: MoneyText) -> str:
        return f"the lines that are not voided add up to {money(self.lines_total)}, not {money(self.total)}"


class PurchaseTotalTooLarge(DomainError):
    code = "PURCHASE_TOTAL_TOO_LARGE"

    def __init__(self, *, limit: int, total: int) -> None:
        super().__init__(f"a receipt may total at most {limit}, not {total}", field="total")
        self.limit = limit
        self.total = total

    def describe(self, money: MoneyText) -> str:
        return f"a receipt may total at most {money(self.limit)}, not {money(self.total)}"


class DailyPurchaseLimitExceeded(DomainError):
    code = "DAILY_PURCHASE_LIMIT_EXCEEDED"

    def __init__(self, *, day: date, limit: int, left: int) -> None:
        super().__init__(
            f"this member's purchases on {day.isoformat()} may total at most {limit}; {left} of it is left",
            field="total",
        )
        self.day = day
        self.limit = limit
        self.left = left

    def describe(self, money: MoneyText) -> str:
        return (
            f"this member's purchases on {self.day.isoformat()} may total at most {money(self.limit)};"
            f" {money(self.left)} of it is left"
        )


def _store_key(store_code: str, reference: str) -> str:
    """An unambiguous idempotency key for a reference (receipt or refund id) that is unique per store.

    A plain f"{store}:{reference}" made store "A" + receipt "B:C" and store "A:B" + receipt "C" share a key, so the
    second purchase silently replayed the first one's answer and was never recorded. The store code's length
    prefix keeps the pair apart.
    """
    return f"{len(store_code)}:{store_code}:{reference}"


def purchase_key(store_code: str, receipt_id: str) -> str:
    """The idempotency key of a purchase (scope `"purchase"`): the receipt id is unique per store."""
    return _store_key(store_code, receipt_id)


def refund_key(store_code: str, refund_id: str) -> str:
    """The idempotency key of a refund (scope `"refund"`): the refund id is unique per store."""
    return _store_key(store_code, refund_id)


# --- recording a purchase -------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseRequest:
    member_id: int
    store_code: str
    receipt_id: str
    occurred_at: datetime
    currency: str
    total: int  # minor units
    lines: tuple[LineInput, ...]
    # The payment card's fingerprint as the till's payment terminal gives it (optional): stored only hashed
    # (`referrals.fingerprint_hash`), for the referral abuse checks.
    payment_fingerprint: str | None = None


@dataclass(frozen=True)
class PurchaseRecorded:
    purchase_id: int
    member_id: int
    points: int
    available_at: datetime
    tier: str
    breakdown: EarnBreakdown
    stamps: list[StampOutcome]


def check_request(request: PurchaseRequest) -> None:
    """Validate a receipt before anything is written (`InvalidInput`, `LinesTotalMismatch`)."""
    check_amount(request.total, "total", allow_zero=True)
    check_store_code(request.store_code)
    check_code(request.receipt_id, "receipt_id", MAX_REFERENCE)
    check_code(request.currency, "currency", 3)
    check_occurred_at(request.occurred_at)
    referrals.fingerprint_hash(request.payment_fingerprint)
    if not request.lines or len(request.lines) > MAX_LINES:
        raise InvalidInput(f"a receipt has 1 to {MAX_LINES} lines", field="lines")
    for line in request.lines:
        check_amount(line.quantity, "lines", high=MAX_QUANTITY, label="a line's quantity")
        check_amount(line.amount, "lines", allow_zero=True, label="a line's amount")
        check_code(line.sku, "lines", MAX_REFERENCE, label="a line's sku")
        if line.category:
            check_code(line.category, "lines", MAX_REFERENCE, label="a line's category")
    sold = sum(line.amount for line in request.lines if not line.voided)
    if sold != request.total:
        raise LinesTotalMismatch(lines_total=sold, total=request.total)


def local_day(program: Program, at: datetime) -> tuple[datetime, datetime]:
    """The calendar day containing `at` in the program's timezone, as a UTC [start, end) pair."""
    zone = ZoneInfo(program.timezone)
    start = at.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    # Aware arithmetic is wall-clock: midnight to midnight, 23 or 25 hours on a day with a DST change.
    end = start + timedelta(days=1)
    return start.astimezone(UTC), end.astimezone(UTC)


async def check_limits(program: Program, request: PurchaseRequest, conn: BaseDBAsyncClient | None = None) -> None:
    """Refuse a receipt above the program's sanity limits (`PurchaseTotalTooLarge`, `DailyPurchaseLimitExceeded`).

    The daily limit counts the member's receipts of the receipt's day in the program's timezone, net of refunds
    (a mistyped receipt that was refunded does not block the right one; its points went back with it). Called with
    the member locked, so concurrent receipts of one member cannot pass it together.
    """
    if request.total > program.max_purchase_total:
        raise PurchaseTotalTooLarge(limit=program.max_purchase_total, total=request.total)
    rows = await _day_spent(program, request).using_db(conn).values("spent")
    _check_daily_limit(program, request, _sum(rows[0]["spent"]) if rows else 0)


def _sum(value: Any) -> int:
    # PostgreSQL sums bigints as numeric (a Decimal); no rows sum to NULL.
    return int(value or 0)


def _day_spent(program: Program, request: PurchaseRequest) -> QuerySet[Purchase]:
    """The member's receipts of the receipt's day, net of refunds, as one `spent` sum."""
    start, end = local_day(program, request.occurred_at)
    return Purchase.filter(member_id=request.member_id, occurred_at__gte=start, occurred_at__lt=end).annotate(
        spent=Sum(F("total") - F("refunded_total"))
    )


def _check_daily_limit(program: Program, request: PurchaseRequest, spent: int) -> None:
    if spent + request.total > program.max_daily_purchase_total:
        raise DailyPurchaseLimitExceeded(
            day=request.occurred_at.astimezone(ZoneInfo(program.timezone)).date(),
            limit=program.max_daily_purchase_total,
            left=max(0, program.max_daily_purchase_total - spent),
        )


def _request_document(request: PurchaseRequest) -> dict[str, Any]:
    return {
        "member": request.member_id,
        # In UTC: a retry stating the same instant with another UTC offset is the same request.
        "occurred_at": request.occurred_at.astimezone(UTC).isoformat(),
        "currency": request.currency,
        "total": request.total,
        "lines": [asdict(line) for line in request.lines],
        # Only when given: the documents (and so the hashes) of receipts without one stay as they were.
        **({"card": referrals.fingerprint_hash(request.payment_fingerprint)} if request.payment_fingerprint else {}),
    }


class _MemberTotals(NamedTuple):
    spent: int  # the member's receipts of the receipt's day, net of refunds (the daily limit)
    qualifying: int  # the qualifying value of the tier period containing now
    referral_id: int | None  # the open referral as a referee: APPLIED or FLAGGED without a qualifying purchase
    plan_id: int | None  # the plan of the paid membership giving benefits now


def _optional_id(value: Any) -> int | None:
    return int(value) if value is not None else None


async def _member_totals(
    conn: BaseDBAsyncClient, program: Program, request: PurchaseRequest, now: datetime
) -> _MemberTotals:
    """What the purchase needs to know of the member before its own rows, read in one statement with the member
    locked (`_MemberTotals`; the qualifying value in `tiers.qualifying_value`'s window; `memberships.giving_benefits`):
    a member without a referral or a membership costs the purchase no statement."""
    plan = Membership.filter(memberships.giving_benefits(now), member_id=request.member_id).values("plan_id")
    credits = QualifyingCredit.filter(
        member_id=request.member_id,
        occurred_at__gte=period_start(program, now),
        occurred_at__lt=period_end(program, now),
    ).annotate(value=Sum("amount"))
    open_referral = Referral.filter(
        referee_id=request.member_id,
        status__in=(ReferralStatus.APPLIED, ReferralStatus.FLAGGED),
        purchase_id__isnull=True,
    )
    rows = (
        await Member.filter(id=request.member_id)
        .using_db(conn)
        .annotate(
            spent=Subquery(_day_spent(program, request).values("spent")),
            qualifying=Subquery(credits.values("value")),
            referral=Subquery(open_referral.values("id")),
            membership_plan=Subquery(plan),
        )
        .values("spent", "qualifying", "referral", "membership_plan")
    )
    row = rows[0]
    return _MemberTotals(
        spent=_sum(row["spent"]),
        qualifying=_sum(row["qualifying"]),
        referral_id=_optional_id(row["referral"]),
        plan_id=_optional_id(row["membership_plan"]),
    )


async def _earn(conn: BaseDBAsyncClient, request: PurchaseRequest, outbox: events.Outbox) -> PurchaseRecorded:
    """Record the purchase, its lines and its points in the caller's transaction (the member stays locked).

    Points are pending until the end of the return window; the tier is re-evaluated at once;
    `Member.last_purchase_at` moves forward; stamps are added. The events go into `outbox`, which the caller
    flushes before the transaction ends.

    Statements, in order (the write path's budget, `tests/loyalty/test_purchase_statements.py`): the member's lock
    (with `program.version`: the configuration snapshot costs nothing while it is current), the day's spending,
    the period's qualifying value, the member's open referral as a referee and the plan of the member's paid
    membership (one statement, before this purchase's rows: the tier is decided without reading back; the plan's
    multiplier comes from the snapshot), the purchase, its lines (one batch), the qualifying credit, the lot, the
    member's one UPDATE (balances, tier, `next_settle_at`, `last_purchase_at`) and the ledger entry; then the stamp
    cards' progress. Only a referee with an open referral whose purchase reaches `min_spend` costs more: the
    referral's lock, the referrer's lock, the caps' counts and the bonuses' lots and entries
    (`referrals.convert_in_purchase`). The caller adds the outbox (one batch), the audit entry and the idempotency
    record. A member with lots due is settled first (more statements, only then).
    """
    member, version = await ledger.lock_member_with_program_version(conn, request.member_id)
    configuration = await current_configuration(conn, version)
    program = configuration.program
    if request.currency != program.currency:
        raise CurrencyMismatch(f"the program runs in {program.currency}, not {request.currency}", field="currency")
    if request.total > program.max_purchase_total:
        raise PurchaseTotalTooLarge(limit=program.max_purchase_total, total=request.total)
    now = clock.now()
    spent, qualifying_before, referral_id, plan_id = await _member_totals(conn, program, request, now)
    _check_daily_limit(program, request, spent)
    await ledger.settle_if_due(conn, member, now)
    tier = next((t for t in program.tiers if t.id == member.tier_id), None)
    benefits = memberships.benefits_of_plan(configuration.plans, plan_id)
    breakdown = compute_points(
        program,
        tier,
        request.lines,
        active_rules_in(configuration, request.occurred_at),
        benefits.earn_multiplier if benefits is not None else Decimal(1),
    )
    points = breakdown.points
    qualifying = breakdown.base if program.tier_metric == TierMetric.POINTS else request.total
    purchase = await Purchase.create(
        member_id=member.id,
        store_code=request.store_code,
        receipt_id=request.receipt_id,
        occurred_at=request.occurred_at,
        currency=request.currency,
        total=request.total,
        points_earned=points,
        qualifying_value=qualifying,
        payment_fingerprint=referrals.fingerprint_hash(request.payment_fingerprint),
        created_at=now,
        using_db=conn,
    )
    await PurchaseLine.bulk_create(
        [
            PurchaseLine(
                purchase_id=purchase.id,
                line_no=earned.line_no,
                sku=line.sku,
                category=line.category,
                quantity=line.quantity,
                amount=line.amount,
                voided=line.voided,
                excluded=earned.excluded,
                points=earned.points,
            )
            for line, earned in zip(request.lines, breakdown.lines, strict=True)
        ],
        using_db=conn,
    )
    if qualifying:
        await QualifyingCredit.create(
            member_id=member.id, amount=qualifying, occurred_at=request.occurred_at, purchase=purchase, using_db=conn
        )
    counts = bool(qualifying) and period_start(program, now) <= request.occurred_at < period_end(program, now)
    decision = decide_tier(member, program, qualifying_before + (qualifying if counts else 0), now)
    member_fields = dict(decision.fields)
    if member.last_purchase_at is None or request.occurred_at > member.last_purchase_at:
        member_fields["last_purchase_at"] = request.occurred_at
    available_at = request.occurred_at + timedelta(days=program.pending_days)
    if points:
        await ledger.credit_earned(
            conn, member, program, points, available_at=available_at, purchase=purchase, member_fields=member_fields
        )
    elif member_fields:  # nothing earned: no balance moves, the member row changes all the same
        await Member.filter(id=member.id).using_db(conn).update(**member_fields, updated_at=now)
        for name, value in member_fields.items():
            setattr(member, name, value)
    if referral_id is not None:  # the referee's first qualifying purchase converts their referral
        await referrals.convert_in_purchase(
            conn, program, configuration.referral_policy, member, purchase, available_at, referral_id, outbox
        )
    apply_tier_decision(member, decision, outbox)
    outbox.add(
        events.POINTS_EARNED,
        member_id=member.id,
        payload={
            "purchase_id": purchase.id,
            "store_code": request.store_code,
            "receipt_id": request.receipt_id,
            "points": points,
        },
    )
    stamps = await add_stamps(conn, member.id, program, request.total, request.lines, configuration.stamp_cards, outbox)
    return PurchaseRecorded(
        purchase_id=purchase.id,
        member_id=member.id,
        points=points,
        available_at=available_at,
        tier=decision.tier.name,
        breakdown=breakdown,
        stamps=stamps,
    )


async def record_purchase(actor: Actor, request: PurchaseRequest) -> PurchaseRecorded:
    """Record a receipt and credit its points, stamps and stamp-card vouchers; idempotent per (store, receipt).

    Refused: `InvalidInput`, `LinesTotalMismatch`, `CurrencyMismatch`, `MemberNotFound`, the sanity limits
    (`PurchaseTotalTooLarge`, `DailyPurchaseLimitExceeded`, see `check_limits`), `DuplicateIdempotencyKey` (field
    `receipt_id`). The actor needs the cashier role in the receipt's store (`Forbidden`).
    """
    actor.require(StaffRole.CASHIER, request.store_code)
    check_request(request)

    async def action(conn: BaseDBAsyncClient) -> PurchaseRecorded:
        outbox = events.Outbox()
        recorded = await _earn(conn, request, outbox)
        await outbox.flush(conn)
        await record_audit(
            actor,
            "purchase.record",
            conn=conn,
            store_code=request.store_code,
            member_id=request.member_id,
            target=f"purchase:{recorded.purchase_id}",
            after={"receipt_id": request.receipt_id, "total": request.total, "points": recorded.points},
        )
        return recorded

    key = purchase_key(request.store_code, request.receipt_id)
    return await idempotent("purchase", key, _request_document(request), PurchaseRecorded, action, field="receipt_id")


async def preview_purchase(request: PurchaseRequest) -> EarnBreakdown:
    """What `record_purchase` would credit for this receipt now, writing nothing.

    Uses the member's current tier and paid membership (a purchase that lifts the member into a higher tier earns
    at the old tier's multiplier, as `record_purchase` does). Validates like `record_purchase` (the sanity limits
    included), except for idempotency.
    """
    check_request(request)
    program = await load_program()
    if request.currency != program.currency:
        raise CurrencyMismatch(f"the program runs in {program.currency}, not {request.currency}", field="currency")
    # The member with the plan of their paid membership giving benefits now, in one statement.
    plan = Membership.filter(memberships.giving_benefits(clock.now()), member_id=request.member_id).values("plan_id")
    member = await Member.filter(id=request.member_id).annotate(membership_plan=Subquery(plan)).first()
    if member is None:
        raise MemberNotFound("no such member", field="member_id")
    await check_limits(program, request)
    tier = next((t for t in program.tiers if t.id == member.tier_id), None)
    plan_id = getattr(member, "membership_plan", None)
    benefits = await memberships.plan_benefits(int(plan_id) if plan_id is not None else None)
    multiplier = benefits.earn_multiplier if benefits is not None else Decimal(1)
    return compute_points(program, tier, request.lines, await active_rules(request.occurred_at), multiplier)


# --- returns --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RefundResult:
    refund_id: int
    points_reversed: int
    points_recovered: int
    unrecovered: int
    amount: int  # money refunded, minor units (computed from the lines for a refund by lines)
    purchase_id: int
    member_id: int
    # The tier the refund took the member down from and to (`tiers.undo_unfounded_upgrade`); None if it stayed.
    tier_from: str | None = None
    tier_to: str | None = None
    # Cashback the receipt was paid with that came back (`loyalty.cashback.return_for_refund`), minor units.
    cashback_returned: int = 0


@dataclass(frozen=True)
class LineRefund:
    """Refund `quantity` items of the purchase line `line_no` (1-based, as on the receipt)."""

    line_no: int
    quantity: int


def _check_refund(
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None,
    lines: Sequence[LineRefund] | None,
    occurred_at: datetime | None,
) -> dict[str, Any]:
    """Validate a refund request (raises `InvalidInput`); returns its idempotency request document."""
    check_store_code(store_code)
    check_code(receipt_id, "receipt_id", MAX_REFERENCE)
    check_code(refund_id, "refund_id", MAX_REFERENCE)
    # Only when given: the documents (and so the hashes) of refunds without a time stay as they were.
    when: dict[str, Any] = {}
    if occurred_at is not None:
        check_occurred_at(occurred_at)
        when = {"occurred_at": occurred_at.astimezone(UTC).isoformat()}
    if (amount is None) == (lines is None):
        raise InvalidInput("refund either an amount or lines", field="amount")
    if amount is not None:
        check_amount(amount, "amount")
        return {"receipt_id": receipt_id, "amount": amount, **when}
    assert lines is not None
    if not lines:
        raise InvalidInput("name at least one line to refund", field="lines")
    if len({line.line_no for line in lines}) != len(lines):
        raise InvalidInput("each line may be named once", field="lines")
    for line in lines:
        check_amount(line.line_no, "lines", high=MAX_LINES, label="a line number")  # a smallint column
        check_amount(line.quantity, "lines", high=MAX_QUANTITY, label="a quantity")
    return {"receipt_id": receipt_id, "lines": sorted([line.line_no, line.quantity] for line in lines), **when}


async def _refund_lines(conn: BaseDBAsyncClient, purchase: Purchase, lines: Sequence[LineRefund]) -> tuple[int, int]:
    """Mark refunded quantities on the purchase's lines; returns (money refunded, points those lines earned).

    Per line, money and points are taken in proportion to the quantity with cumulative flooring, so refunding
    a line's items one by one reverses exactly the line's points and amount in the end.
    """
    stored = {
        line.line_no: line
        for line in await PurchaseLine.filter(purchase_id=purchase.id, line_no__in=[r.line_no for r in lines])
        .using_db(conn)
        .select_for_update()
    }
    amount = points = 0
    for request in lines:
        line = stored.get(request.line_no)
        if line is None:
            raise InvalidInput(f"the purchase has no line {request.line_no}", field="lines")
        bought = 0 if line.voided else line.quantity  # a voided line was never sold
        after = line.refunded_quantity + request.quantity
        if after > bought:
            raise RefundExceedsPurchase(
                f"line {line.line_no}: only {bought - line.refunded_quantity} left to refund", field="lines"
            )
        amount += line.amount * after // bought - line.amount * line.refunded_quantity // bought
        points += line.points * after // bought - line.points * line.refunded_quantity // bought
        await PurchaseLine.filter(id=line.id).using_db(conn).update(refunded_quantity=after)
    return amount, points


def _not_the_members_receipt(store_code: str, receipt_id: str) -> PurchaseNotFound:
    """The refusal when a refund names a member and the receipt is not theirs (or does not exist)."""
    return PurchaseNotFound(f"this member has no receipt {receipt_id} in store {store_code}", field="receipt_id")


async def _refund(
    conn: BaseDBAsyncClient,
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None,
    lines: Sequence[LineRefund] | None,
    member_id: int | None,
    occurred_at: datetime | None,
) -> RefundResult:
    """Claw back a refund's points inside the caller's transaction (see `refund_purchase`).

    The receipt's member is locked first (found by the receipt in the same statement); every change of a purchase
    and its lines is a refund made under that lock, so the purchase read after it is current. Statements: the lock,
    the configuration's version, the purchase (with the CONVERTED referral it qualified, if any), the receipt's
    cashback spends and returns, its lots (other lots only if its own do not cover the points), the member's one
    UPDATE, the entry, each lot taken from, the allocations (one batch), the refund, the purchase's totals, the
    qualifying credit and the event; a member with lots due is settled first. A receipt paid partly with cashback
    adds, per spend with something to give back, the member's cashback UPDATE and the RETURN entry, then the
    `cashback.returned` event (`loyalty.cashback.return_for_refund`). A refund that takes a referral's qualifying
    purchase below `min_spend` inside its window cancels the referral (`referrals.cancel_in_refund`: more
    statements, only then).
    """
    member, version = await ledger.lock_member_of_receipt(conn, store_code, receipt_id)
    if member_id is not None and (member is None or member.id != member_id):
        raise _not_the_members_receipt(store_code, receipt_id)
    if member is None:
        raise PurchaseNotFound("no purchase with this receipt in this store", field="receipt_id")
    configuration = await current_configuration(conn, version)
    program = configuration.program
    # With the CONVERTED referral it qualified (if any) in the same statement: other refunds cost nothing more.
    receipt = Purchase.filter(store_code=store_code, receipt_id=receipt_id).values("id")
    converted = Referral.filter(purchase_id=Subquery(receipt), status=ReferralStatus.CONVERTED).values("id")
    purchase = (
        await Purchase.filter(store_code=store_code, receipt_id=receipt_id)
        .using_db(conn)
        .annotate(converted_referral=Subquery(converted))
        .get()
    )
    referral_id = getattr(purchase, "converted_referral", None)
    if occurred_at is not None and occurred_at < purchase.occurred_at:
        raise InvalidInput("a refund cannot happen before its purchase", field="occurred_at")
    if lines is not None:
        amount, line_points = await _refund_lines(conn, purchase, lines)
    assert amount is not None
    if purchase.refunded_total + amount > purchase.total:
        left = purchase.total - purchase.refunded_total
        raise RefundExceedsPurchase(f"only {left} of this purchase is left to refund", field="amount", amount_left=left)
    spends = await cashback.spends_of_receipt(conn, member.id, store_code, receipt_id)
    await ledger.settle_if_due(conn, member)
    refunded = purchase.refunded_total + amount
    if lines is not None:
        to_reverse = min(line_points, purchase.points_earned - purchase.points_reversed)
    else:
        # max(0, …): refunds by line may already have reversed more than this share.
        to_reverse = max(0, purchase.points_earned * refunded // purchase.total - purchase.points_reversed)
    reversed_total = purchase.points_reversed + to_reverse
    qualifying_back = 0
    if purchase.total:  # a receipt of free items (total 0) can still be refunded by lines
        qualifying_back = (purchase.qualifying_value * refunded // purchase.total) - (
            purchase.qualifying_value * purchase.refunded_total // purchase.total
        )
    recovered = unrecovered = 0
    if to_reverse:
        recovered, unrecovered = await ledger.claw_back_purchase(
            conn, member, program, purchase, to_reverse, occurred_at=occurred_at
        )
    refund = await Refund.create(
        purchase_id=purchase.id,
        refund_id=refund_id,
        amount=amount,
        points_reversed=to_reverse,
        points_recovered=recovered,
        unrecovered=unrecovered,
        created_at=clock.now(),
        using_db=conn,
    )
    await Purchase.filter(id=purchase.id).using_db(conn).update(refunded_total=refunded, points_reversed=reversed_total)
    if referral_id is not None:
        await referrals.cancel_in_refund(
            conn, configuration.referral_policy, member, purchase, refunded, int(referral_id)
        )
    tier_from = tier_to = None
    if qualifying_back:
        await QualifyingCredit.create(
            member_id=member.id,
            amount=-qualifying_back,
            occurred_at=purchase.occurred_at,
            purchase_id=purchase.id,
            using_db=conn,
        )
        tier_before = next((t.name for t in program.tiers if t.id == member.tier_id), None)
        lowered = await undo_unfounded_upgrade(conn, member, program)
        if lowered is not None:
            tier_from, tier_to = tier_before, lowered.name
    cashback_returned = await cashback.return_for_refund(
        conn,
        member,
        program,
        spends,
        store_code=store_code,
        receipt_id=receipt_id,
        refunded=refunded,
        total=purchase.total,
        refund_id=refund_id,
    )
    await events.emit(
        conn,
        events.POINTS_REFUNDED,
        member_id=member.id,
        payload={
            "purchase_id": purchase.id,
            "refund_id": refund_id,
            "reversed": to_reverse,
            "unrecovered": unrecovered,
        },
    )
    return RefundResult(
        refund.id,
        to_reverse,
        recovered,
        unrecovered,
        amount,
        purchase.id,
        member.id,
        tier_from,
        tier_to,
        cashback_returned,
    )


async def refund_purchase(
    actor: Actor,
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None = None,
    lines: Sequence[LineRefund] | None = None,
    member_id: int | None = None,
    occurred_at: datetime | None = None,
) -> RefundResult:
    """Refund a purchase by amount or by lines and claw back its points; idempotent per (store, refund).

    By amount: points back in proportion to the refunded amount, cumulatively over the purchase (a full refund
    reverses exactly the purchase's points). By lines: the points those lines earned, in proportion to the refunded
    quantity. Either way never more than the purchase earned and not yet reversed (`RefundExceedsPurchase` for more
    money or items than were bought). Points come from the purchase's own lots first, then other available points;
    below zero only where the program allows it; what cannot be recovered is recorded on the entry. Qualifying
    value goes back in proportion to the money refunded, and an upgrade it no longer supports is undone at once
    (`tiers.undo_unfounded_upgrade`: `tier.changed`, the audit entry's tier before and after). Stamps stay (see
    `loyalty.stamps`). Cashback the member paid the receipt with comes back in proportion to the money refunded,
    cumulatively (a full refund returns exactly what was spent): `RefundResult.cashback_returned`, and the audit
    entry's `cashback_returned` when some came back.

    `occurred_at` (optional) is when the goods came back, if the till sends it: the member's activity shows the
    clawback then (default: when it is recorded); not in the future, not before the purchase (`InvalidInput`).

    With `member_id` (the checkout console: the member on screen) another member's receipt is `PurchaseNotFound`,
    also when the refund id replays an earlier refund. The actor needs the cashier role in the receipt's store
    (`Forbidden`).
    """
    actor.require(StaffRole.CASHIER, store_code)
    request = _check_refund(
        store_code=store_code,
        receipt_id=receipt_id,
        refund_id=refund_id,
        amount=amount,
        lines=lines,
        occurred_at=occurred_at,
    )

    async def action(conn: BaseDBAsyncClient) -> RefundResult:
        result = await _refund(
            conn,
            store_code=store_code,
            receipt_id=receipt_id,
            refund_id=refund_id,
            amount=amount,
            lines=lines,
            member_id=member_id,
            occurred_at=occurred_at,
        )
        await record_audit(
            actor,
            "purchase.refund",
            conn=conn,
            store_code=store_code,
            member_id=result.member_id,
            target=f"purchase:{result.purchase_id}",
            before={"tier": result.tier_from} if result.tier_to else None,
            after={
                "refund_id": refund_id,
                "amount": result.amount,
                "points_reversed": result.points_reversed,
                **({"tier": result.tier_to} if result.tier_to else {}),
                **({"cashback_returned": result.cashback_returned} if result.cashback_returned else {}),
            },
        )
        return result

    result = await idempotent(
        "refund", refund_key(store_code, refund_id), request, RefundResult, action, field="refund_id"
    )
    if member_id is not None and result.member_id != member_id:  # a replayed refund of another member's receipt
        raise _not_the_members_receipt(store_code, receipt_id)
    return result
