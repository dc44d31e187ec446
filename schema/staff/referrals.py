"""Referrals on the staff endpoint (manager and above): the `Referral` type with its abuse flags and the review
queue `referrals(status, first, after)`; `referralReview` is in `schema/staff/mutations/referral_review.py`."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry import relay

from loyalty import models, referrals
from loyalty.keys import primary_keys
from loyalty.models import StaffRole
from schema.global_ids import MEMBER, NodeType
from schema.staff.context import StaffInfo
from schema.types.enum_map import EnumMap
from schema.types.pagination import decode_cursor, encode_cursor, forward_page_info, page_size

REFERRAL = NodeType.of("Referral", models.Referral)


@strawberry.enum(name="ReferralStatus")
class ReferralStatus(Enum):
    APPLIED = "applied"
    FLAGGED = "flagged"
    CONVERTED = "converted"
    REWARDED = "rewarded"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


REFERRAL_STATUSES = EnumMap(
    models.ReferralStatus,
    ReferralStatus,
    {
        models.ReferralStatus.APPLIED: ReferralStatus.APPLIED,
        models.ReferralStatus.FLAGGED: ReferralStatus.FLAGGED,
        models.ReferralStatus.CONVERTED: ReferralStatus.CONVERTED,
        models.ReferralStatus.REWARDED: ReferralStatus.REWARDED,
        models.ReferralStatus.CANCELLED: ReferralStatus.CANCELLED,
        models.ReferralStatus.REJECTED: ReferralStatus.REJECTED,
    },
)


@strawberry.type(description="Why a referral was flagged (or its referrer's bonus capped), in plain words.")
class ReferralFlag:
    check: str = strawberry.field(
        description="SELF_REFERRAL_EMAIL, SELF_REFERRAL_PHONE, SELF_REFERRAL_DEVICE, SELF_REFERRAL_CARD, RING, "
        "DEVICE_VELOCITY, RETURNING_MEMBER; REFERRER_CAP is a note, not a flag."
    )
    detail: str


@strawberry.type(description="A referee's referral: who referred whom, its status, flags and bonuses.")
class Referral:
    id: strawberry.ID
    referrer: strawberry.ID = strawberry.field(description="The referrer's member global id.")
    referee: strawberry.ID = strawberry.field(description="The referee's member global id.")
    code: str
    status: ReferralStatus
    flags: list[ReferralFlag]
    applied_at: datetime
    converted_at: datetime | None
    available_at: datetime | None = strawberry.field(description="When the bonuses become spendable.")
    referee_points: int
    referrer_points: int
    reviewed_at: datetime | None
    review_note: str

    @classmethod
    def from_model(cls, referral: models.Referral) -> Referral:
        return cls(
            id=strawberry.ID(REFERRAL.encode(referral.id)),
            referrer=strawberry.ID(MEMBER.encode(referral.referrer_id)),
            referee=strawberry.ID(MEMBER.encode(referral.referee_id)),
            code=referral.code,
            status=REFERRAL_STATUSES.to_api(referral.status),
            flags=[
                ReferralFlag(check=str(f.get("check", "")), detail=str(f.get("detail", ""))) for f in referral.flags
            ],
            applied_at=referral.applied_at,
            converted_at=referral.converted_at,
            available_at=referral.available_at,
            referee_points=referral.referee_points,
            referrer_points=referral.referrer_points,
            reviewed_at=referral.reviewed_at,
            review_note=referral.review_note,
        )


@strawberry.type
class ReferralEdge:
    cursor: str
    node: Referral


@strawberry.type(description="Referrals, oldest first.")
class ReferralConnection:
    page_info: relay.PageInfo
    edges: list[ReferralEdge]

    @classmethod
    def from_page(cls, page: referrals.ReferralPage) -> ReferralConnection:
        edges = [
            ReferralEdge(node=Referral.from_model(r), cursor=encode_cursor("referrals", r.id)) for r in page.referrals
        ]
        return cls(edges=edges, page_info=forward_page_info(edges, has_next_page=page.has_next))


@strawberry.type
class ReferralQuery:
    @strawberry.field(
        description="Referrals, oldest first, of one status if given: FLAGGED is the review queue (manager and above)."
    )
    async def referrals(
        self, info: StaffInfo, status: ReferralStatus | None = None, first: int = 20, after: str | None = None
    ) -> ReferralConnection:
        info.context.require(StaffRole.MANAGER)
        size = page_size(first)
        after_id = decode_cursor("referrals", after, primary_keys(models.Referral))
        domain_status = REFERRAL_STATUSES.to_domain(status) if status is not None else None
        return ReferralConnection.from_page(await referrals.review_queue(domain_status, size, after_id))
