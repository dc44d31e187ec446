"""Staff-schema types shared by purchaseRecord and purchasePreview: receipt lines and the earning breakdown."""

from __future__ import annotations

from datetime import datetime

import strawberry

from loyalty import earning
from loyalty.purchases import PurchaseRequest
from loyalty.stamps import StampOutcome


@strawberry.input(description="One receipt line; `amount` is the line total in minor units.")
class PurchaseLineInput:
    sku: str
    category: str = ""
    quantity: int = 1
    amount: int
    voided: bool = strawberry.field(
        default=False, description="Cancelled at the till: not in the total, earns nothing."
    )


@strawberry.input(description="A receipt as the till sends it (purchaseRecord and purchasePreview take the same).")
class PurchaseRecordInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    store_code: str
    receipt_id: str = strawberry.field(description="Unique per store: a retry with it returns the first result.")
    occurred_at: datetime
    currency: str
    total: int = strawberry.field(description="Minor units; must equal the sum of the lines that are not voided.")
    lines: list[PurchaseLineInput]
    payment_fingerprint: str | None = strawberry.field(
        default=None,
        description="The payment card's fingerprint from the payment terminal, if it gives one (stored only hashed: "
        "the referral abuse checks). 1 to 200 printable characters.",
    )

    def to_request(self, member_id: int) -> PurchaseRequest:
        lines = tuple(
            earning.LineInput(sku=x.sku, category=x.category, quantity=x.quantity, amount=x.amount, voided=x.voided)
            for x in self.lines
        )
        return PurchaseRequest(
            member_id=member_id,
            store_code=self.store_code,
            receipt_id=self.receipt_id,
            occurred_at=self.occurred_at,
            currency=self.currency,
            total=self.total,
            lines=lines,
            payment_fingerprint=self.payment_fingerprint,
        )


@strawberry.type(description="What one receipt line earned.")
class LineEarning:
    line_no: int = strawberry.field(description="1-based position on the receipt (refunds by line name it).")
    points: int = strawberry.field(description="The line's share of the multiplied points, plus its bonuses.")
    bonus: int
    excluded: bool = strawberry.field(description="The line's category never earns (gift cards, deposits).")
    voided: bool


@strawberry.type(
    description=(
        "Why a purchase earns what it earns: points = base + tierExtra + membershipExtra + campaignExtra + bonus."
    )
)
class EarningBreakdown:
    points: int
    eligible_amount: int = strawberry.field(description="Minor units that earn.")
    base: int = strawberry.field(description="floor(eligible amount x earn rate): what tiers qualify on.")
    tier_extra: int
    membership_extra: int = strawberry.field(description="What the paid membership's multiplier adds.")
    campaign_extra: int
    bonus: int = strawberry.field(description="Category/SKU bonuses, floored per line and rule, not multiplied.")
    tier_multiplier: str = strawberry.field(description="Exact decimal, e.g. `1.25`.")
    membership_multiplier: str = strawberry.field(
        description="The paid membership plan's multiplier (`1` without one), exact decimal."
    )
    campaign_multiplier: str = strawberry.field(description="Product of the campaigns that applied, exact decimal.")
    campaigns: list[str]
    bonus_rules: list[str]
    lines: list[LineEarning]

    @classmethod
    def from_domain(cls, breakdown: earning.EarnBreakdown) -> EarningBreakdown:
        return cls(
            points=breakdown.points,
            eligible_amount=breakdown.eligible_amount,
            base=breakdown.base,
            tier_extra=breakdown.tier_extra,
            membership_extra=breakdown.membership_extra,
            campaign_extra=breakdown.campaign_extra,
            bonus=breakdown.bonus,
            tier_multiplier=breakdown.tier_multiplier,
            membership_multiplier=breakdown.membership_multiplier,
            campaign_multiplier=breakdown.campaign_multiplier,
            campaigns=list(breakdown.campaigns),
            bonus_rules=list(breakdown.bonus_rules),
            lines=[
                LineEarning(line_no=x.line_no, points=x.points, bonus=x.bonus, excluded=x.excluded, voided=x.voided)
                for x in breakdown.lines
            ],
        )


@strawberry.type(description="Stamps one purchase added to a stamp card.")
class StampsAdded:
    name: str
    added: int
    stamps: int = strawberry.field(description="On the card now, after completions.")
    stamps_required: int
    vouchers_issued: int = strawberry.field(description="Cards completed by this purchase, one voucher each.")

    @classmethod
    def from_domain(cls, outcome: StampOutcome) -> StampsAdded:
        return cls(
            name=outcome.name,
            added=outcome.added,
            stamps=outcome.stamps,
            stamps_required=outcome.stamps_required,
            vouchers_issued=outcome.vouchers_issued,
        )
