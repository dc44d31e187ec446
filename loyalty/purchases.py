"""Purchases at the checkout: record a receipt with its lines, preview what it earns, refund it by amount or lines.

`record_purchase` runs in one transaction under the receipt's idempotency key (scope `purchase`, unique per store):
the purchase and its lines, the points by the earning rules (`loyalty.earning`), the tier re-evaluation,
`Member.last_purchase_at`, stamps and stamp-card vouchers (`loyalty.stamps`), the outbox events and the audit
entry. A retry returns the first answer; the same receipt with other content is `IDEMPOTENCY_KEY_REUSED`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from loyalty import ledger
from loyalty.actors import Actor
from loyalty.audit import record_audit
from loyalty.earning import EarnBreakdown, LineInput, LinePoints, active_rules, compute_points
from loyalty.errors import CurrencyMismatch, DomainError, InvalidInput, MemberNotFound
from loyalty.idempotency import run_idempotent
from loyalty.models import Member
from loyalty.program import load_program
from loyalty.stamps import StampOutcome, add_stamps

MAX_LINES = 500
_TEXT_LIMIT = 64  # PurchaseLine.sku / category column size


class LinesTotalMismatch(DomainError):
    code = "LINES_TOTAL_MISMATCH"


@dataclass(frozen=True)
class PurchaseRequest:
    member_id: int
    store_code: str
    receipt_id: str
    occurred_at: datetime
    currency: str
    total: int  # minor units
    lines: tuple[LineInput, ...]


@dataclass(frozen=True)
class PurchaseRecorded:
    purchase_id: int
    member_id: int
    points: int
    available_at: str
    tier: str
    breakdown: EarnBreakdown
    stamps: list[StampOutcome]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PurchaseRecorded:
        """Rebuild the answer stored by the idempotency record."""
        breakdown = dict(data["breakdown"])
        breakdown["lines"] = [LinePoints(**line) for line in breakdown["lines"]]
        return cls(
            **{**data, "breakdown": EarnBreakdown(**breakdown), "stamps": [StampOutcome(**s) for s in data["stamps"]]}
        )


def _is_count(value: object, low: int) -> bool:
    # `bool` is an `int` subclass: `True` must not pass as a quantity of 1.
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= ledger.MAX_POINTS * 100


def check_request(request: PurchaseRequest) -> None:
    """Validate a receipt before anything is written (`InvalidInput`, `LinesTotalMismatch`)."""
    ledger.check_purchase(
        store_code=request.store_code,
        receipt_id=request.receipt_id,
        occurred_at=request.occurred_at,
        total=request.total,
    )
    if not request.lines or len(request.lines) > MAX_LINES:
        raise InvalidInput(f"a receipt has 1 to {MAX_LINES} lines", field="lines")
    for line in request.lines:
        if not _is_count(line.quantity, 1):
            raise InvalidInput("a line's quantity must be a whole number of at least 1", field="lines")
        if not _is_count(line.amount, 0):
            raise InvalidInput("a line's amount cannot be negative", field="lines")
        if not line.sku or len(line.sku) > _TEXT_LIMIT or len(line.category) > _TEXT_LIMIT:
            raise InvalidInput(
                f"a line needs a sku; sku and category have at most {_TEXT_LIMIT} characters", field="lines"
            )
    sold = sum(line.amount for line in request.lines if not line.voided)
    if sold != request.total:
        raise LinesTotalMismatch(f"the lines that are not voided add up to {sold}, not {request.total}", field="total")


def _request_document(request: PurchaseRequest) -> dict[str, Any]:
    return {
        "member": request.member_id,
        # In UTC: a retry stating the same instant with another UTC offset is the same request.
        "occurred_at": request.occurred_at.astimezone(UTC).isoformat(),
        "currency": request.currency,
        "total": request.total,
        "lines": [asdict(line) for line in request.lines],
    }


async def record_purchase(actor: Actor, request: PurchaseRequest) -> PurchaseRecorded:
    """Record a receipt and credit its points, stamps and stamp-card vouchers; idempotent per (store, receipt)."""
    check_request(request)

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        earned = await ledger.earn_purchase(
            conn,
            request.member_id,
            store_code=request.store_code,
            receipt_id=request.receipt_id,
            occurred_at=request.occurred_at,
            currency=request.currency,
            total=request.total,
            lines=request.lines,
        )
        stamps = await add_stamps(conn, request.member_id, earned.program, request.total, request.lines)
        await record_audit(
            actor,
            "purchase.record",
            conn=conn,
            store_code=request.store_code,
            member_id=request.member_id,
            target=f"purchase:{earned.purchase.id}",
            after={"receipt_id": request.receipt_id, "total": request.total, "points": earned.breakdown.points},
        )
        recorded = PurchaseRecorded(
            purchase_id=earned.purchase.id,
            member_id=request.member_id,
            points=earned.breakdown.points,
            available_at=earned.available_at.isoformat(),
            tier=earned.tier.name,
            breakdown=earned.breakdown,
            stamps=stamps,
        )
        return asdict(recorded)

    key = ledger.purchase_key(request.store_code, request.receipt_id)
    return PurchaseRecorded.from_json(await run_idempotent("purchase", key, _request_document(request), action))


async def preview_purchase(request: PurchaseRequest) -> EarnBreakdown:
    """What `record_purchase` would credit for this receipt now, writing nothing.

    Uses the member's current tier (a purchase that lifts the member into a higher tier earns at the old tier's
    multiplier, as `record_purchase` does). Validates like `record_purchase`, except for idempotency.
    """
    check_request(request)
    program = await load_program()
    if request.currency != program.currency:
        raise CurrencyMismatch(f"the programme runs in {program.currency}, not {request.currency}", field="currency")
    member = await Member.get_or_none(id=request.member_id)
    if member is None:
        raise MemberNotFound("no such member", field="member")
    tier = next((t for t in program.tiers if t.id == member.tier_id), None)
    return compute_points(program, tier, request.lines, await active_rules(request.occurred_at))


async def refund_purchase(
    actor: Actor,
    *,
    store_code: str,
    receipt_id: str,
    refund_id: str,
    amount: int | None = None,
    lines: Sequence[ledger.LineRefund] | None = None,
    member_id: int | None = None,
) -> ledger.RefundResult:
    """Refund a purchase by amount or by lines (see `ledger.refund_in_transaction`); idempotent per (store, refund).

    With `member_id` (the checkout console: the member on screen) another member's receipt is `PurchaseNotFound`,
    also when the refund id replays an earlier refund. Stamps stay (see `loyalty.stamps`).
    """
    request = ledger.check_refund(
        store_code=store_code, receipt_id=receipt_id, refund_id=refund_id, amount=amount, lines=lines
    )

    async def action(conn: BaseDBAsyncClient) -> dict[str, Any]:
        result = await ledger.refund_in_transaction(
            conn,
            store_code=store_code,
            receipt_id=receipt_id,
            refund_id=refund_id,
            amount=amount,
            lines=lines,
            member_id=member_id,
        )
        await record_audit(
            actor,
            "purchase.refund",
            conn=conn,
            store_code=store_code,
            member_id=result.member_id,
            target=f"purchase:{result.purchase_id}",
            after={"refund_id": refund_id, "amount": result.amount, "points_reversed": result.points_reversed},
        )
        return asdict(result)

    # The same scope, key and answer as `ledger.refund_purchase`: either may replay the other's refund.
    result = ledger.RefundResult(
        **await run_idempotent("refund", ledger.refund_key(store_code, refund_id), request, action)
    )
    if member_id is not None and result.member_id != member_id:  # a replayed refund of another member's receipt
        raise ledger.not_the_members_receipt(store_code, receipt_id)
    return result
