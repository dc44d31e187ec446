"""Member sign-in end to end below GraphQL: Firebase token → member (enrolled once) → access JWT + refresh token."""

from __future__ import annotations

from datetime import timedelta

import pytest

from api.auth import InvalidFirebaseToken, InvalidToken, TokenExpired
from api.auth.firebase import FirebaseVerifier, make_emulator_id_token
from api.auth.member_sign_in import create_session, member_id_from_authorization, refresh_session
from api.auth.tokens import MEMBER_AUDIENCE, STAFF_AUDIENCE, TokenService
from api.settings import Settings
from loyalty.clock import FrozenClock
from loyalty.models import Member, OutboxEvent, Program, RefreshToken
from loyalty.refresh_tokens import RefreshTokenInvalid, RefreshTokenReused
from tests.conftest import START


async def test_first_sign_in_enrolls_and_issues_a_session(
    program: Program, settings: Settings, tokens: TokenService, verifier: FirebaseVerifier
) -> None:
    # given a Firebase user who never signed in
    id_token = make_emulator_id_token("klubb-test", "fb-anna", "anna@example.com", "Anna")

    # when they sign in
    session = await create_session(id_token, verifier=verifier, tokens=tokens, settings=settings)

    # then they are enrolled, and hold an access token for their member id and a refresh token
    member = await Member.get(firebase_uid="fb-anna")
    assert (session.member.id, member.email, member.display_name) == (member.id, "anna@example.com", "Anna")
    claims = tokens.verify(session.access_token, MEMBER_AUDIENCE)
    assert claims.subject == str(member.id)
    assert session.access_token_expires_at == START + timedelta(seconds=900)
    stored = await RefreshToken.get(member_id=member.id)
    assert stored.expires_at == START + timedelta(days=30)
    assert await OutboxEvent.filter(type="member.enrolled", member_id=member.id).count() == 1


async def test_second_sign_in_finds_the_same_member(
    program: Program, settings: Settings, tokens: TokenService, verifier: FirebaseVerifier
) -> None:
    id_token = make_emulator_id_token("klubb-test", "fb-bo", "bo@example.com", "Bo")
    first = await create_session(id_token, verifier=verifier, tokens=tokens, settings=settings)

    second = await create_session(id_token, verifier=verifier, tokens=tokens, settings=settings)

    assert second.member.id == first.member.id
    assert await Member.all().count() == 1
    assert second.refresh_token != first.refresh_token
    assert await RefreshToken.filter(member_id=first.member.id).count() == 2


async def test_invalid_firebase_token_enrolls_nobody(
    program: Program, settings: Settings, tokens: TokenService, verifier: FirebaseVerifier
) -> None:
    other_project = make_emulator_id_token("another-project", "fb-eve", "eve@example.com")

    with pytest.raises(InvalidFirebaseToken):
        await create_session(other_project, verifier=verifier, tokens=tokens, settings=settings)
    assert await Member.all().count() == 0


async def test_refresh_rotates_and_a_replayed_token_ends_the_session(
    program: Program, settings: Settings, tokens: TokenService, verifier: FirebaseVerifier, clock: FrozenClock
) -> None:
    # given a signed-in member whose access token has expired
    signed_in = await create_session(
        make_emulator_id_token("klubb-test", "fb-cy", None), verifier=verifier, tokens=tokens, settings=settings
    )
    clock.advance(timedelta(minutes=20))
    with pytest.raises(TokenExpired):
        tokens.verify(signed_in.access_token, MEMBER_AUDIENCE)

    # when the app refreshes
    refreshed = await refresh_session(signed_in.refresh_token, tokens=tokens, settings=settings)

    # then it gets a working access token and a new refresh token for the same member
    assert refreshed.member.id == signed_in.member.id
    assert tokens.verify(refreshed.access_token, MEMBER_AUDIENCE).subject == str(signed_in.member.id)
    assert refreshed.access_token_expires_at == START + timedelta(minutes=20, seconds=900)
    assert refreshed.refresh_token != signed_in.refresh_token

    # and replaying the spent refresh token ends the session, so the new one stops working too
    with pytest.raises(RefreshTokenReused) as reused:
        await refresh_session(signed_in.refresh_token, tokens=tokens, settings=settings)
    assert reused.value.code == "REFRESH_TOKEN_REUSED"
    with pytest.raises(RefreshTokenInvalid) as invalid:
        await refresh_session(refreshed.refresh_token, tokens=tokens, settings=settings)
    assert invalid.value.code == "REFRESH_TOKEN_INVALID"


async def test_refresh_uses_the_configured_lifetime(
    program: Program, settings: Settings, tokens: TokenService, verifier: FirebaseVerifier, clock: FrozenClock
) -> None:
    short = settings.model_copy(update={"refresh_token_days": 2})
    signed_in = await create_session(
        make_emulator_id_token("klubb-test", "fb-di", None), verifier=verifier, tokens=tokens, settings=short
    )
    clock.advance(timedelta(days=2))

    with pytest.raises(RefreshTokenInvalid, match="expired"):
        await refresh_session(signed_in.refresh_token, tokens=tokens, settings=short)


async def test_authorization_header_gives_the_member_id(tokens: TokenService) -> None:
    token = tokens.issue("42", MEMBER_AUDIENCE).token

    assert member_id_from_authorization(None, tokens, START) is None
    assert member_id_from_authorization(f"Bearer {token}", tokens, START) == 42
    assert member_id_from_authorization(f"bearer  {token} ", tokens, START) == 42


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "token-without-scheme", "Bearer not.a.jwt"],
    ids=["empty", "scheme-only", "scheme-space", "basic", "no-scheme", "garbage-token"],
)
async def test_malformed_authorization_header_is_refused(tokens: TokenService, header: str) -> None:
    with pytest.raises(InvalidToken) as refused:
        member_id_from_authorization(header, tokens, START)
    assert refused.value.code == "INVALID_TOKEN"


async def test_the_token_is_checked_at_the_requests_instant(tokens: TokenService, settings: Settings) -> None:
    # given a token issued at START (the business clock stays there)
    token = tokens.issue("42", MEMBER_AUDIENCE).token
    expiry = START + timedelta(seconds=settings.access_token_seconds)

    # then it authorizes a request up to its expiry, and not a request at that instant
    assert member_id_from_authorization(f"Bearer {token}", tokens, expiry - timedelta(seconds=1)) == 42
    with pytest.raises(TokenExpired):
        member_id_from_authorization(f"Bearer {token}", tokens, expiry)


async def test_staff_token_is_not_a_member_authorization(tokens: TokenService) -> None:
    staff = tokens.issue("1", STAFF_AUDIENCE).token

    with pytest.raises(InvalidToken):
        member_id_from_authorization(f"Bearer {staff}", tokens, START)


async def test_non_numeric_subject_is_refused(tokens: TokenService) -> None:
    token = tokens.issue("staff:1", MEMBER_AUDIENCE).token

    with pytest.raises(InvalidToken):
        member_id_from_authorization(f"Bearer {token}", tokens, START)
