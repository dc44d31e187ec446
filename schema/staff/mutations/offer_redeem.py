"""offerRedeem: a cashier redeems a member's personalized offer at the till (limits hold under concurrency)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry

from loyalty import models
from loyalty.errors import DomainError
from loyalty.models import StaffRole
from loyalty.offers import MemberOffer, OfferNotFound, OfferRedemptionResult, redeem_offer
from schema.errors import UserError, to_user_error
from schema.global_ids import OFFER
from schema.staff.context import StaffInfo
from schema.staff.lookup import MemberSummary, member_id_of
from schema.types.offer import OFFER_BENEFITS, Offer, OfferBenefit


@strawberry.enum
class OfferRedeemErrorCode(Enum):
    INVALID = "INVALID"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    OFFER_NOT_FOUND = "OFFER_NOT_FOUND"
    OFFER_NOT_APPLICABLE = "OFFER_NOT_APPLICABLE"
    OFFER_LIMIT_REACHED = "OFFER_LIMIT_REACHED"
    NOT_ACTIVATED = "NOT_ACTIVATED"
    MIN_SPEND_NOT_MET = "MIN_SPEND_NOT_MET"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"


@strawberry.type
class OfferRedeemUserError(UserError):
    code: OfferRedeemErrorCode


@strawberry.input
class OfferRedeemInput:
    member: strawberry.ID = strawberry.field(description="The member's global id (`MemberSummary.id`).")
    offer_id: strawberry.ID = strawberry.field(description="The offer's global id (`Offer.id`).")
    store_code: str
    purchase_total: int | None = strawberry.field(
        default=None, description="The purchase total in minor units: needed for a minimum spend and percent off."
    )
    idempotency_key: str = strawberry.field(description="A retry with the same key returns the first result.")


@strawberry.type(description="A redeemed offer: what the till applies to the purchase.")
class CheckoutOffer:
    offer: Offer = strawberry.field(description="The offer as it stands for the member after this redemption.")
    benefit: OfferBenefit
    points_credited: int = strawberry.field(description="Bonus points credited to the member (available at once).")
    discount: int | None = strawberry.field(
        description="Minor units to take off: amount off (at most the purchase total) or percent of the purchase "
        "total, floored. Null without a purchase total for percent off, and for other benefits."
    )
    percent_off: int | None
    free_item_sku: str | None
    store_code: str
    redeemed_at: datetime

    @classmethod
    def from_result(cls, result: OfferRedemptionResult, offer: models.Offer) -> CheckoutOffer:
        return cls(
            offer=Offer.from_member_offer(MemberOffer(offer, result.activated, result.remaining_uses)),
            benefit=OFFER_BENEFITS.to_api(result.benefit),
            points_credited=result.points_credited,
            discount=result.discount,
            percent_off=result.percent_off,
            free_item_sku=result.free_item_sku,
            store_code=result.store_code,
            redeemed_at=result.redeemed_at,
        )


@strawberry.type
class OfferRedeemPayload:
    redemption: CheckoutOffer | None
    member: MemberSummary | None
    user_errors: list[OfferRedeemUserError]


async def offer_redeem(info: StaffInfo, input: OfferRedeemInput) -> OfferRedeemPayload:
    actor = info.context.require(StaffRole.CASHIER, input.store_code)
    try:
        member_id = member_id_of(input.member)
        offer_id = OFFER.decode(input.offer_id)
        if offer_id is None:
            raise OfferNotFound("no such offer", field="offer_id")
        result = await redeem_offer(
            actor,
            member_id=member_id,
            offer_id=offer_id,
            store_code=input.store_code,
            purchase_total=input.purchase_total,
            idempotency_key=input.idempotency_key,
        )
    except DomainError as error:
        return OfferRedeemPayload(
            redemption=None, member=None, user_errors=[to_user_error(OfferRedeemUserError, OfferRedeemErrorCode, error)]
        )
    offer = await models.Offer.get(id=result.offer_id)
    member = await info.context.loaders.member.load(result.member_id)
    return OfferRedeemPayload(
        redemption=CheckoutOffer.from_result(result, offer),
        member=MemberSummary.from_model(member) if member is not None else None,
        user_errors=[],
    )


@strawberry.type
class OfferRedeemMutation:
    offer_redeem: OfferRedeemPayload = strawberry.mutation(
        resolver=offer_redeem,
        description="Redeem a member's offer at the till: it must apply to them now, be activated if it needs it, "
        "and the purchase must reach its minimum spend. Bonus points are credited at once.",
    )
