"""Staff: membershipPaymentRecord (the payment system's reports), staffMembershipCancel at the till, the membership in
the member as the till sees it; userErrors with nothing written, cashiers refused."""

from __future__ import annotations

from typing import Any

from strawberry import relay

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import Member, Membership, MembershipStatus
from tests.loyalty.membership_helpers import NOTHING_WRITTEN, pay, plans, written
from tests.schema.staff.conftest import run_staff

RECORD = (
    "mutation($i: MembershipPaymentRecordInput!) { membershipPaymentRecord(input: $i) {"
    " payment { outcome status planCode periodEnd graceUntil events }"
    " member { memberNumber membership { status plan { code } } }"
    " userErrors { code message field } } }"
)


def _input(who: Member, **changes: Any) -> dict[str, Any]:
    return {
        "member": relay.to_base64("Member", who.id),
        "planCode": "PLUS",
        "paymentId": "p1",
        "outcome": "SUCCEEDED",
        "amount": 4900,
        "currency": "EUR",
        "occurredAt": "2026-03-02T11:00:00+00:00",
        **changes,
    }


async def test_the_payment_system_records_a_payment_through_the_staff_api(
    anna: Member, manager: Actor, clock: FrozenClock
) -> None:
    # given the plans
    await plans()
    # when the payment system (a manager-role key) reports a payment
    result = await run_staff(RECORD, manager, {"i": _input(anna)})

    # then the payment, the membership, the member as the till sees it
    assert result.errors is None
    assert result.data["membershipPaymentRecord"] == {
        "payment": {
            "outcome": "SUCCEEDED",
            "status": "ACTIVE",
            "planCode": "PLUS",
            "periodEnd": "2026-04-02T11:00:00+00:00",
            "graceUntil": "2026-04-09T11:00:00+00:00",
            "events": ["membership.started"],
        },
        "member": {"memberNumber": anna.member_number, "membership": {"status": "ACTIVE", "plan": {"code": "PLUS"}}},
        "userErrors": [],
    }
    # and a replay answers the same
    assert (await run_staff(RECORD, manager, {"i": _input(anna)})).data == result.data


async def test_bad_payments_are_user_errors_with_nothing_written(
    anna: Member, manager: Actor, cashier: Actor, clock: FrozenClock
) -> None:
    await plans()
    cases = [
        ({"planCode": "GOLD"}, "PLAN_UNKNOWN", ["input", "planCode"]),
        ({"currency": "SEK"}, "CURRENCY_MISMATCH", ["input", "currency"]),
        ({"paymentId": "p\x00"}, "INVALID", ["input", "paymentId"]),
        ({"amount": 0}, "INVALID", ["input", "amount"]),
        ({"amount": -5}, "INVALID", ["input", "amount"]),
        ({"outcome": "REFUNDED", "refundOf": "nope", "amount": 100}, "PAYMENT_NOT_FOUND", ["input", "refundOf"]),
        ({"member": relay.to_base64("Member", anna.id + 99)}, "MEMBER_NOT_FOUND", ["input", "member"]),
    ]
    for changes, code, field in cases:
        result = await run_staff(RECORD, manager, {"i": _input(anna, **changes)})
        errors = result.data["membershipPaymentRecord"]["userErrors"]
        assert [(e["code"], e["field"]) for e in errors] == [(code, field)], changes
    # and a cashier is refused before anything
    refused = await run_staff(RECORD, cashier, {"i": _input(anna)})
    assert refused.data is None
    assert [e.extensions["code"] for e in refused.errors] == ["FORBIDDEN"]
    assert await written() == NOTHING_WRITTEN


async def test_staff_cancel_at_the_till(anna: Member, cashier: Actor, clock: FrozenClock) -> None:
    # given a membership
    await plans()
    await pay(clock, anna.id, "p1")
    # when a cashier cancels it for the member
    result = await run_staff(
        "mutation($m: ID!) { staffMembershipCancel(input: {member: $m}) { status endsAt userErrors { code } } }",
        cashier,
        {"m": relay.to_base64("Member", anna.id)},
    )
    # then it ends at the period end
    assert result.data["staffMembershipCancel"] == {
        "status": "CANCELLED",
        "endsAt": "2026-04-02T12:00:00+00:00",
        "userErrors": [],
    }
    assert (await Membership.get(member_id=anna.id)).status == MembershipStatus.CANCELLED
