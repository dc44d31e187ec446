"""memberLookup: the checkout finds a member (card scan, member number, phone, email) and sees a summary.

`MemberSummary` is what the cashier sees in one glance. Other features (offers, vouchers, stamp cards) add their
fields as a strawberry type in their own module — resolvers that read `self.model` and load through a per-request
DataLoader (`info.context.loaders`), so the lookup's SQL statement count stays constant — and list that class
among `MemberSummary`'s bases below.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Self

import strawberry
from strawberry import relay

from loyalty import clock, models
from loyalty.ledger import settle_member_if_due
from loyalty.lookup import find_member
from loyalty.models import StaffRole
from loyalty.program import cached_program
from loyalty.tiers import tier_progress
from schema.staff.context import StaffInfo
from schema.types.member import Points, TierProgress
from schema.types.program import Tier

MEMBER_TYPE = "Member"  # the member's global id is the same on both endpoints


def member_global_id(member_id: int) -> strawberry.ID:
    """The member's global id (`Member:<pk>`, base64), as the member app's `me.id`."""
    return strawberry.ID(relay.to_base64(MEMBER_TYPE, member_id))


def member_pk(global_id: str) -> int | None:
    """The primary key in a member's global id; None for anything else (malformed, another type)."""
    try:
        type_name, key = relay.from_base64(global_id)
    except ValueError:
        return None
    return int(key) if type_name == MEMBER_TYPE and key.isascii() and key.isdigit() and len(key) < 12 else None


@strawberry.type
class MemberSummaryCore:
    """Who the member is, their points and their tier progress."""

    id: strawberry.ID = strawberry.field(description="The member's global id: pass it as `member` to mutations.")
    member_number: str
    name: str
    model: strawberry.Private[models.Member]

    @classmethod
    def from_model(cls, member: models.Member) -> Self:
        return cls(
            id=member_global_id(member.id), member_number=member.member_number, name=member.display_name, model=member
        )

    @strawberry.field
    async def points(self) -> Points:
        program = await cached_program()
        return Points(
            available=self.model.points_available,
            pending=self.model.points_pending,
            lifetime_earned=self.model.lifetime_earned,
            member_id=self.model.id,
            expiring_days=program.expiring_soon_days,
        )

    @strawberry.field(description="The current tier and how far the member is from the next one.")
    async def tier(self, info: StaffInfo) -> TierProgress:
        program = await cached_program()
        value = await info.context.loaders.qualifying_value(program).load(self.model.id)
        progress = tier_progress(self.model, program, value, clock.now())
        values = {f.name: getattr(progress, f.name) for f in fields(progress)}
        values["current"] = Tier.from_model(progress.current)
        values["next"] = Tier.from_model(progress.next) if progress.next else None
        return TierProgress(**values)


@strawberry.type(name="MemberSummary", description="What the checkout shows about a member.")
class MemberSummary(MemberSummaryCore):
    # Other features' field classes (active offers, vouchers, stamp cards) go among the bases above.
    pass


@strawberry.type
class MemberLookupQuery:
    @strawberry.field(
        description=(
            "Find a member by scanned card barcode (member number + rotating code; single-use, valid for its short "
            "window), member number, phone or email. Null when nothing matches, the match is ambiguous, or the card "
            "code is expired or already used."
        )
    )
    async def member_lookup(self, info: StaffInfo, query: str) -> MemberSummary | None:
        info.context.require(StaffRole.CASHIER)
        member = await find_member(query, clock.now())
        if member is None:
            return None
        return MemberSummary.from_model(await settle_member_if_due(member))
