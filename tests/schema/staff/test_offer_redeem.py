"""offerRedeem at the till: what the till applies, authorization per role, precise userErrors, idempotency."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from loyalty.actors import Actor
from loyalty.models import Member, OfferBenefit, StaffRole
from loyalty.offers import activate_offer
from tests.loyalty.test_offers import new_offer, written
from tests.schema.staff.conftest import run_staff

MUTATION = """
mutation($input: OfferRedeemInput!) {
  offerRedeem(input: $input) {
    redemption {
      offer { id name activated remainingUses }
      benefit pointsCredited discount percentOff freeItemSku storeCode redeemedAt
    }
    member { name points { available } }
    userErrors { __typename code message field }
  }
}
"""


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def redeem_input(member: Member, offer_id: int, /, **fields: Any) -> dict[str, Any]:
    return {
        "input": {
            "member": gid("Member", member.id),
            "offerId": gid("Offer", offer_id),
            "storeCode": "S1",
            "idempotencyKey": "till-1",
            **fields,
        }
    }


async def test_a_cashier_redeems_a_bonus_points_offer(anna: Member, cashier: Actor) -> None:
    offer = await new_offer(name="Welcome bonus", value=150, per_member_limit=2)

    result = await run_staff(MUTATION, cashier, redeem_input(anna, offer.id, purchaseTotal=2_500))

    assert result.errors is None
    payload = result.data["offerRedeem"]
    assert payload == {
        "redemption": {
            "offer": {"id": gid("Offer", offer.id), "name": "Welcome bonus", "activated": False, "remainingUses": 1},
            "benefit": "BONUS_POINTS",
            "pointsCredited": 150,
            "discount": None,
            "percentOff": None,
            "freeItemSku": None,
            "storeCode": "S1",
            "redeemedAt": payload["redemption"]["redeemedAt"],
        },
        "member": {"name": "Anna", "points": {"available": 150}},
        "userErrors": [],
    }


async def test_a_percent_off_offer_tells_the_till_the_discount(anna: Member, cashier: Actor) -> None:
    offer = await new_offer(benefit=OfferBenefit.PERCENT_OFF, value=20, min_spend=1_000)

    result = await run_staff(MUTATION, cashier, redeem_input(anna, offer.id, purchaseTotal=4_995))

    redemption = result.data["offerRedeem"]["redemption"]
    assert (redemption["benefit"], redemption["discount"], redemption["percentOff"]) == ("PERCENT_OFF", 999, 20)


async def test_a_retry_with_the_same_key_returns_the_first_redemption(anna: Member, cashier: Actor) -> None:
    offer = await new_offer(value=150)

    first = await run_staff(MUTATION, cashier, redeem_input(anna, offer.id))
    again = await run_staff(MUTATION, cashier, redeem_input(anna, offer.id))

    assert again.data == first.data
    assert first.data["offerRedeem"]["member"]["points"] == {"available": 150}


@pytest.mark.parametrize("role", [StaffRole.CASHIER, StaffRole.MANAGER, StaffRole.ADMIN])
async def test_every_staff_role_may_redeem_in_its_stores(anna: Member, role: StaffRole) -> None:
    offer = await new_offer()
    actor = Actor(kind="staff", id=9, role=role, store_codes=("S1",))

    result = await run_staff(MUTATION, actor, redeem_input(anna, offer.id))

    assert result.data["offerRedeem"]["userErrors"] == []


@pytest.mark.parametrize(("actor", "code"), [(None, "UNAUTHENTICATED"), ("cashier", "FORBIDDEN")])
async def test_only_staff_of_that_store_may_redeem(anna: Member, cashier: Actor, actor: str | None, code: str) -> None:
    offer = await new_offer()
    before = await written()

    result = await run_staff(MUTATION, cashier if actor else None, redeem_input(anna, offer.id, storeCode="S2"))

    assert result.data is None
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": code}
    assert await written() == before


async def _refusal(cashier: Actor, variables: dict[str, Any]) -> list[dict[str, Any]]:
    result = await run_staff(MUTATION, cashier, variables)
    assert result.errors is None
    payload = result.data["offerRedeem"]
    assert (payload["redemption"], payload["member"]) == (None, None)
    return [{k: v for k, v in e.items() if k != "message"} for e in payload["userErrors"]]


def _error(code: str, field: str) -> list[dict[str, Any]]:
    return [{"__typename": "OfferRedeemUserError", "code": code, "field": ["input", field]}]


async def test_unknown_or_malformed_ids_are_not_found(anna: Member, cashier: Actor) -> None:
    offer = await new_offer()
    before = await written()

    answers = [
        await _refusal(cashier, redeem_input(anna, offer.id, member=gid("Member", 999_999))),
        await _refusal(cashier, redeem_input(anna, offer.id, member="garbage")),
        await _refusal(cashier, redeem_input(anna, offer.id, member=gid("Offer", anna.id))),
        await _refusal(cashier, redeem_input(anna, 999_999)),
        await _refusal(cashier, redeem_input(anna, offer.id, offerId="garbage")),
        await _refusal(cashier, redeem_input(anna, offer.id, offerId=gid("Member", offer.id))),
    ]

    assert answers == [_error("MEMBER_NOT_FOUND", "member")] * 3 + [_error("OFFER_NOT_FOUND", "offerId")] * 3
    assert await written() == before


@pytest.mark.parametrize(
    ("offer_fields", "input_fields", "code", "field"),
    [
        ({"tier_names": ["Gold"]}, {}, "OFFER_NOT_APPLICABLE", "offerId"),
        ({"requires_activation": True}, {}, "NOT_ACTIVATED", "offerId"),
        ({"min_spend": 5_000}, {"purchaseTotal": 4_999}, "MIN_SPEND_NOT_MET", "purchaseTotal"),
        ({"min_spend": 5_000}, {}, "MIN_SPEND_NOT_MET", "purchaseTotal"),
        ({}, {"purchaseTotal": -1}, "INVALID", "purchaseTotal"),
        ({}, {"idempotencyKey": ""}, "INVALID", "idempotencyKey"),
    ],
)
async def test_business_refusals_are_precise_user_errors_and_write_nothing(
    anna: Member, cashier: Actor, offer_fields: dict[str, Any], input_fields: dict[str, Any], code: str, field: str
) -> None:
    offer = await new_offer(**offer_fields)
    before = await written()

    assert await _refusal(cashier, redeem_input(anna, offer.id, **input_fields)) == _error(code, field)
    assert await written() == before


async def test_an_activated_offer_is_redeemable(anna: Member, cashier: Actor) -> None:
    offer = await new_offer(requires_activation=True)
    await activate_offer(anna.id, offer.id)

    result = await run_staff(MUTATION, cashier, redeem_input(anna, offer.id))

    assert result.data["offerRedeem"]["redemption"]["offer"]["activated"] is True


async def test_a_used_up_offer_and_a_reused_key_are_refused(anna: Member, cashier: Actor) -> None:
    offer = await new_offer()
    await run_staff(MUTATION, cashier, redeem_input(anna, offer.id))
    before = await written()

    assert await _refusal(cashier, redeem_input(anna, offer.id, idempotencyKey="till-2")) == _error(
        "OFFER_LIMIT_REACHED", "offerId"
    )
    assert await _refusal(cashier, redeem_input(anna, offer.id, purchaseTotal=100)) == _error(
        "IDEMPOTENCY_KEY_REUSED", "idempotencyKey"
    )
    assert await written() == before
