"""Firebase ID tokens through the real firebase-admin: emulator mode, and RS256 against locally served keys."""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import firebase_admin
import firebase_admin._token_gen
import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from api.app import create_app
from api.auth import AuthUnavailable, InvalidFirebaseToken
from api.auth.firebase import FirebaseIdentity, FirebaseVerifier, firebase_app, make_emulator_id_token
from api.settings import Environment, Settings, UnsafeSettings
from loyalty.clock import FrozenClock
from loyalty.models import Member, Program
from tests.conftest import app_settings

OPERATIONS = Path(__file__).parents[3] / "mobile-client-mock" / "operations"


def _unsigned(claims: dict[str, Any]) -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(claims)}."


async def test_emulator_token_gives_the_identity(verifier: FirebaseVerifier) -> None:
    # given an emulator token for a user with a verified email
    token = make_emulator_id_token("klubb-test", "demo:anna@example.com", "anna@example.com", "Anna")

    # when it is verified
    identity = await verifier.verify(token)

    # then
    assert identity == FirebaseIdentity(uid="demo:anna@example.com", email="anna@example.com", name="Anna")


async def test_token_without_email_or_name(verifier: FirebaseVerifier) -> None:
    token = make_emulator_id_token("klubb-test", "phone-user", None)

    assert await verifier.verify(token) == FirebaseIdentity(uid="phone-user", email=None, name="")


async def test_unverified_email_is_not_taken(verifier: FirebaseVerifier) -> None:
    # given a token whose email Firebase has not verified (anyone can type any address at sign-up)
    claims = json.loads(
        base64.urlsafe_b64decode(make_emulator_id_token("klubb-test", "u1", "x@y.z").split(".")[1] + "==")
    )
    claims["email_verified"] = False

    identity = await verifier.verify(_unsigned(claims))

    assert (identity.uid, identity.email) == ("u1", None)


async def test_token_for_another_project_is_refused(verifier: FirebaseVerifier) -> None:
    token = make_emulator_id_token("someone-elses-project", "u1", "a@b.c")

    with pytest.raises(InvalidFirebaseToken) as refused:
        await verifier.verify(token)
    assert refused.value.code == "INVALID_FIREBASE_TOKEN"


async def test_token_with_another_projects_issuer_is_refused(verifier: FirebaseVerifier) -> None:
    claims = json.loads(base64.urlsafe_b64decode(make_emulator_id_token("klubb-test", "u1", None).split(".")[1] + "=="))
    claims["iss"] = "https://securetoken.google.com/someone-elses-project"

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(_unsigned(claims))


async def test_expired_emulator_token_is_refused(verifier: FirebaseVerifier, clock: FrozenClock) -> None:
    # given a one-hour token: firebase-admin itself does no time checks in emulator mode, we do
    token = make_emulator_id_token("klubb-test", "u1", "a@b.c")
    clock.advance(timedelta(seconds=3599))
    assert (await verifier.verify(token)).uid == "u1"

    # when its exp is reached
    clock.advance(timedelta(seconds=1))

    # then
    with pytest.raises(InvalidFirebaseToken, match="expired"):
        await verifier.verify(token)


async def test_token_issued_in_the_future_is_refused(verifier: FirebaseVerifier, clock: FrozenClock) -> None:
    clock.advance(timedelta(minutes=5))
    token = make_emulator_id_token("klubb-test", "u1", None)
    clock.advance(timedelta(minutes=-5))

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(token)


@pytest.mark.parametrize(
    "garbage",
    ["", "garbage", "a.b.c", "e30.e30.", "x" * 10_000, _unsigned({"aud": "klubb-test"})],
    ids=["empty", "word", "three-parts", "empty-json", "huge", "no-claims"],
)
async def test_garbage_is_refused(verifier: FirebaseVerifier, garbage: str) -> None:
    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(garbage)


async def test_unsigned_token_is_refused_without_the_emulator(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: FrozenClock
) -> None:
    # given emulator mode is off (firebase-admin requires a kid and RS256 before any key fetch)
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    verifier = FirebaseVerifier(settings)

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(make_emulator_id_token("klubb-test", "u1", "a@b.c"))


async def test_one_firebase_app_per_project_per_process(settings: Settings, emulator: str) -> None:
    assert FirebaseVerifier(settings)._app is FirebaseVerifier(settings)._app
    assert firebase_app("klubb-test").name == "klubb-auth-klubb-test"
    assert firebase_app("klubb-test").project_id == "klubb-test"


