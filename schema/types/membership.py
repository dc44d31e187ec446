"""A member's paid membership as the app and the till show it (`loyalty.memberships`): plan, status, dates, benefits."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import memberships, models
from schema.types.enum_map import EnumMap


@strawberry.enum(
    name="MembershipStatus",
    description=(
        "ACTIVE: paid for the current period. GRACE: a renewal failed or is not reported yet; the benefits stay "
        "until `endsAt`. CANCELLED: will not renew; the benefits stay until `endsAt`. LAPSED: no benefits."
    ),
)
class MembershipStatus(Enum):
    ACTIVE = "active"
    GRACE = "grace"
    CANCELLED = "cancelled"
    LAPSED = "lapsed"


MEMBERSHIP_STATUSES = EnumMap(
    models.MembershipStatus,
    MembershipStatus,
    {
        models.MembershipStatus.ACTIVE: MembershipStatus.ACTIVE,
        models.MembershipStatus.GRACE: MembershipStatus.GRACE,
        models.MembershipStatus.CANCELLED: MembershipStatus.CANCELLED,
        models.MembershipStatus.LAPSED: MembershipStatus.LAPSED,
    },
)


@strawberry.enum(name="MembershipPeriod", description="How often a plan is paid.")
class MembershipPeriod(Enum):
    MONTHLY = "monthly"
    YEARLY = "yearly"


MEMBERSHIP_PERIODS = EnumMap(
    models.PlanPeriod,
    MembershipPeriod,
    {models.PlanPeriod.MONTHLY: MembershipPeriod.MONTHLY, models.PlanPeriod.YEARLY: MembershipPeriod.YEARLY},
)


@strawberry.type(name="MembershipBenefits", description="What a paid membership plan gives.")
class MembershipBenefits:
    earn_multiplier: str = strawberry.field(
        description="Points multiplier, exact decimal (e.g. `2`); multiplies with the tier's and the campaigns'."
    )
    free_delivery: bool
    early_access_rank: int = strawberry.field(description="Offers and rewards for paid members need this rank.")
    included_offers: list[str] = strawberry.field(description="Names of the offers only this plan's members get.")

    @classmethod
    def from_domain(cls, benefits: memberships.Benefits) -> MembershipBenefits:
        return cls(
            earn_multiplier=f"{benefits.earn_multiplier.normalize():f}",
            free_delivery=benefits.free_delivery,
            early_access_rank=benefits.early_access_rank,
            included_offers=list(benefits.included_offers),
        )


@strawberry.type(name="MembershipPlan", description="A paid membership plan.")
class MembershipPlan:
    code: str
    name: str
    price: int = strawberry.field(description="Minor units, per period.")
    currency: str
    period: MembershipPeriod
    benefits: MembershipBenefits

    @classmethod
    def from_model(cls, plan: models.MembershipPlan) -> MembershipPlan:
        return cls(
            code=plan.code,
            name=plan.name,
            price=plan.price,
            currency=plan.currency,
            period=MEMBERSHIP_PERIODS.to_api(plan.period),
            benefits=MembershipBenefits.from_domain(memberships.Benefits.of(plan)),
        )


@strawberry.type(name="Membership", description="The member's paid membership (klubb records payments, takes none).")
class Membership:
    plan: MembershipPlan
    status: MembershipStatus
    renews_at: datetime | None = strawberry.field(description="When the next payment is due (ACTIVE only).")
    ends_at: datetime | None = strawberry.field(
        description="When the benefits end unless a payment comes (GRACE, CANCELLED)."
    )
    benefits: MembershipBenefits | None = strawberry.field(description="What it gives now; null once lapsed.")

    @classmethod
    def from_view(cls, view: memberships.MembershipView) -> Membership:
        return cls(
            plan=MembershipPlan.from_model(view.plan),
            status=MEMBERSHIP_STATUSES.to_api(view.status),
            renews_at=view.renews_at,
            ends_at=view.ends_at,
            benefits=MembershipBenefits.from_domain(view.benefits) if view.benefits is not None else None,
        )
