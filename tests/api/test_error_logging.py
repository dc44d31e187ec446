"""Expected authentication and permission errors are logged as one line with their code; faults keep their
traceback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from strawberry import relay

from api.app import create_app
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.settings import Environment, Settings
from loyalty.clock import FrozenClock
from loyalty.members import enroll_member
from loyalty.models import Member, Program, StaffRole
from loyalty.staff import create_api_key, create_staff, new_session_id, revoke_api_key, token_subject
from tests.conftest import app_settings
from tests.schema.conftest import HOME_QUERY

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

POINTS_ADJUST = """
mutation($member: ID!) {
  pointsAdjust(input: {member: $member, storeCode: "S2", amount: 5, reasonCode: GOODWILL, idempotencyKey: "k1"}) {
    userErrors { code }
  }
}
"""


@pytest.fixture(params=[Environment.TEST, Environment.PRODUCTION], ids=["test", "production"])
def settings(request: pytest.FixtureRequest, db: str, tmp_path: Path) -> Settings:
    return app_settings(db, tmp_path, request.param)


@pytest.fixture
async def http(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client


@pytest.fixture
async def anna(program: Program) -> Member:
    member, _ = await enroll_member("fb-anna", email="anna@example.com", display_name="Anna")
    return member


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    """What our code and strawberry logged (name, level, message); each must be a single line without traceback."""
    records = [r for r in caplog.records if r.name.startswith(("klubb", "strawberry"))]
    for record in records:
        assert record.exc_info is None, record.getMessage()
        assert record.stack_info is None, record.getMessage()
        assert "\n" not in record.getMessage()
    return [(r.name, r.levelname, r.getMessage()) for r in records]


async def test_refused_member_tokens_are_one_line_each(
    http: httpx.AsyncClient, settings: Settings, anna: Member, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    tokens = TokenService(settings)
    expired = tokens.issue(str(anna.id), MEMBER_AUDIENCE).token
    staff_token = tokens.issue("staff:1", STAFF_AUDIENCE).token
    clock.advance(timedelta(hours=1))

    statuses = [
        (await http.post("/graphql", json={"query": "{ me { id } }"}, headers={"authorization": header})).status_code
        for header in ("Bearer nonsense", f"Bearer {expired}", f"Bearer {staff_token}")
    ]

    assert statuses == [401, 401, 401]
    assert lines(caplog) == [
        ("klubb.auth", "INFO", "member request refused [INVALID_TOKEN]: invalid access token"),
        ("klubb.auth", "INFO", "member request refused [TOKEN_EXPIRED]: access token expired"),
        ("klubb.auth", "INFO", "member request refused [INVALID_TOKEN]: invalid access token"),
    ]


async def test_a_signed_out_member_query_is_one_line(
    http: httpx.AsyncClient, program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    response = await http.post("/graphql", json={"query": HOME_QUERY})  # the app's (trusted) home screen

    assert {error["extensions"]["code"] for error in response.json()["errors"]} == {"UNAUTHENTICATED"}
    logged = lines(caplog)
    assert len(logged) == len(response.json()["errors"])
    assert set(logged) == {
        (
            "klubb.graphql",
            "INFO",
            "request refused [UNAUTHENTICATED]: sign in first: send `Authorization: Bearer <access token>` (path me)",
        )
    }


async def test_staff_refusals_are_one_line_each(
    http: httpx.AsyncClient, settings: Settings, anna: Member, caplog: pytest.LogCaptureFixture
) -> None:
    # given a revoked API key, and a cashier of store S1 who tries a manager's adjustment in store S2
    revoked, revoked_raw = await create_api_key("old POS", StaffRole.CASHIER)
    await revoke_api_key(revoked.id)
    cass = await create_staff("cass@example.com", "till-password-1", StaffRole.CASHIER, ["S1"])
    cass_token = TokenService(settings).issue(token_subject(cass), STAFF_AUDIENCE, new_session_id()).token
    caplog.set_level(logging.INFO)
    member_id = relay.to_base64("Member", anna.id)

    # when
    revoked_response = await http.post(
        "/staff/graphql", json={"query": "{ __typename }"}, headers={"x-api-key": revoked_raw}
    )
    forbidden = await http.post(
        "/staff/graphql",
        json={"query": POINTS_ADJUST, "variables": {"member": member_id}},
        headers={"authorization": f"Bearer {cass_token}"},
    )
    wrong_password = await http.post(
        "/staff/graphql",
        json={
            "query": 'mutation { staffSessionCreate(input: {email: "cass@example.com", password: "guess"}) '
            "{ userErrors { code } } }"
        },
    )

    # then each refusal answers as before and is one INFO line with its code
    assert revoked_response.status_code == 401
    assert forbidden.json()["errors"][0]["extensions"] == {"code": "FORBIDDEN"}
    assert wrong_password.json()["data"]["staffSessionCreate"]["userErrors"] == [{"code": "INVALID_CREDENTIALS"}]
    logged = lines(caplog)
    assert logged[0] == ("klubb.auth", "INFO", "staff request refused [INVALID_TOKEN]: invalid API key")
    assert logged[1][:2] == ("klubb.graphql", "INFO")
    assert logged[1][2].startswith("request refused [FORBIDDEN]: ")
    assert logged[1][2].endswith("(path pointsAdjust)")
    assert logged[2][:2] == ("klubb.auth", "INFO")
    assert logged[2][2].startswith("staff sign-in refused [INVALID_CREDENTIALS]: ")
    assert len(logged) == 3


async def test_a_malformed_query_is_one_line(
    http: httpx.AsyncClient, program: Program, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    await http.post("/staff/graphql", json={"query": "{ nope }"})

    assert [(name, level) for name, level, _ in lines(caplog)] == [("klubb.graphql", "INFO")]
    assert lines(caplog)[0][2].startswith("request refused [GRAPHQL_VALIDATION_FAILED]: Cannot query field 'nope'")


async def test_an_unexpected_error_keeps_its_traceback(
    http: httpx.AsyncClient,
    settings: Settings,
    anna: Member,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a bug in a resolver's domain call
    async def broken(member: Member, at: object) -> Member:
        raise RuntimeError("a bug")

    monkeypatch.setattr("schema.member_schema.settled", broken)
    token = TokenService(settings).issue(str(anna.id), MEMBER_AUDIENCE).token

    response = await http.post("/graphql", json={"query": HOME_QUERY}, headers={"authorization": f"Bearer {token}"})

    # then it is logged by strawberry as an error with the exception attached (the full traceback), production too
    assert response.status_code == 200
    assert response.json()["errors"][0]["message"] == ("Unexpected error." if settings.production else "a bug")
    faults = [r for r in caplog.records if r.name == "strawberry.execution"]
    assert [(r.levelname, type(r.exc_info[1]).__name__ if r.exc_info else None) for r in faults] == [
        ("ERROR", "RuntimeError")
    ]
