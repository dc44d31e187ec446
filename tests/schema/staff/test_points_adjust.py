"""pointsAdjust through the staff schema: the payload, every userError code, and nothing written on errors."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import AuditLog, Member
from tests.loyalty.ledger_helpers import balances, give_available
from tests.schema.staff.conftest import run_staff

ADJUST = """
mutation Adjust($input: PointsAdjustInput!) {
  pointsAdjust(input: $input) {
    adjustment { amount reasonCode note availableBefore availableAfter createdAt }
    member { memberNumber points { available } }
    userErrors { code message field }
  }
}
"""


@pytest.fixture
async def member(anna: Member) -> Member:
    await give_available(anna.id, 400)
    return anna


def _input(target: Member, **overrides: Any) -> dict[str, Any]:
    return {
        "member": relay.to_base64("Member", target.id),
        "amount": 100,
        "reasonCode": "GOODWILL",
        "idempotencyKey": "k1",
        **overrides,
    }


async def _adjust(actor: Actor, variables: dict[str, Any]) -> dict[str, Any]:
    result = await run_staff(ADJUST, actor, {"input": variables})
    assert result.errors is None, result.errors
    return result.data["pointsAdjust"]


async def test_an_adjustment_returns_the_result_and_the_member(
    member: Member, cashier: Actor, clock: FrozenClock
) -> None:
    payload = await _adjust(cashier, _input(member, note="birthday cake was late"))

    assert payload == {
        "adjustment": {
            "amount": 100,
            "reasonCode": "GOODWILL",
            "note": "birthday cake was late",
            "availableBefore": 400,
            "availableAfter": 500,
            "createdAt": clock.now().isoformat(),
        },
        "member": {"memberNumber": member.member_number, "points": {"available": 500}},
        "userErrors": [],
    }
    audit = await AuditLog.get()
    assert (audit.actor_id, audit.action, audit.store_code, audit.reason) == (
        1,
        "points.adjust",
        "S1",
        "goodwill: birthday cake was late",
    )


async def test_a_retry_returns_the_same_adjustment(member: Member, cashier: Actor) -> None:
    first = await _adjust(cashier, _input(member, amount=-200, reasonCode="CORRECTION"))

    again = await _adjust(cashier, _input(member, amount=-200, reasonCode="CORRECTION"))

    assert again == first
    assert await balances(member.id) == (200, 0, 400)


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"amount": 501}, "FORBIDDEN", ["input", "amount"]),
        ({"amount": -401}, "INSUFFICIENT_POINTS", ["input", "amount"]),
        ({"amount": 0}, "INVALID", ["input", "amount"]),
        ({"reasonCode": "OTHER"}, "NOTE_REQUIRED", ["input", "note"]),
        ({"member": relay.to_base64("Member", 999_999)}, "MEMBER_NOT_FOUND", ["input", "member"]),
        ({"member": relay.to_base64("Voucher", 1)}, "MEMBER_NOT_FOUND", ["input", "member"]),
        ({"member": "not-a-global-id"}, "MEMBER_NOT_FOUND", ["input", "member"]),
        ({"idempotencyKey": ""}, "INVALID", ["input", "idempotencyKey"]),
    ],
)
async def test_refusals_are_user_errors_and_write_nothing(
    member: Member, cashier: Actor, overrides: dict[str, Any], code: str, field: list[str]
) -> None:
    payload = await _adjust(cashier, _input(member, **overrides))

    assert payload["adjustment"] is None
    assert payload["member"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)]
    assert await balances(member.id) == (400, 0, 400)
    assert await AuditLog.all().count() == 0


async def test_a_reused_key_is_a_user_error(member: Member, cashier: Actor) -> None:
    await _adjust(cashier, _input(member))

    payload = await _adjust(cashier, _input(member, amount=101))

    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("IDEMPOTENCY_KEY_REUSED", ["input", "idempotencyKey"])
    ]
    assert await balances(member.id) == (500, 0, 500)


async def test_a_manager_may_go_above_the_cap(member: Member, manager: Actor) -> None:
    payload = await _adjust(manager, _input(member, amount=600, reasonCode="MISSED_PURCHASE"))

    assert payload["userErrors"] == []
    assert payload["member"]["points"] == {"available": 1_000}


async def test_an_unknown_reason_code_is_a_malformed_request(member: Member, cashier: Actor) -> None:
    result = await run_staff(ADJUST, cashier, {"input": _input(member, reasonCode="BECAUSE")})

    assert result.data is None
    assert result.errors is not None
    assert "BECAUSE" in result.errors[0].message
    assert await AuditLog.all().count() == 0
