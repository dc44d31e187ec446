"""Access JWTs: issue/verify, key persistence and rotation, JWKS, and the usual attacks on JWT verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from api.auth import InvalidToken, TokenExpired
from api.auth.tokens import (
    MEMBER_AUDIENCE,
    STAFF_AUDIENCE,
    TokenService,
    generate_private_key,
    jwk_thumbprint,
    load_private_key,
    public_key_pem,
    write_private_key,
)
from api.settings import Settings, UnsafeSettings
from loyalty.clock import FrozenClock
from tests.conftest import START


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value).encode())


def _dev_key(settings: Settings) -> ec.EllipticCurvePrivateKey:
    return load_private_key(Path(settings.jwt_dev_key_file))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(START.timestamp())
    claims = {"iss": "klubb", "aud": MEMBER_AUDIENCE, "sub": "42", "iat": now, "exp": now + 900, "jti": "j1"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _raw_sign(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """ES256 over any header, even one pyjwt would refuse to produce."""
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(signing_input.encode(), key)
    return f"{signing_input}.{_b64(signature)}"


def _sign(settings: Settings, claims: dict[str, Any], **header: Any) -> str:
    key = _dev_key(settings)
    headers = {"kid": jwk_thumbprint(key.public_key()), **header}
    return jwt.encode(claims, key, algorithm="ES256", headers={k: v for k, v in headers.items() if v is not None})


async def test_issued_member_token_verifies_with_its_claims(tokens: TokenService, clock: FrozenClock) -> None:
    # given a member token
    issued = tokens.issue("42", MEMBER_AUDIENCE)

    # when it is verified for the member audience
    claims = tokens.verify(issued.token, MEMBER_AUDIENCE)

    # then the claims are the issued ones and the header names the key and ES256
    assert (claims.subject, claims.audience, claims.issuer) == ("42", MEMBER_AUDIENCE, "klubb")
    assert (claims.issued_at, claims.expires_at) == (START, START + timedelta(seconds=900))
    assert issued.expires_at == START + timedelta(seconds=900)
    assert jwt.get_unverified_header(issued.token) == {"alg": "ES256", "kid": tokens.kid, "typ": "JWT"}
    assert len(claims.token_id) == 32


async def test_each_token_has_its_own_jti(tokens: TokenService) -> None:
    first = tokens.verify(tokens.issue("42", MEMBER_AUDIENCE).token, MEMBER_AUDIENCE)
    second = tokens.verify(tokens.issue("42", MEMBER_AUDIENCE).token, MEMBER_AUDIENCE)

    assert first.token_id != second.token_id


async def test_hand_signed_control_token_is_accepted(settings: Settings, tokens: TokenService) -> None:
    # The attack tests below use this helper: with nothing wrong, its tokens verify, so each refusal is the attack's.
    claims = tokens.verify(_sign(settings, _claims()), MEMBER_AUDIENCE)
    raw = tokens.verify(_raw_sign(_dev_key(settings), {"alg": "ES256", "kid": tokens.kid}, _claims()), MEMBER_AUDIENCE)

    assert (claims.subject, raw.subject) == ("42", "42")


async def test_dev_key_is_persisted_owner_only_and_reused_after_restart(settings: Settings, clock: FrozenClock) -> None:
    # given a service that generated the development key
    first = TokenService(settings)
    token = first.issue("7", MEMBER_AUDIENCE).token

    # when the process "restarts"
    second = TokenService(settings)

    # then the same key is loaded and old tokens still verify
    key_file = Path(settings.jwt_dev_key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert second.kid == first.kid
    assert second.verify(token, MEMBER_AUDIENCE).subject == "7"
    assert [p.name for p in key_file.parent.iterdir()] == ["dev-jwt-key.pem"]


async def test_configured_private_key_file_is_used(tmp_path: Path, clock: FrozenClock) -> None:
    key = generate_private_key()
    write_private_key(tmp_path / "signing.pem", key)

    service = TokenService(Settings(jwt_private_key_file=str(tmp_path / "signing.pem")))

    assert service.kid == jwk_thumbprint(key.public_key())
    assert not (tmp_path / "var").exists()


async def test_production_without_a_key_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(environment="production", jwt_dev_key_file=str(tmp_path / "dev.pem"))

    with pytest.raises(UnsafeSettings, match="KLUBB_JWT_PRIVATE_KEY_FILE"):
        TokenService(settings)
    assert not (tmp_path / "dev.pem").exists()


async def test_a_non_p256_key_file_is_refused(tmp_path: Path) -> None:
    write_private_key(tmp_path / "p384.pem", ec.generate_private_key(ec.SECP384R1()))

    with pytest.raises(ValueError, match="not an EC P-256 private key"):
        TokenService(Settings(jwt_private_key_file=str(tmp_path / "p384.pem")))


async def test_jwks_lists_current_then_previous_keys_with_rfc7638_kids(tmp_path: Path, settings: Settings) -> None:
    # given a previous key configured for rotation
    previous = generate_private_key()
    (tmp_path / "previous.pub.pem").write_bytes(public_key_pem(previous.public_key()))
    settings.jwt_previous_public_key_files = str(tmp_path / "previous.pub.pem")
    service = TokenService(settings)

    # when the JWKS is published
    keys = service.jwks()["keys"]

    # then both keys are there, each kid is the thumbprint over {"crv","kty","x","y"} in that order
    assert [k["kid"] for k in keys] == [service.kid, jwk_thumbprint(previous.public_key())]
    for jwk in keys:
        canonical = f'{{"crv":"P-256","kty":"EC","x":"{jwk["x"]}","y":"{jwk["y"]}"}}'
        assert jwk["kid"] == _b64(hashlib.sha256(canonical.encode()).digest())
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}


async def test_jwks_key_verifies_issued_tokens(tokens: TokenService) -> None:
    # A relying party with only the JWKS can verify our tokens.
    token = tokens.issue("42", MEMBER_AUDIENCE).token
    jwk = jwt.PyJWK(tokens.jwks()["keys"][0])

    # (exp is checked against the frozen business clock elsewhere; pyjwt only knows the wall clock)
    payload = jwt.decode(token, jwk.key, algorithms=["ES256"], audience=MEMBER_AUDIENCE, options={"verify_exp": False})

    assert payload["sub"] == "42"


async def test_tokens_of_a_previous_key_verify_until_it_is_dropped(
    tmp_path: Path, settings: Settings, clock: FrozenClock
) -> None:
    # given a token signed with the old key
    old_key = generate_private_key()
    write_private_key(tmp_path / "old.pem", old_key)
    old_token = TokenService(Settings(jwt_private_key_file=str(tmp_path / "old.pem"))).issue("5", MEMBER_AUDIENCE)
    (tmp_path / "old.pub.pem").write_bytes(public_key_pem(old_key.public_key()))

    # when the service has rotated to a new key, the old key listed as previous
    rotated = TokenService(settings.model_copy(update={"jwt_previous_public_key_files": str(tmp_path / "old.pub.pem")}))
    # then the old token still verifies
    assert rotated.verify(old_token.token, MEMBER_AUDIENCE).subject == "5"

    # and once the old key is dropped it does not
    with pytest.raises(InvalidToken):
        TokenService(settings).verify(old_token.token, MEMBER_AUDIENCE)


async def test_expired_token_is_refused(tokens: TokenService, clock: FrozenClock) -> None:
    # given a token, one second before its expiry it is accepted
    token = tokens.issue("42", MEMBER_AUDIENCE).token
    clock.advance(timedelta(seconds=899))
    assert tokens.verify(token, MEMBER_AUDIENCE).subject == "42"

    # when its exp is reached
    clock.advance(timedelta(seconds=1))

    # then it is refused as expired
    with pytest.raises(TokenExpired) as refused:
        tokens.verify(token, MEMBER_AUDIENCE)
    assert refused.value.code == "TOKEN_EXPIRED"


async def test_a_token_signature_is_checked_once_and_a_refusal_every_time(
    tokens: TokenService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a counter of signature checks (pyjwt's, not ours)
    checks: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        checks.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    token = tokens.issue("42", MEMBER_AUDIENCE).token
    header, _, signature = token.split(".")
    forged = f"{header}.{_segment({**_claims(), 'sub': '43'})}.{signature}"

    # when each is presented three times
    subjects = [tokens.verify(token, MEMBER_AUDIENCE).subject for _ in range(3)]
    for _ in range(3):
        with pytest.raises(InvalidToken):
            tokens.verify(forged, MEMBER_AUDIENCE)

    # then the good one was checked once, the forged one every time
    assert subjects == ["42", "42", "42"]
    assert checks == [token, forged, forged, forged]


async def test_staff_token_is_refused_for_the_member_audience(tokens: TokenService) -> None:
    staff_token = tokens.issue("3", STAFF_AUDIENCE).token
    assert tokens.verify(staff_token, STAFF_AUDIENCE).subject == "3"

    with pytest.raises(InvalidToken) as refused:
        tokens.verify(staff_token, MEMBER_AUDIENCE)
    assert refused.value.code == "INVALID_TOKEN"


async def test_a_staff_token_carries_its_session_id(tokens: TokenService) -> None:
    # given a staff token in a session, and a member token (no session)
    staff_token = tokens.issue("staff:3", STAFF_AUDIENCE, "0123456789abcdef0123456789abcdef").token
    member_token = tokens.issue("42", MEMBER_AUDIENCE).token

    # then the session comes back as `sid`, and a token without one has none
    assert tokens.verify(staff_token, STAFF_AUDIENCE).session_id == "0123456789abcdef0123456789abcdef"
    assert jwt.decode(staff_token, options={"verify_signature": False})["sid"] == "0123456789abcdef0123456789abcdef"
    assert tokens.verify(member_token, MEMBER_AUDIENCE).session_id is None
    assert "sid" not in jwt.decode(member_token, options={"verify_signature": False})


async def test_token_with_both_audiences_is_refused(settings: Settings, tokens: TokenService) -> None:
    token = _sign(settings, _claims(aud=[MEMBER_AUDIENCE, STAFF_AUDIENCE]))

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


async def test_alg_none_is_refused(settings: Settings, tokens: TokenService) -> None:
    # given an unsigned token that names our kid
    header = {"alg": "none", "typ": "JWT", "kid": tokens.kid}
    token = f"{_segment(header)}.{_segment(_claims())}."

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


async def test_hs256_signed_with_the_public_key_is_refused(tokens: TokenService, settings: Settings) -> None:
    # given the HS/RS confusion attack: an HMAC over the token with the public PEM (which is public) as the secret
    secret = public_key_pem(_dev_key(settings).public_key())
    signing_input = f"{_segment({'alg': 'HS256', 'typ': 'JWT', 'kid': tokens.kid})}.{_segment(_claims())}"
    signature = _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())

    with pytest.raises(InvalidToken):
        tokens.verify(f"{signing_input}.{signature}", MEMBER_AUDIENCE)


async def test_unknown_kid_is_refused(tokens: TokenService) -> None:
    # given a well-formed token signed by a key we never configured, carrying its own thumbprint as kid
    stranger = generate_private_key()
    token = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": jwk_thumbprint(stranger.public_key())})

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


async def test_other_key_under_our_kid_is_refused(tokens: TokenService) -> None:
    stranger = generate_private_key()
    token = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": tokens.kid})

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


@pytest.mark.parametrize("kid", [None, "", 123], ids=["missing", "empty", "number"])
async def test_missing_or_bad_kid_is_refused(settings: Settings, tokens: TokenService, kid: Any) -> None:
    header = {"alg": "ES256", "typ": "JWT"} if kid is None else {"alg": "ES256", "typ": "JWT", "kid": kid}
    token = _raw_sign(_dev_key(settings), header, _claims())

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


async def test_wrong_issuer_is_refused(settings: Settings, tokens: TokenService) -> None:
    # given a token signed with our key by a service configured with another issuer
    other = TokenService(settings.model_copy(update={"jwt_issuer": "someone-else"}))
    token = other.issue("42", MEMBER_AUDIENCE).token

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


async def test_tampered_payload_is_refused(tokens: TokenService) -> None:
    # given a valid token whose payload is swapped for another member's, keeping the signature
    header, _, signature = tokens.issue("42", MEMBER_AUDIENCE).token.split(".")
    token = f"{header}.{_segment(_claims(sub='1'))}.{signature}"

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud", "jti"])
async def test_token_missing_a_required_claim_is_refused(settings: Settings, tokens: TokenService, claim: str) -> None:
    token = _sign(settings, _claims(**{claim: None}))

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": "2099-01-01"},
        {"exp": True},
        {"iat": "now"},
        {"sub": ""},
        {"sub": 42},
        {"iat": int(START.timestamp()) + 3600},
        {"sid": 7},
        {"sid": ["a"]},
    ],
    ids=["exp-string", "exp-bool", "iat-string", "sub-empty", "sub-number", "iat-in-future", "sid-number", "sid-list"],
)
async def test_malformed_claims_are_refused(
    settings: Settings, tokens: TokenService, overrides: dict[str, Any]
) -> None:
    token = _sign(settings, _claims(**overrides))

    with pytest.raises(InvalidToken):
        tokens.verify(token, MEMBER_AUDIENCE)


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "....", "eyJ.eyJ.eyJ"])
async def test_garbage_is_refused(tokens: TokenService, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.verify(garbage, MEMBER_AUDIENCE)
