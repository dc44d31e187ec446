"""The app's membership screen and membershipCancel; the staff's membershipPaymentRecord, membershipCancel and the
membership in memberLookup: whole results, userErrors with nothing written, the SQL budget."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from loyalty.clock import FrozenClock
from loyalty.models import Member
from tests.loyalty.membership_helpers import pay, plans
from tests.schema.conftest import SQLCounter

OPERATIONS = Path(__file__).parents[2] / "mobile-client-mock" / "operations"
MEMBERSHIP = (OPERATIONS / "Membership.graphql").read_text()
CANCEL = (OPERATIONS / "MembershipCancel.graphql").read_text()
PLUS_BENEFITS = {"earnMultiplier": "2", "freeDelivery": True, "earlyAccessRank": 1, "includedOffers": []}
PLUS_PLAN = {
    "code": "PLUS",
    "name": "Plus",
    "price": 4900,
    "currency": "EUR",
    "period": "MONTHLY",
    "benefits": PLUS_BENEFITS,
}


async def test_the_membership_screen_shows_the_plan_status_dates_and_benefits(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    client = as_member(anna)
    # given no membership: null
    assert (await client.execute(MEMBERSHIP))["data"]["me"]["membership"] is None
    # when a Plus payment is recorded now (2026-03-02 12:00 UTC)
    await plans()
    await pay(clock, anna.id, "p1")

    # then the whole screen
    me = (await client.execute(MEMBERSHIP))["data"]["me"]
    assert me["membership"] == {
        "plan": PLUS_PLAN,
        "status": "ACTIVE",
        "renewsAt": "2026-04-02T12:00:00+00:00",
        "endsAt": None,
        "benefits": PLUS_BENEFITS,
    }
    # and once cancelled: no renewal, ends at the period end
    result = await client.execute(CANCEL)
    assert result["data"]["membershipCancel"] == {
        "membership": {"status": "CANCELLED", "renewsAt": None, "endsAt": "2026-04-02T12:00:00+00:00"},
        "userErrors": [],
    }
    # and at the period end, before any job: lapsed, no benefits
    clock.set(clock.now() + timedelta(days=31))
    client = as_member(anna)  # a fresh session at the new time
    me = (await client.execute(MEMBERSHIP))["data"]["me"]
    assert me["membership"] == {
        "plan": PLUS_PLAN,
        "status": "LAPSED",
        "renewsAt": None,
        "endsAt": None,
        "benefits": None,
    }
    # and cancelling again is a userError
    assert (await client.execute(CANCEL))["data"]["membershipCancel"] == {
        "membership": None,
        "userErrors": [{"code": "MEMBERSHIP_NOT_ACTIVE", "message": "there is no membership to cancel", "field": None}],
    }


async def test_the_membership_screen_costs_two_statements(
    anna: Member, as_member: Any, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    # given a membership, the screen loaded once (caches warm)
    await plans()
    await pay(clock, anna.id, "p1")
    client = as_member(anna)
    await client.execute(MEMBERSHIP)
    # when it is loaded again
    sql_counter.statements.clear()
    result = await client.execute(MEMBERSHIP)

    # then the member row and the membership
    assert result["data"]["me"]["membership"]["status"] == "ACTIVE"
    assert len(sql_counter.statements) == 2, sql_counter.statements
