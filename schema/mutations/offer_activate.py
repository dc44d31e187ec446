"""offerActivate: the member activates ("clips") an offer in the app so it can be redeemed at the checkout."""

from __future__ import annotations

from enum import Enum

import strawberry

from loyalty.errors import DomainError
from loyalty.offers import OfferNotFound, activate_offer
from schema.context import Info
from schema.errors import UserError, to_user_error
from schema.global_ids import OFFER
from schema.types.offer import Offer


@strawberry.enum
class OfferActivateErrorCode(Enum):
    INVALID = "INVALID"
    OFFER_NOT_FOUND = "OFFER_NOT_FOUND"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"


@strawberry.type
class OfferActivateUserError(UserError):
    code: OfferActivateErrorCode


@strawberry.input
class OfferActivateInput:
    offer_id: strawberry.ID = strawberry.field(description="An offer from `me.offers`.")


@strawberry.type
class OfferActivatePayload:
    offer: Offer | None = strawberry.field(description="The offer, activated. Activating it again changes nothing.")
    user_errors: list[OfferActivateUserError]


async def offer_activate(info: Info, input: OfferActivateInput) -> OfferActivatePayload:
    member_id = info.context.require_member()
    try:
        offer_id = OFFER.decode(input.offer_id)
        if offer_id is None:
            raise OfferNotFound("no such offer", field="offer_id")
        item = await activate_offer(member_id, offer_id)
    except DomainError as error:
        return OfferActivatePayload(
            offer=None, user_errors=[to_user_error(OfferActivateUserError, OfferActivateErrorCode, error)]
        )
    return OfferActivatePayload(offer=Offer.from_member_offer(item), user_errors=[])
