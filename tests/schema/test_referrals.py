"""The member endpoint's referrals: `referralApply`, `sessionCreate` with a code and a device, `me.referral`."""

from __future__ import annotations

from typing import Any

from api.auth.firebase import make_emulator_id_token
from api.settings import Settings
from loyalty import referrals
from loyalty.members import enroll_member
from loyalty.models import Member, OutboxEvent, Program, Referral, ReferralStatus, RefreshToken
from tests.loyalty.ledger_helpers import row_counts
from tests.loyalty.purchase_helpers import buy, line
from tests.loyalty.referral_helpers import policy
from tests.schema.conftest import SQLCounter

APPLY = """
mutation($input: ReferralApplyInput!) {
  referralApply(input: $input) { applied referral { code invitedCount } userErrors { code message field } }
}
"""
SIGN_IN = """
mutation($input: SessionCreateInput!) {
  sessionCreate(input: $input) { accessToken member { email } userErrors { code message field } }
}
"""
REFERRAL = "{ me { referral { code link invitedCount convertedCount pointsEarned } } }"


async def test_applying_a_friends_code(anna: Member, bo: Member, as_member: Any) -> None:
    # given Anna's code
    await policy()
    anna_code = await referrals.code_of(anna.id)

    # when Bo applies it from his device
    result = await as_member(bo).execute(APPLY, {"input": {"code": anna_code.lower(), "deviceId": "bo-phone"}})

    # then
    bo_code = await referrals.code_of(bo.id)
    assert result == {
        "data": {"referralApply": {"applied": True, "referral": {"code": bo_code, "invitedCount": 0}, "userErrors": []}}
    }
    referral = await Referral.get(referee_id=bo.id)
    assert (referral.referrer_id, referral.status) == (anna.id, ReferralStatus.APPLIED)
    assert referral.device_hash == referrals.device_hash("bo-phone", Settings().device_hash_key())


async def test_refusals_are_user_errors_with_precise_codes(anna: Member, bo: Member, as_member: Any) -> None:
    # given
    await policy()
    bo_code = await referrals.code_of(bo.id)
    before = await row_counts()
    cases = [
        ({"code": "AAAAAAAA"}, "CODE_UNKNOWN"),
        ({"code": bo_code}, "OWN_CODE"),
        ({"code": "A\u0000AAAAAAA"}, "INVALID"),
        ({"code": "A" * 10_000}, "INVALID"),
        ({"code": "\u0410" * 8}, "CODE_UNKNOWN"),  # Cyrillic capital A
        ({"code": bo_code, "deviceId": "x" * 201}, "INVALID"),
    ]

    # when / then
    for given, code in cases:
        result = await as_member(bo).execute(APPLY, {"input": given})
        payload = result["data"]["referralApply"]
        assert (payload["applied"], payload["referral"]) == (False, None)
        field = ["input", "deviceId"] if "deviceId" in given else ["input", "code"]
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(code, field)], given
    assert await row_counts() == before
    assert await Referral.all().count() == 0


async def test_sign_up_with_a_code_and_a_device(anna: Member, as_member: Any, settings: Settings) -> None:
    # given Anna's code
    await policy()
    anna_code = await referrals.code_of(anna.id)
    token = make_emulator_id_token(settings.firebase_project_id, "uid-new", "new@example.com")

    # when a new member signs up with it
    result = await as_member(None).execute(
        SIGN_IN, {"input": {"firebaseIdToken": token, "referralCode": anna_code, "deviceId": "install-1"}}
    )

    # then enrolled, referred, the session and the referral carrying the device's keyed hash
    assert result["data"]["sessionCreate"]["userErrors"] == []
    new = await Member.get(firebase_uid="uid-new")
    assert new.email_key == "new@example.com"
    referral = await Referral.get(referee_id=new.id)
    session = await RefreshToken.get(member_id=new.id)
    assert referral.referrer_id == anna.id
    assert session.device_hash == referral.device_hash == referrals.device_hash("install-1", settings.device_hash_key())
    assert [e for e in await OutboxEvent.filter(type="referral.applied").values_list("member_id", flat=True)] == [
        new.id
    ]

    # and signing in again with the code changes nothing and is not refused
    again = await as_member(None).execute(SIGN_IN, {"input": {"firebaseIdToken": token, "referralCode": anna_code}})
    assert again["data"]["sessionCreate"]["userErrors"] == []
    assert await Referral.all().count() == 1


async def test_sign_up_with_a_bad_code_writes_nothing(anna: Member, as_member: Any, settings: Settings) -> None:
    # given
    await policy()
    token = make_emulator_id_token(settings.firebase_project_id, "uid-new", "new@example.com")
    before = await row_counts()
    members = await Member.all().count()

    # when / then: no member, no session
    for code, expected in [("AAAAAAAA", "CODE_UNKNOWN"), ("\x00", "INVALID"), ("A" * 10_000, "INVALID")]:
        result = await as_member(None).execute(SIGN_IN, {"input": {"firebaseIdToken": token, "referralCode": code}})
        payload = result["data"]["sessionCreate"]
        assert payload["accessToken"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [(expected, ["input", "referralCode"])]
    assert await Member.all().count() == members
    assert await RefreshToken.all().count() == 0
    assert await row_counts() == before


async def test_sign_up_with_referrals_off_is_refused(program: Program, as_member: Any, settings: Settings) -> None:
    # given a member's code but referrals switched off
    await policy(enabled=False)
    ann, _ = await enroll_member("uid-ann")
    token = make_emulator_id_token(settings.firebase_project_id, "uid-new", "new@example.com")

    # when
    result = await as_member(None).execute(
        SIGN_IN, {"input": {"firebaseIdToken": token, "referralCode": await referrals.code_of(ann.id)}}
    )

    # then
    assert [e["code"] for e in result["data"]["sessionCreate"]["userErrors"]] == ["REFERRALS_OFF"]
    assert await Member.filter(firebase_uid="uid-new").count() == 0


async def test_me_referral_whole_result_and_its_statements(
    anna: Member, bo: Member, as_member: Any, sql_counter: SQLCounter
) -> None:
    # given Anna referred Bo, who converted, and a third member who only applied
    await policy()
    anna_code = await referrals.code_of(anna.id)
    await referrals.apply_referral(bo.id, anna_code)
    cid, _ = await enroll_member("uid-cid", email="cid@example.com")
    await referrals.apply_referral(cid.id, anna_code)
    await buy(bo.id, "R1", [line("A", 5_000)])
    client = as_member(anna)
    await client.execute("{ me { memberNumber } }")  # the program cache is warm

    # when
    sql_counter.statements.clear()
    result = await client.execute(REFERRAL)

    # then
    assert result == {
        "data": {
            "me": {
                "referral": {
                    "code": anna_code,
                    "link": f"http://127.0.0.1:8000/r/{anna_code}",
                    "invitedCount": 2,
                    "convertedCount": 1,
                    "pointsEarned": 200,
                }
            }
        }
    }
    # the member, its code, the referrals' one aggregate
    assert len(sql_counter.statements) == 3, sql_counter.statements
