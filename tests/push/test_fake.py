"""The fake FCM v1 server: what it accepts, what it refuses (in FCM's error shape), and running it as a process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import httpx
import orjson
import pytest

from push.fake import DEFAULT_TOKEN, FakeFcm

AUTH = {b"authorization": b"Bearer " + DEFAULT_TOKEN.encode()}
PATH = "/v1/projects/klubb-dev/messages:send"
VALID: dict[str, Any] = {
    "token": "device-a",
    "notification": {"title": "Hi", "body": "There"},
    "data": {"offer_id": "7"},
    "android": {"priority": "high", "ttl": "60s", "collapse_key": "offer-7"},
    "apns": {"headers": {"apns-priority": "10", "apns-expiration": "1700000000", "apns-collapse-id": "offer-7"}},
}


def _send(fake: FakeFcm, message: object, headers: dict[bytes, bytes] = AUTH) -> tuple[int, dict[str, Any]]:
    status, body, _ = fake.handle(b"POST", PATH, headers, orjson.dumps({"message": message}))
    return status, json.loads(body)


def test_a_valid_message_is_named_and_recorded() -> None:
    fake = FakeFcm()
    assert _send(fake, VALID) == (200, {"name": "projects/klubb-dev/messages/1"})
    assert [(r.message, r.status) for r in fake.received] == [(VALID, 200)]


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({**VALID, "data": {"points": 12}}, "message.data.points"),
        ({**VALID, "notification": {"title": 1}}, "message.notification.title"),
        ({**VALID, "notification": {"subtitle": "x"}}, "message.notification"),
        ({**VALID, "token": None}, "message.token"),
        ({**VALID, "topic": "all"}, "message.token"),
        ({**VALID, "email": "a@b.c"}, "message"),
        ({**VALID, "android": {"priority": "urgent"}}, "message.android.priority"),
        ({**VALID, "android": {"ttl": 60}}, "message.android.ttl"),
        ({**VALID, "apns": {"headers": {"apns-priority": "7"}}}, "message.apns.headers"),
        ({**VALID, "apns": {"headers": {"apns-expiration": "tomorrow"}}}, "message.apns.headers"),
        ({**VALID, "apns": {"headers": {"apns-collapse-id": "k" * 65}}}, "message.apns.headers"),
    ],
)
def test_a_malformed_message_is_a_400_naming_the_field(message: dict[str, Any], field: str) -> None:
    status, body = _send(FakeFcm(), message)
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    assert [d["fieldViolations"][0]["field"] for d in body["error"]["details"]] == [field]


def test_without_the_bearer_token_it_is_401() -> None:
    fake = FakeFcm()
    assert _send(fake, VALID, headers={})[0] == 401
    assert _send(fake, VALID, headers={b"authorization": b"Bearer other"})[0] == 401
    assert fake.sent == 0


def test_another_project_and_another_path_are_404() -> None:
    fake = FakeFcm()
    status, _, _ = fake.handle(b"POST", "/v1/projects/other/messages:send", AUTH, orjson.dumps({"message": VALID}))
    assert status == 404
    assert fake.handle(b"POST", "/v1/elsewhere", AUTH, b"{}")[0] == 404
    assert fake.handle(b"GET", PATH, AUTH, b"")[0] == 405


def test_programmed_failures_are_answered_once_each_in_order() -> None:
    # given a token that fails with 429 (Retry-After 10), then 503, then works
    fake = FakeFcm()
    fake.fail("device-a", 429, fcm_code="QUOTA_EXCEEDED", retry_after="10")
    fake.fail("device-a", 503)

    answers = [fake.handle(b"POST", PATH, AUTH, orjson.dumps({"message": VALID})) for _ in range(3)]

    assert [(status, extra) for status, _, extra in answers] == [
        (429, ((b"retry-after", b"10"),)),
        (503, ()),
        (200, ()),
    ]
    assert json.loads(answers[0][1])["error"]["details"] == [
        {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"}
    ]


def test_reset_forgets_everything() -> None:
    fake = FakeFcm()
    fake.unregistered.add("device-a")
    _send(fake, VALID)
    assert fake.handle(b"POST", "/_fake/reset", {}, b"")[0] == 200
    assert (fake.received, fake.unregistered, fake.requests) == ([], set(), 0)
    assert _send(fake, VALID)[0] == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_runs_as_a_process() -> None:
    # given `python -m push.fake` on a free port
    port = _free_port()
    command = [sys.executable, "-m", "push.fake", "--port", str(port), "--project", "demo"]
    with subprocess.Popen(command, stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().decode() == f"fake FCM for project 'demo' at http://127.0.0.1:{port}\n"
            # when a message is posted to it over HTTP
            headers = {"authorization": f"Bearer {DEFAULT_TOKEN}"}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as client:
                sent = client.post("/v1/projects/demo/messages:send", json={"message": VALID})
                stats = client.get("/_fake/stats")
        finally:
            process.terminate()
    # then it answered like FCM and counted it
    assert (sent.status_code, sent.json()) == (200, {"name": "projects/demo/messages/1"})
    assert stats.json() == {"requests": 1, "sent": 1, "received": 1}