async def test_emulator_mode_is_refused_in_production(emulator: str) -> None:
    with pytest.raises(UnsafeSettings, match="FIREBASE_AUTH_EMULATOR_HOST"):
        FirebaseVerifier(Settings(environment="production"))


async def test_emulator_tokens_are_not_made_in_production(clock: FrozenClock) -> None:
    with pytest.raises(UnsafeSettings):
        make_emulator_id_token("klubb-test", "u1", None, settings=Settings(environment="production"))


# --- Real RS256 verification against signing keys served on 127.0.0.1 ------------------------------------------


@dataclass
class LocalGoogleKeys:
    """A stand-in for Google's securetoken certificate endpoint: {kid: x509 PEM}, as Google serves them."""

    project_id: str
    key: rsa.RSAPrivateKey
    kid: str = "test-kid-1"
    status: int = 200
    body: bytes | None = None  # served instead of the certificates (with `status`)
    delay_seconds: float = 0.0
    url: str = ""
    requests: list[str] = field(default_factory=list)

    def certs(self) -> bytes:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        return json.dumps({self.kid: cert.public_bytes(serialization.Encoding.PEM).decode()}).encode()

    def id_token(self, uid: str, *, key: rsa.RSAPrivateKey | None = None, **overrides: Any) -> str:
        now = int(datetime.now(UTC).timestamp())
        claims = {
            "iss": f"https://securetoken.google.com/{self.project_id}",
            "aud": self.project_id,
            "auth_time": now,
            "user_id": uid,
            "sub": uid,
            "iat": now,
            "exp": now + 3600,
            "email": "rs@example.com",
            "email_verified": True,
            "name": "Rs",
        } | overrides
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
def google_keys(monkeypatch: pytest.MonkeyPatch, clock: FrozenClock) -> Iterator[LocalGoogleKeys]:
    """Serve signing certificates locally and point firebase-admin at them.

    The seam: firebase-admin has no option for the certificate URL; `TokenVerifier` reads the module constant
    `firebase_admin._token_gen.ID_TOKEN_CERT_URI` when an App's auth client is first made. If an upgrade removes it,
    the tests below fail (they would reach for Google, which is unreachable here), so the seam is guarded.
    """
    keys = LocalGoogleKeys(
        f"klubb-rs-{uuid.uuid4().hex[:8]}", rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            keys.requests.append(self.path)
            time.sleep(keys.delay_seconds)
            body = keys.body if keys.body is not None else keys.certs() if keys.status == 200 else b"{}"
            self.send_response(keys.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    assert isinstance(firebase_admin._token_gen.ID_TOKEN_CERT_URI, str)
    keys.url = f"http://127.0.0.1:{server.server_address[1]}/certs"
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", keys.url)
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    clock.set(datetime.now(UTC))  # google-auth checks exp and iat against the wall clock
    try:
        yield keys
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        firebase_admin.delete_app(firebase_app(keys.project_id))


async def test_rs256_token_signed_by_google_keys_gives_the_identity(google_keys: LocalGoogleKeys) -> None:
    # given a verifier in production-like mode (no emulator) and a token signed by the served key
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    # when it is verified
    identity = await verifier.verify(google_keys.id_token("rs-user"))

    # then firebase-admin fetched the certificates from our server and checked the signature
    assert identity == FirebaseIdentity(uid="rs-user", email="rs@example.com", name="Rs")
    assert google_keys.requests == ["/certs"]


async def test_rs256_token_signed_by_another_key_is_refused(google_keys: LocalGoogleKeys) -> None:
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))
    forged = google_keys.id_token("rs-user", key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(forged)
    assert google_keys.requests == ["/certs"]


async def test_expired_rs256_token_is_refused(google_keys: LocalGoogleKeys) -> None:
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))
    now = int(datetime.now(UTC).timestamp())

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(google_keys.id_token("rs-user", iat=now - 7200, auth_time=now - 7200, exp=now - 3600))


async def test_rs256_token_for_another_project_is_refused(google_keys: LocalGoogleKeys) -> None:
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    with pytest.raises(InvalidFirebaseToken):
        await verifier.verify(google_keys.id_token("rs-user", aud="someone-elses-project"))


async def test_unreachable_signing_keys_are_a_fault_not_a_bad_token(google_keys: LocalGoogleKeys) -> None:
    # given the certificate endpoint fails
    google_keys.status = 500
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    # then sign-in is reported as unavailable (retryable), not as the member's bad token
    with pytest.raises(AuthUnavailable) as refused:
        await verifier.verify(google_keys.id_token("rs-user"))
    assert refused.value.code == "AUTH_UNAVAILABLE"


