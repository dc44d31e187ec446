"""consentUpdate and me.consents: the member's opt-in and opt-out, recorded with time, source and actor; the cached
`marketingConsent` follows (push, marketing)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from loyalty.clock import FrozenClock
from loyalty.models import ConsentChange, ConsentChannel, ConsentPurpose, ConsentSource, Member, OutboxEvent
from tests.schema.conftest import SQLCounter

UPDATE = """
mutation($input: ConsentUpdateInput!) {
  consentUpdate(input: $input) {
    consent { channel purpose granted changedAt }
    member { marketingConsent marketingConsentAt }
    userErrors { __typename code message field }
  }
}
"""
CONSENTS = "query { me { consents { channel purpose granted changedAt } } }"
PROFILE = """
mutation($input: ProfileUpdateInput!) {
  profileUpdate(input: $input) { member { marketingConsent } userErrors { code } }
}
"""


def _push_marketing(granted: bool) -> dict[str, Any]:
    return {"input": {"channel": "PUSH", "purpose": "MARKETING", "granted": granted}}


async def _history(member: Member) -> list[tuple[ConsentChannel, ConsentPurpose, bool, ConsentSource, str]]:
    return list(
        await ConsentChange.filter(member_id=member.id)
        .order_by("id")
        .values_list("channel", "purpose", "granted", "source", "actor")
    )


async def test_a_member_opts_in_and_out_and_every_change_is_recorded(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given Anna opting in to offers by push
    opted_in = await as_member(anna).execute(UPDATE, _push_marketing(True))
    opted_in_at = clock.now().isoformat()

    # when she opts out a day later
    clock.advance(timedelta(days=1))
    opted_out = await as_member(anna).execute(UPDATE, _push_marketing(False))

    # then each answer shows the consent and the member's cache as they now are
    assert opted_in["data"]["consentUpdate"] == {
        "consent": {"channel": "PUSH", "purpose": "MARKETING", "granted": True, "changedAt": opted_in_at},
        "member": {"marketingConsent": True, "marketingConsentAt": opted_in_at},
        "userErrors": [],
    }
    assert opted_out["data"]["consentUpdate"] == {
        "consent": {"channel": "PUSH", "purpose": "MARKETING", "granted": False, "changedAt": clock.now().isoformat()},
        "member": {"marketingConsent": False, "marketingConsentAt": clock.now().isoformat()},
        "userErrors": [],
    }
    # and both changes are in the history, by Anna, from the app
    actor = f"member:{anna.id}"
    assert await _history(anna) == [
        (ConsentChannel.PUSH, ConsentPurpose.MARKETING, True, ConsentSource.APP, actor),
        (ConsentChannel.PUSH, ConsentPurpose.MARKETING, False, ConsentSource.APP, actor),
    ]
    assert await OutboxEvent.filter(type="member.updated", member_id=anna.id).count() == 2


async def test_setting_a_consent_to_what_it_is_records_nothing(
    anna: Member, as_member: Any, clock: FrozenClock
) -> None:
    # given an opt-in
    await as_member(anna).execute(UPDATE, _push_marketing(True))
    given_at = clock.now().isoformat()

    # when the app sends it again later
    clock.advance(timedelta(days=2))
    again = await as_member(anna).execute(UPDATE, _push_marketing(True))

    # then it keeps its time and history
    assert again["data"]["consentUpdate"]["consent"]["changedAt"] == given_at
    assert len(await _history(anna)) == 1


async def test_another_channel_leaves_the_marketing_cache_alone(anna: Member, as_member: Any) -> None:
    # when Anna opts in to email marketing only
    result = await as_member(anna).execute(
        UPDATE, {"input": {"channel": "EMAIL", "purpose": "MARKETING", "granted": True}}
    )

    # then the push cache (what push audiences read) stays off
    assert result["data"]["consentUpdate"]["member"] == {"marketingConsent": False, "marketingConsentAt": None}
    assert await _history(anna) == [
        (ConsentChannel.EMAIL, ConsentPurpose.MARKETING, True, ConsentSource.APP, f"member:{anna.id}")
    ]


async def test_me_consents_lists_every_channel_with_never_asked_as_not_granted(
    anna: Member, as_member: Any, clock: FrozenClock, sql_counter: SQLCounter
) -> None:
    # given one opt-in (and the screen loaded once: the program cached)
    await as_member(anna).execute(UPDATE, _push_marketing(True))
    await as_member(anna).execute(CONSENTS)

    # when the settings screen loads
    sql_counter.statements.clear()
    result = await as_member(anna).execute(CONSENTS)

    # then every channel, in order, in two statements (the member, the consents)
    assert result == {
        "data": {
            "me": {
                "consents": [
                    {"channel": "PUSH", "purpose": "MARKETING", "granted": True, "changedAt": clock.now().isoformat()},
                    {"channel": "EMAIL", "purpose": "MARKETING", "granted": False, "changedAt": None},
                    {"channel": "SMS", "purpose": "MARKETING", "granted": False, "changedAt": None},
                ]
            }
        }
    }
    assert len(sql_counter.statements) == 2


async def test_profile_update_changes_consent_the_same_one_way(anna: Member, as_member: Any) -> None:
    # when the older profile screen opts in, then out
    await as_member(anna).execute(PROFILE, {"input": {"marketingConsent": True}})
    await as_member(anna).execute(PROFILE, {"input": {"marketingConsent": False}})

    # then the consent record and its history moved as consentUpdate moves them
    consents = await as_member(anna).execute(CONSENTS)
    assert consents["data"]["me"]["consents"][0]["granted"] is False
    actor = f"member:{anna.id}"
    assert await _history(anna) == [
        (ConsentChannel.PUSH, ConsentPurpose.MARKETING, True, ConsentSource.APP, actor),
        (ConsentChannel.PUSH, ConsentPurpose.MARKETING, False, ConsentSource.APP, actor),
    ]


async def test_a_purpose_outside_the_enum_is_refused_and_nothing_is_written(anna: Member, as_member: Any) -> None:
    response = await as_member(anna).post(
        UPDATE, {"input": {"channel": "PUSH", "purpose": "PROFILING", "granted": True}}
    )

    body = response.json()
    assert (body.get("data"), [e["extensions"]["code"] for e in body["errors"]]) == (None, ["BAD_USER_INPUT"])
    assert await _history(anna) == []


async def test_a_member_deleted_since_signing_in_gets_member_not_found(anna: Member, as_member: Any) -> None:
    # given Anna's account deleted while her token is still valid
    client = as_member(anna)
    await Member.filter(id=anna.id).delete()

    # when the app changes a consent
    result = await client.execute(UPDATE, _push_marketing(True))

    # then a userError, and nothing recorded
    assert result["data"]["consentUpdate"] == {
        "consent": None,
        "member": None,
        "userErrors": [
            {
                "__typename": "ConsentUpdateUserError",
                "code": "MEMBER_NOT_FOUND",
                "message": "no such member",
                "field": ["input", "member"],
            }
        ],
    }
    assert await ConsentChange.all().count() == 0
