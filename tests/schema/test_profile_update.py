"""profileUpdate: the member edits their profile; bad input is a userError and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from loyalty.clock import FrozenClock
from loyalty.models import Member, OutboxEvent

MUTATION = """
mutation($input: ProfileUpdateInput!) {
  profileUpdate(input: $input) {
    member { displayName birthday interests marketingConsent marketingConsentAt timezone }
    userErrors { __typename code message field }
  }
}
"""


async def test_profile_update_changes_the_profile_and_timestamps_consent(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    result = await as_member(anna).execute(
        MUTATION,
        {
            "input": {
                "displayName": "  Anna A. ",
                "birthday": "1990-05-17",
                "interests": ["Coffee", "books", "coffee"],
                "marketingConsent": True,
                "timezone": "Europe/Stockholm",
            }
        },
    )

    assert result == {
        "data": {
            "profileUpdate": {
                "member": {
                    "displayName": "Anna A.",
                    "birthday": "1990-05-17",
                    "interests": ["books", "coffee"],
                    "marketingConsent": True,
                    "marketingConsentAt": clock.now().isoformat(),
                    "timezone": "Europe/Stockholm",
                },
                "userErrors": [],
            }
        }
    }
    assert await OutboxEvent.filter(type="member.updated", member_id=anna.id).count() == 1


async def test_unchanged_consent_keeps_its_timestamp(anna: Member, as_member: Any, clock: FrozenClock) -> None:
    await as_member(anna).execute(MUTATION, {"input": {"marketingConsent": True}})
    given_at = clock.now().isoformat()

    clock.advance(timedelta(days=3))
    result = await as_member(anna).execute(MUTATION, {"input": {"marketingConsent": True}})

    assert result["data"]["profileUpdate"]["member"]["marketingConsentAt"] == given_at


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("displayName", "   ", "name must be 1 to 100 characters"),
        ("birthday", "2030-01-01", "birthday must be a past date after 1900"),
        ("interests", ["x" * 41], "each interest must be 1 to 40 characters"),
        ("interests", [f"i{i}" for i in range(21)], "at most 20 interests"),
        ("timezone", "Mars/Olympus", "unknown timezone"),
    ],
)
async def test_bad_profile_input_is_a_user_error_and_writes_nothing(
    anna: Member, as_member: Any, field: str, value: Any, message: str
) -> None:
    result = await as_member(anna).execute(MUTATION, {"input": {field: value, "marketingConsent": True}})

    assert result == {
        "data": {
            "profileUpdate": {
                "member": None,
                "userErrors": [
                    {
                        "__typename": "ProfileUpdateUserError",
                        "code": "INVALID",
                        "message": message,
                        "field": ["input", field],
                    }
                ],
            }
        }
    }
    unchanged = await Member.get(id=anna.id)
    assert (unchanged.marketing_consent, unchanged.display_name, unchanged.timezone) == (False, "Anna", "UTC")
    assert await OutboxEvent.filter(type="member.updated").count() == 0


async def test_profile_update_needs_a_member(as_member: Any, program: Any) -> None:
    result = await as_member(None).execute(MUTATION, {"input": {"displayName": "X"}})

    assert result["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