@pytest.mark.parametrize(
    ("status", "body"),
    [(503, b"{}"), (502, b"<html>Bad Gateway</html>"), (200, b"<html>captive portal</html>"), (200, b"\xff\xfe")],
    ids=["503", "502-html", "200-not-json", "200-not-utf8"],
)
async def test_a_failing_certificate_endpoint_is_unavailable_not_a_bad_token(
    google_keys: LocalGoogleKeys, status: int, body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # given Google's certificate endpoint answers with an error or a body that is not the certificates
    google_keys.status, google_keys.body = status, body
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    # when a genuine token is verified
    with pytest.raises(AuthUnavailable) as refused:
        await verifier.verify(google_keys.id_token("rs-user"))

    # then sign-in is unavailable (retryable), and the operator reads one warning line
    assert (refused.value.code, refused.value.message) == (
        "AUTH_UNAVAILABLE",
        "sign-in is temporarily unavailable (Google's signing keys could not be fetched): try again",
    )
    warnings = [r for r in caplog.records if r.name == "klubb.auth"]
    assert [(r.levelname, r.exc_info) for r in warnings] == [("WARNING", None)]
    assert warnings[0].getMessage().startswith("Firebase signing keys could not be ")


async def test_an_unreachable_certificate_endpoint_is_unavailable(
    google_keys: LocalGoogleKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given nothing listens where the certificates should be (connection refused)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setattr(firebase_admin._token_gen, "ID_TOKEN_CERT_URI", f"http://127.0.0.1:{closed_port}/certs")
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    with pytest.raises(AuthUnavailable):
        await verifier.verify(google_keys.id_token("rs-user"))
    assert google_keys.requests == []


async def test_a_hanging_certificate_endpoint_times_out_as_unavailable(
    google_keys: LocalGoogleKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the endpoint takes longer than the fetch timeout (10 s in production, 0.2 s here)
    monkeypatch.setattr("api.auth.firebase.CERT_FETCH_TIMEOUT_SECONDS", 0.2)
    google_keys.delay_seconds = 1.0
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))

    started = time.monotonic()
    with pytest.raises(AuthUnavailable):
        await verifier.verify(google_keys.id_token("rs-user"))
    assert time.monotonic() - started < 0.9


async def test_sign_in_works_again_once_the_keys_are_back(google_keys: LocalGoogleKeys) -> None:
    # given a sign-in refused while the endpoint failed
    google_keys.status = 500
    verifier = FirebaseVerifier(Settings(firebase_project_id=google_keys.project_id))
    token = google_keys.id_token("rs-user")
    with pytest.raises(AuthUnavailable):
        await verifier.verify(token)

    # when the endpoint recovers, the same token is accepted (the failure was not cached)
    google_keys.status = 200
    assert (await verifier.verify(token)).uid == "rs-user"
    assert google_keys.requests == ["/certs", "/certs"]


async def test_session_create_answers_auth_unavailable_in_production(
    db: str, program: Program, google_keys: LocalGoogleKeys, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # given the production member endpoint, Firebase's keys failing, and the app's own sign-in operation
    google_keys.status = 503
    settings = app_settings(db, tmp_path, Environment.PRODUCTION).model_copy(
        update={"firebase_project_id": google_keys.project_id}
    )
    transport = httpx.ASGITransport(app=create_app(settings))
    document = (OPERATIONS / "SessionCreate.graphql").read_text()

    # when a member signs in with a genuine token
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        response = await http.post(
            "/graphql", json={"query": document, "variables": {"firebaseIdToken": google_keys.id_token("rs-user")}}
        )

    # then the coded, retryable userError (naming no input), not a masked "Unexpected error.", and nobody enrolled
    assert (response.status_code, response.json()) == (
        200,
        {
            "data": {
                "sessionCreate": {
                    "accessToken": None,
                    "accessTokenExpiresAt": None,
                    "refreshToken": None,
                    "member": None,
                    "userErrors": [
                        {
                            "code": "AUTH_UNAVAILABLE",
                            "message": "sign-in is temporarily unavailable (Google's signing keys could not be "
                            "fetched): try again",
                            "field": None,
                        }
                    ],
                }
            }
        },
    )
    assert await Member.all().count() == 0
    assert [r.levelname for r in caplog.records if r.levelno >= logging.WARNING] == ["WARNING"]
