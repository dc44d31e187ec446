"""sessionCreate / sessionRefresh through the member endpoint, with emulator-mode Firebase tokens."""

from __future__ import annotations

from typing import Any

from api.auth.firebase import make_emulator_id_token
from api.settings import Settings
from loyalty.models import Member, OutboxEvent, Program

CREATE = """
mutation($token: String!) {
  sessionCreate(input: {firebaseIdToken: $token}) {
    accessToken refreshToken accessTokenExpiresAt
    member { memberNumber displayName email }
    userErrors { code message field }
  }
}
"""
REFRESH = """
mutation($token: String!) {
  sessionRefresh(input: {refreshToken: $token}) {
    accessToken refreshToken
    userErrors { code field }
  }
}
"""


async def test_first_sign_in_enrolls_and_the_access_token_opens_me(
    as_member: Any, settings: Settings, program: Program
) -> None:
    firebase_token = make_emulator_id_token(settings.firebase_project_id, "uid-new", "new@example.com", "New Member")

    first = (await as_member(None).execute(CREATE, {"token": firebase_token}))["data"]["sessionCreate"]
    again = (await as_member(None).execute(CREATE, {"token": firebase_token}))["data"]["sessionCreate"]

    member = await Member.get(firebase_uid="uid-new")
    assert first["userErrors"] == []
    assert first["member"] == {
        "memberNumber": member.member_number,
        "displayName": "New Member",
        "email": "new@example.com",
    }
    assert again["member"] == first["member"]
    assert await Member.all().count() == 1
    assert await OutboxEvent.filter(type="member.enrolled").count() == 1
    client = as_member(None)
    client.token = first["accessToken"]
    assert (await client.execute("{ me { memberNumber } }")) == {"data": {"me": {"memberNumber": member.member_number}}}


async def test_an_invalid_firebase_token_is_a_user_error_and_enrolls_nobody(as_member: Any, program: Program) -> None:
    result = await as_member(None).execute(CREATE, {"token": "garbage"})

    payload = result["data"]["sessionCreate"]
    assert payload["accessToken"] is None
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("INVALID_FIREBASE_TOKEN", ["input", "firebaseIdToken"])
    ]
    assert await Member.all().count() == 0


async def test_a_token_for_another_firebase_project_is_refused(as_member: Any, program: Program) -> None:
    foreign = make_emulator_id_token("someone-elses-project", "uid-x", "x@example.com")

    result = await as_member(None).execute(CREATE, {"token": foreign})

    assert result["data"]["sessionCreate"]["userErrors"][0]["code"] == "INVALID_FIREBASE_TOKEN"
    assert await Member.all().count() == 0


async def test_refresh_rotates_and_a_replayed_refresh_token_ends_the_family(
    as_member: Any, settings: Settings, program: Program
) -> None:
    firebase_token = make_emulator_id_token(settings.firebase_project_id, "uid-r", "r@example.com")
    created = (await as_member(None).execute(CREATE, {"token": firebase_token}))["data"]["sessionCreate"]

    rotated = (await as_member(None).execute(REFRESH, {"token": created["refreshToken"]}))["data"]["sessionRefresh"]
    replayed = (await as_member(None).execute(REFRESH, {"token": created["refreshToken"]}))["data"]["sessionRefresh"]
    after_reuse = (await as_member(None).execute(REFRESH, {"token": rotated["refreshToken"]}))["data"]["sessionRefresh"]

    assert rotated["userErrors"] == []
    assert rotated["refreshToken"] != created["refreshToken"]
    assert replayed == {
        "accessToken": None,
        "refreshToken": None,
        "userErrors": [{"code": "REFRESH_TOKEN_REUSED", "field": ["input", "refreshToken"]}],
    }
    # the replacement token was never used: the family is simply over
    assert after_reuse["userErrors"][0]["code"] == "REFRESH_TOKEN_INVALID"
    assert after_reuse["accessToken"] is None
