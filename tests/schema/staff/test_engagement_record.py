"""engagementRecord on the staff schema (integrations posting reviews, shares, installs, surveys)."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from loyalty.actors import Actor
from loyalty.clock import FrozenClock
from loyalty.models import EngagementRule, Member, StaffRole
from tests.loyalty.ledger_helpers import balances
from tests.loyalty.purchase_helpers import all_counts
from tests.schema.staff.conftest import run_staff

RECORD = """
mutation($input: EngagementRecordInput!) {
  engagementRecord(input: $input) {
    engagement { eventType points }
    member { points { available } }
    userErrors { code field }
  }
}
"""
REVIEW_SITE = Actor(kind="api_key", id=5, role=StaffRole.CASHIER, store_codes=("WEB",), name="Review site")


def _input(anna: Member, clock: FrozenClock, **changes: Any) -> dict[str, Any]:
    return {
        "input": {
            "member": relay.to_base64("Member", anna.id),
            "eventType": "review_written",
            "externalId": "rev-1",
            "occurredAt": clock.now().isoformat(),
            **changes,
        }
    }


async def test_an_integration_records_a_review(anna: Member, clock: FrozenClock) -> None:
    await EngagementRule.create(event_type="review_written", points=25, per_day_limit=1)

    result = await run_staff(RECORD, REVIEW_SITE, _input(anna, clock))

    assert result.errors is None, result.errors
    assert result.data["engagementRecord"] == {
        "engagement": {"eventType": "review_written", "points": 25},
        "member": {"points": {"available": 25}},
        "userErrors": [],
    }


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"externalId": "rev-2"}, "LIMIT_REACHED", "occurredAt"),
        ({"eventType": "newsletter_read", "externalId": "n-1"}, "UNKNOWN_EVENT_TYPE", "eventType"),
        ({"member": "bm9wZQ==", "externalId": "rev-3"}, "MEMBER_NOT_FOUND", "member"),
        ({"member": relay.to_base64("Member", 999), "externalId": "rev-4"}, "MEMBER_NOT_FOUND", "member"),
        ({"externalId": ""}, "INVALID", "externalId"),
        ({"occurredAt": "2026-03-02T11:00:00+00:00"}, "IDEMPOTENCY_KEY_REUSED", "externalId"),
    ],
)
async def test_refused_events_get_a_precise_user_error_and_write_nothing(
    anna: Member, clock: FrozenClock, changes: dict[str, Any], code: str, field: str
) -> None:
    # given one review today already (the daily limit is 1)
    await EngagementRule.create(event_type="review_written", points=25, per_day_limit=1)
    await run_staff(RECORD, REVIEW_SITE, _input(anna, clock))
    before = await all_counts()

    # when
    result = await run_staff(RECORD, REVIEW_SITE, _input(anna, clock, **changes))

    # then
    assert result.errors is None, result.errors
    assert result.data["engagementRecord"] == {
        "engagement": None,
        "member": None,
        "userErrors": [{"code": code, "field": ["input", field]}],
    }
    assert await all_counts() == before
    assert await balances(anna.id) == (25, 0, 25)
