"""/staff/graphql over HTTP: staff sign-in, staff tokens and API keys, 401s, and the separation from /graphql."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import ApiKey, Program, StaffUser
from loyalty.staff import create_api_key, create_staff, deactivate_staff, new_session_id, revoke_api_key
from tests.conftest import app_settings

PASSWORD = "correct horse battery"
SIGN_IN = """
mutation($email: String!, $password: String!) {
  staffSessionCreate(input: {email: $email, password: $password}) {
    accessToken accessTokenExpiresAt staff { kind role name storeCodes } userErrors { code message field }
  }
}
"""
STAFF_ME = "{ staffMe { kind role name storeCodes } }"
INTROSPECT = "{ __schema { queryType { fields { name } } mutationType { fields { name } } types { name } } }"


pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.fixture
def settings(db: str, tmp_path: Path) -> Settings:
    return app_settings(db, tmp_path)


@pytest.fixture
def tokens(settings: Settings) -> TokenService:
    return TokenService(settings)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))  # no lifespan: the `db` fixture holds the connection
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def cass(program: Program) -> StaffUser:
    return await create_staff("cass@example.com", PASSWORD, "cashier", ["S1"], "Cass")


async def _post(
    http: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    path: str = "/staff/graphql",
    **headers: str,
) -> httpx.Response:
    return await http.post(path, json={"query": query, "variables": variables or {}}, headers=headers)


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> dict[str, Any]:
    response = await _post(http, SIGN_IN, {"email": email, "password": password})
    assert response.status_code == 200
    return response.json()["data"]["staffSessionCreate"]


# --- staff sessions -------------------------------------------------------------------------------


async def test_a_staff_member_signs_in_and_uses_the_token(
    http: httpx.AsyncClient, cass: StaffUser, tokens: TokenService, clock: FrozenClock
) -> None:
    session = await _sign_in(http, "Cass@Example.com", PASSWORD)

    assert session["staff"] == {"kind": "staff", "role": "cashier", "name": "Cass", "storeCodes": ["S1"]}
    assert session["userErrors"] == []
    assert session["accessTokenExpiresAt"] == (clock.now() + timedelta(seconds=900)).isoformat()
    claims = tokens.verify(session["accessToken"], STAFF_AUDIENCE)
    assert claims.subject == f"staff:{cass.id}"
    me = await _post(http, STAFF_ME, authorization=f"Bearer {session['accessToken']}")
    assert me.json() == {
        "data": {"staffMe": {"kind": "staff", "role": "cashier", "name": "Cass", "storeCodes": ["S1"]}}
    }


async def test_wrong_password_and_unknown_email_look_the_same(http: httpx.AsyncClient, cass: StaffUser) -> None:
    wrong_password = await _sign_in(http, "cass@example.com", "not the password")
    unknown_email = await _sign_in(http, "nobody@example.com", PASSWORD)

    expected = {
        "accessToken": None,
        "accessTokenExpiresAt": None,
        "staff": None,
        "userErrors": [{"code": "INVALID_CREDENTIALS", "message": "wrong email or password", "field": None}],
    }
    assert wrong_password == expected
    assert unknown_email == expected


async def test_a_disabled_account_cannot_sign_in(http: httpx.AsyncClient, cass: StaffUser) -> None:
    await deactivate_staff(cass.id)

    session = await _sign_in(http, "cass@example.com", PASSWORD)

    assert [e["code"] for e in session["userErrors"]] == ["INVALID_CREDENTIALS"]


async def test_the_sixth_attempt_within_fifteen_minutes_is_refused(http: httpx.AsyncClient, cass: StaffUser) -> None:
    for _ in range(5):
        assert (await _sign_in(http, "cass@example.com", "guess guess guess"))["userErrors"][0]["code"] == (
            "INVALID_CREDENTIALS"
        )

    session = await _sign_in(http, "cass@example.com", PASSWORD)

    assert session["accessToken"] is None
    assert [e["code"] for e in session["userErrors"]] == ["TOO_MANY_ATTEMPTS"]


async def test_a_deactivated_account_loses_its_unexpired_token_at_once(
    http: httpx.AsyncClient, cass: StaffUser
) -> None:
    token = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]

    await deactivate_staff(cass.id)

    response = await _post(http, STAFF_ME, authorization=f"Bearer {token}")
    assert response.status_code == 401


async def test_an_expired_staff_token_is_a_401(http: httpx.AsyncClient, cass: StaffUser, clock: FrozenClock) -> None:
    token = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]

    clock.advance(timedelta(seconds=900))

    assert (await _post(http, STAFF_ME, authorization=f"Bearer {token}")).status_code == 401


# --- audiences: member tokens here, staff tokens there --------------------------------------------


async def test_a_member_token_is_refused_on_the_staff_endpoint(
    http: httpx.AsyncClient, tokens: TokenService, program: Program
) -> None:
    member, _ = await enroll_member("uid-anna", email="anna@example.com")
    member_token = tokens.issue(str(member.id), MEMBER_AUDIENCE).token

    response = await _post(http, STAFF_ME, authorization=f"Bearer {member_token}")

    assert response.status_code == 401


async def test_a_staff_token_is_refused_on_the_member_endpoint(http: httpx.AsyncClient, cass: StaffUser) -> None:
    token = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]

    response = await _post(http, "{ me { memberNumber } }", path="/graphql", authorization=f"Bearer {token}")

    assert response.status_code == 401


@pytest.mark.parametrize("subject", ["1", "staff:", "staff:abc", "member:1", "staff:999"])
async def test_a_staff_audience_token_must_name_an_existing_staff_account(
    http: httpx.AsyncClient, tokens: TokenService, cass: StaffUser, subject: str
) -> None:
    token = tokens.issue(subject, STAFF_AUDIENCE, new_session_id()).token

    assert (await _post(http, STAFF_ME, authorization=f"Bearer {token}")).status_code == 401


@pytest.mark.parametrize("session_id", [None, "", "not-hex", "0" * 31, "0" * 33])
async def test_a_staff_token_needs_a_well_formed_session_id(
    http: httpx.AsyncClient, tokens: TokenService, cass: StaffUser, session_id: str | None
) -> None:
    # A control: the same subject in a well-formed session is accepted, so each refusal is the session id's.
    good = tokens.issue(f"staff:{cass.id}", STAFF_AUDIENCE, "0" * 32).token
    token = tokens.issue(f"staff:{cass.id}", STAFF_AUDIENCE, session_id).token

    assert (await _post(http, STAFF_ME, authorization=f"Bearer {good}")).status_code == 200
    assert (await _post(http, STAFF_ME, authorization=f"Bearer {token}")).status_code == 401


async def test_each_sign_in_is_its_own_session(http: httpx.AsyncClient, tokens: TokenService, cass: StaffUser) -> None:
    first = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]
    second = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]

    sessions = [tokens.verify(token, STAFF_AUDIENCE).session_id for token in (first, second)]
    assert all(s is not None and len(s) == 32 for s in sessions)
    assert sessions[0] != sessions[1]


@pytest.mark.parametrize("header", ["Bearer", "Bearer not.a.jwt", "Basic Y2FzczpwYXNz", "token"])
async def test_a_malformed_authorization_header_is_a_401(
    http: httpx.AsyncClient, program: Program, header: str
) -> None:
    assert (await _post(http, STAFF_ME, authorization=header)).status_code == 401


# --- API keys -------------------------------------------------------------------------------------


async def test_an_api_key_authenticates_an_integration(http: httpx.AsyncClient, program: Program) -> None:
    key, raw = await create_api_key("POS store 1", "cashier", "S1")

    response = await _post(http, STAFF_ME, **{"x-api-key": raw})

    assert response.json() == {
        "data": {"staffMe": {"kind": "api_key", "role": "cashier", "name": "POS store 1", "storeCodes": ["S1"]}}
    }
    assert (await ApiKey.get(id=key.id)).last_used_at is not None


async def test_a_revoked_api_key_is_a_401(http: httpx.AsyncClient, program: Program) -> None:
    key, raw = await create_api_key("POS store 1", "cashier", "S1")
    await revoke_api_key(key.id)

    assert (await _post(http, STAFF_ME, **{"x-api-key": raw})).status_code == 401


@pytest.mark.parametrize("raw", ["", "kbk_123", "kbk_0123456789ab_" + "0" * 64, "Bearer x"])
async def test_a_malformed_or_unknown_api_key_is_a_401(http: httpx.AsyncClient, program: Program, raw: str) -> None:
    assert (await _post(http, STAFF_ME, **{"x-api-key": raw})).status_code == 401


async def test_a_token_and_a_key_together_are_a_401(http: httpx.AsyncClient, cass: StaffUser) -> None:
    token = (await _sign_in(http, "cass@example.com", PASSWORD))["accessToken"]
    _, raw = await create_api_key("POS store 1", "manager")

    response = await _post(http, STAFF_ME, authorization=f"Bearer {token}", **{"x-api-key": raw})

    assert response.status_code == 401


async def test_without_credentials_only_sign_in_is_open(http: httpx.AsyncClient, program: Program) -> None:
    response = await _post(http, STAFF_ME)

    assert response.status_code == 200
    assert response.json()["data"] is None
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == ["UNAUTHENTICATED"]


async def test_a_member_lookup_by_api_key(http: httpx.AsyncClient, program: Program) -> None:
    member, _ = await enroll_member("uid-anna", email="anna@example.com", display_name="Anna")
    _, raw = await create_api_key("POS store 1", "cashier", "S1")

    response = await _post(
        http,
        "query($q: String!) { memberLookup(query: $q) { name } }",
        {"q": member.member_number},
        **{"x-api-key": raw},
    )

    assert response.json() == {"data": {"memberLookup": {"name": "Anna"}}}


# --- two schemas ------------------------------------------------------------------------------------


def _root_fields(schema: dict[str, Any]) -> set[str]:
    roots = [schema["queryType"], schema["mutationType"]]
    return {f["name"] for root in roots if root for f in root["fields"]}


async def test_the_member_endpoint_has_none_of_the_staff_operations(http: httpx.AsyncClient, program: Program) -> None:
    # given both schemas introspected in development mode (signed in as an admin for the staff one)
    _, raw = await create_api_key("back office", "admin")
    staff_schema = (await _post(http, INTROSPECT, **{"x-api-key": raw})).json()["data"]["__schema"]
    member_schema = (await _post(http, INTROSPECT, path="/graphql")).json()["data"]["__schema"]

    # then no staff operation and no staff-only type is on /graphql
    staff_operations, member_operations = _root_fields(staff_schema), _root_fields(member_schema)
    assert {"staffSessionCreate", "staffMe", "memberLookup", "pointsAdjust"} <= staff_operations
    assert "me" in member_operations
    assert staff_operations & member_operations == set()
    member_types = {t["name"] for t in member_schema["types"]}
    for staff_type in [
        "StaffActor",
        "MemberSummary",
        "PointsAdjustInput",
        "AdjustmentReason",
        "StaffSessionCreateInput",
    ]:
        assert staff_type not in member_types


async def test_production_hides_the_staff_schema_and_serves_no_graphiql(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, program: Program
) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    transport = httpx.ASGITransport(app=create_app(app_settings(db, tmp_path, Environment.PRODUCTION)))
    _, raw = await create_api_key("back office", "admin")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        introspection = await _post(client, INTROSPECT, **{"x-api-key": raw})
        graphiql = await client.get("/staff/graphql", headers={"accept": "text/html"})

    assert introspection.json()["data"] is None
    assert any("introspection" in e["message"] for e in introspection.json()["errors"])
    assert graphiql.status_code in (400, 404, 405)


async def test_development_serves_graphiql_on_the_staff_endpoint(http: httpx.AsyncClient, program: Program) -> None:
    response = await http.get("/staff/graphql", headers={"accept": "text/html"})

    assert response.status_code == 200
    assert "graphiql" in response.text.lower()
