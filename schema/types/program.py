"""The program as the member app sees it: name, currency and tiers."""

from __future__ import annotations

import strawberry

from loyalty import donations, models
from loyalty.program import tiers_of
from schema.types.reward import DonationTotal


@strawberry.type
class Tier:
    name: str
    threshold: int = strawberry.field(description="Qualifying value needed within one period.")
    benefits: list[str]
    points_multiplier: float

    @classmethod
    def from_model(cls, tier: models.Tier) -> Tier:
        return cls(
            name=tier.name,
            threshold=tier.threshold,
            benefits=list(tier.benefits),
            points_multiplier=float(tier.multiplier),
        )


@strawberry.type
class Program:
    name: str
    currency: str
    tiers: list[Tier]
    tier_metric: str = strawberry.field(description="What tiers qualify on: `points` or `spend` (minor units).")
    pending_days: int = strawberry.field(description="Days points stay pending (the return window).")
    expiry_days: int | None = strawberry.field(description="Days available points last; null: they never expire.")

    @strawberry.field(description="Total donated per cause through donation rewards, by cause name.")
    async def donations(self) -> list[DonationTotal]:
        return [
            DonationTotal(cause=t.cause, amount=t.amount, donations=t.donations)
            for t in await donations.donation_totals()
        ]

    @classmethod
    def from_model(cls, program: models.Program) -> Program:
        return cls(
            name=program.name,
            currency=program.currency,
            tiers=[Tier.from_model(t) for t in tiers_of(program)],
            tier_metric=program.tier_metric.value,
            pending_days=program.pending_days,
            expiry_days=program.expiry_days,
        )
