"""The one seam into firebase-admin's private API (push/fcm.py): fails when an upgrade removes or renames it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import firebase_admin
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import messaging

from push.config import CredentialSource, FcmConfig
from push.fake import FakeFcm, self_signed_certificate, tls_context
from push.fcm import FcmSender, Outcome, Push, _FixedToken
from tests.push.conftest import PROJECT, config_for


def test_the_messaging_service_still_has_the_attributes_the_seam_uses() -> None:
    # given the installed firebase-admin's messaging module
    service_class = messaging._MessagingService

    # then the send URL is still the template the service formats into `_fcm_url`, the service is still reached
    # through `_get_messaging_service`, and send_each_async still sends through `_async_client`
    assert service_class.FCM_URL == "https://fcm.googleapis.com/v1/projects/{0}/messages:send"
    assert callable(messaging._get_messaging_service)
    assert callable(messaging.send_each_async)
    assert "self._fcm_url" in _source(service_class.send_each_async)
    assert "self._async_client.request" in _source(service_class.send_each_async)


def _source(function: object) -> str:
    import inspect

    return inspect.getsource(function)  # type: ignore[arg-type]


async def test_a_send_really_reaches_the_fake_through_the_seam(fake: FakeFcm) -> None:
    # given a development sender
    async with FcmSender(config_for(fake)) as sender:
        service = messaging._get_messaging_service(sender.app)

        # then its messaging service points at the fake, on an app of its own with the fixed-token credential
        assert service._fcm_url == f"{fake.url}/v1/projects/{PROJECT}/messages:send"
        assert sender.app.name != firebase_admin._DEFAULT_APP_NAME
        assert isinstance(service._credential, _FixedToken)

        # and when a push is sent, the fake got it with our bearer token (it answers 401 otherwise)
        [result] = await sender.send([Push("device-a", "Hi", "There")])
    assert result.outcome is Outcome.SENT
    assert (fake.requests, fake.sent) == (1, 1)


async def test_closing_a_sender_deletes_its_app(fake: FakeFcm) -> None:
    sender = FcmSender(config_for(fake))
    name = sender.app.name
    await sender.aclose()
    with pytest.raises(ValueError, match="does not exist"):
        firebase_admin.get_app(name)


def test_the_development_credential_never_refreshes_over_the_network() -> None:
    credential = _FixedToken("t")
    credential.refresh(None)  # no request object: a network call would fail
    assert (credential.token, credential.valid) == ("t", True)


async def test_a_service_account_sender_talks_to_google_not_to_a_fake(tmp_path: Path) -> None:
    # given a service account key file (made here: nothing is sent)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = {
        "type": "service_account",
        "project_id": "klubb-prod",
        "private_key_id": "1",
        "private_key": pem,
        "client_email": "fcm@klubb-prod.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(account))

    # when a sender is built from it
    config = FcmConfig("klubb-prod", CredentialSource.SERVICE_ACCOUNT_FILE, service_account_file=str(path))
    async with FcmSender(config) as sender:
        service = messaging._get_messaging_service(sender.app)

        # then it sends to FCM itself, as the service account
        assert service._fcm_url == "https://fcm.googleapis.com/v1/projects/klubb-prod/messages:send"
        assert service._credential.service_account_email == "fcm@klubb-prod.iam.gserviceaccount.com"


async def test_the_sdk_multiplexes_http2_over_tls_as_with_fcm(tmp_path: Path) -> None:
    # given the fake serving HTTP/2 over TLS, and a sender trusting its certificate
    certificate, key = self_signed_certificate(tmp_path)
    fake = FakeFcm(project=PROJECT)
    await fake.start(tls=tls_context(certificate, key))
    try:
        async with FcmSender(config_for(fake, fake_certificate=str(certificate))) as sender:
            # when 50 pushes go at once, one of them to a dead token
            fake.unregistered.add("device-7")
            results = await sender.send([Push(f"device-{i}", "Hi", "There") for i in range(50)])
    finally:
        await fake.stop()

    # then they all went over one HTTP/2 connection, with the same outcomes as over HTTP/1.1
    assert fake.url is not None
    assert fake.url.startswith("https://")
    assert fake.h2_connections == 1
    assert [r.outcome for r in results] == [Outcome.UNREGISTERED if i == 7 else Outcome.SENT for i in range(50)]
    assert fake.sent == 49


async def test_the_fakes_certificate_is_trusted_by_its_sender_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the fake over TLS, and a process whose SSL_CERT_FILE names another bundle
    certificate, key = self_signed_certificate(tmp_path)
    other = tmp_path / "other.pem"
    other.write_bytes(b"")
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    fake = FakeFcm(project=PROJECT)
    await fake.start(tls=tls_context(certificate, key))
    try:
        # when a sender trusting the certificate is made, then one without it (the public CAs only)
        async with FcmSender(config_for(fake, fake_certificate=str(certificate))) as trusting:
            environment = os.environ["SSL_CERT_FILE"]
            monkeypatch.delenv("SSL_CERT_FILE")
            async with FcmSender(config_for(fake)) as untrusting:
                trusted = await trusting.send([Push("device-1", "Hi", "There")])
                untrusted = await untrusting.send([Push("device-1", "Hi", "There")])
    finally:
        await fake.stop()

    # then the process's variable is as it was, the first reaches the fake and the second refuses its certificate
    assert environment == str(other)
    assert [r.outcome for r in trusted] == [Outcome.SENT]
    assert [r.outcome for r in untrusted] == [Outcome.RETRY]
    assert untrusted[0].error is not None
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted[0].error
    assert fake.sent == 1
