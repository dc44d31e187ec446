"""Sending through the real firebase-admin SDK to the fake FCM: delivery, batching, the wire format, every error
class of push/fcm.py's table."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from firebase_admin import _retry, messaging

from loyalty.clock import FrozenClock
from push import fcm
from push.config import CredentialSource, FcmConfig
from push.fake import DROP, FakeFcm
from push.fcm import FcmSender, Outcome, Push, PushResult
from tests.conftest import START
from tests.push.conftest import PROJECT, config_for

EPOCH = int(START.timestamp())


def offer_push(token: str = "device-a", **overrides: Any) -> Push:  # noqa: S107 (a device token)
    values: dict[str, Any] = {
        "token": token,
        "title": "Double points",
        "body": "This weekend only",
        "data": {"offer_id": "offer-7", "deep_link": "klubb://offers/offer-7"},
    }
    values.update(overrides)
    return Push(**values)


async def test_a_push_reaches_the_fake_through_the_sdk(fake: FakeFcm, sender: FcmSender, clock: FrozenClock) -> None:
    # given an offer push with a collapse key, a day's TTL and an analytics label
    push = offer_push(collapse_key="offer-7", ttl_seconds=86400, analytics_label="offer-7")

    # when it is sent
    results = await sender.send([push])

    # then FCM's message name comes back and the fake received exactly this v1 message
    assert results == [PushResult(push, Outcome.SENT, message_name=f"projects/{PROJECT}/messages/1")]
    assert [r.message for r in fake.received] == [
        {
            "token": "device-a",
            "notification": {"title": "Double points", "body": "This weekend only"},
            "data": {"offer_id": "offer-7", "deep_link": "klubb://offers/offer-7"},
            "android": {"collapse_key": "offer-7", "priority": "normal", "ttl": "86400s"},
            "apns": {
                "headers": {
                    "apns-priority": "5",
                    "apns-collapse-id": "offer-7",
                    "apns-expiration": str(EPOCH + 86400),
                }
            },
            "fcm_options": {"analytics_label": "offer-7"},
        }
    ]


async def test_urgent_pushes_are_high_priority_and_plain_ones_carry_no_collapse_or_expiry(
    fake: FakeFcm, sender: FcmSender, clock: FrozenClock
) -> None:
    # given an urgent transactional push without TTL or collapse key, and one that must go now or never (TTL 0)
    urgent = offer_push("device-u", urgent=True)
    now_or_never = offer_push("device-n", ttl_seconds=0)

    # when both are sent
    results = await sender.send([urgent, now_or_never])

    # then the urgent one asks for high priority on both platforms and has no expiry; TTL 0 is 0 on both
    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    wire = {r.message["token"]: (r.message["android"], r.message["apns"]) for r in fake.received}
    assert wire == {
        "device-u": ({"priority": "high"}, {"headers": {"apns-priority": "10"}}),
        "device-n": (
            {"priority": "normal", "ttl": "0s"},
            {"headers": {"apns-priority": "5", "apns-expiration": "0"}},
        ),
    }


async def test_1200_pushes_go_in_three_calls_of_at_most_500(fake: FakeFcm, monkeypatch: pytest.MonkeyPatch) -> None:
    # given 1,200 devices, batches of the most send_each_async takes, and the SDK's send_each_async observed
    calls: list[int] = []
    real = messaging.send_each_async

    async def counted(messages: list[messaging.Message], dry_run: bool = False, app: Any = None) -> Any:
        calls.append(len(messages))
        return await real(messages, dry_run=dry_run, app=app)

    monkeypatch.setattr(messaging, "send_each_async", counted)
    pushes = [offer_push(f"device-{i:04d}") for i in range(1200)]

    # when they are sent (over HTTP/1.1 a batch's 500 requests wait for the pool's 100 connections, which the
    # request timeout counts: on a loaded machine 10 s were not always enough)
    async with FcmSender(config_for(fake, batch_size=500, timeout_seconds=120)) as sender:
        results = await sender.send(pushes)

    # then three calls of 500, 500 and 200 carried them, every one arrived once, and results keep the input order
    assert sorted(calls, reverse=True) == [500, 500, 200]
    assert sorted(r.message["token"] for r in fake.received) == [p.token for p in pushes]
    assert [r.push for r in results] == pushes
    assert {r.outcome for r in results} == {Outcome.SENT}
    assert len({r.message_name for r in results}) == 1200


async def test_nothing_to_send_makes_no_call(fake: FakeFcm, sender: FcmSender) -> None:
    assert await sender.send([]) == []
    assert fake.requests == 0


@pytest.mark.parametrize(
    ("program", "outcome"),
    [
        ("unregistered", Outcome.UNREGISTERED),
        ("sender_mismatch", Outcome.UNREGISTERED),
        ("invalid_tokens", Outcome.UNREGISTERED),
    ],
)
async def test_dead_tokens_are_unregistered(program: str, outcome: Outcome, fake: FakeFcm, sender: FcmSender) -> None:
    # given a token FCM reports as dead (404 UNREGISTERED, 403 SENDER_ID_MISMATCH, 400 invalid registration token)
    getattr(fake, program).add("dead")

    # when a push goes to it and to a live device
    results = await sender.send([offer_push("dead"), offer_push("alive")])

    # then the dead one is UNREGISTERED (the caller deletes the token), the live one is sent
    assert [(r.outcome, r.message_name) for r in results] == [
        (outcome, None),
        (Outcome.SENT, f"projects/{PROJECT}/messages/1"),
    ]


async def test_quota_exceeded_is_retried_later_with_its_retry_after_and_not_by_the_sdk(
    fake: FakeFcm, sender: FcmSender
) -> None:
    # given FCM answering 429 QUOTA_EXCEEDED with Retry-After: 30
    fake.fail("device-a", 429, fcm_code="QUOTA_EXCEEDED", retry_after="30")

    # when a push is sent
    [result] = await sender.send([offer_push()])

    # then it is RETRY after 30 s, and the SDK sent it once (it does not retry 429)
    assert (result.outcome, result.retry_after, fake.requests) == (Outcome.RETRY, 30.0, 1)
    assert result.error == "429 QUOTA_EXCEEDED: programmed failure 429"


async def test_a_retry_after_date_is_seconds_from_now(fake: FakeFcm, sender: FcmSender) -> None:
    fake.fail("device-a", 429, fcm_code="QUOTA_EXCEEDED", retry_after="Fri, 01 Jan 2100 00:00:00 GMT")

    [result] = await sender.send([offer_push()])

    assert result.outcome is Outcome.RETRY
    assert result.retry_after is not None
    assert result.retry_after > 365 * 24 * 3600


@pytest.fixture
def sdk_backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The SDK's retry sleeps, recorded instead of slept (0 + 1 + 2 + 4 s for a persistent 5xx)."""
    slept: list[float] = []

    async def record(self: _retry.HttpxRetry) -> None:
        slept.append(self.get_backoff_time())

    monkeypatch.setattr(_retry.HttpxRetry, "sleep_for_backoff", record)
    return slept


@pytest.mark.parametrize("status", [500, 503])
async def test_a_passing_server_error_is_retried_by_the_sdk(
    status: int, fake: FakeFcm, sender: FcmSender, sdk_backoffs: list[float]
) -> None:
    # given FCM failing once with a 500 or 503
    fake.fail("device-a", status)

    # when a push is sent
    [result] = await sender.send([offer_push()])

    # then the SDK's own retry delivered it on the second request
    assert (result.outcome, fake.requests, sdk_backoffs) == (Outcome.SENT, 2, [0.0])


@pytest.mark.parametrize("status", [500, 503])
async def test_a_lasting_server_error_is_retry(
    status: int, fake: FakeFcm, sender: FcmSender, sdk_backoffs: list[float]
) -> None:
    # given FCM failing every time
    fake.fail("device-a", status, times=10)

    # when a push is sent
    [result] = await sender.send([offer_push()])

    # then the SDK tried five times with its backoff, and the push is RETRY without a server-given delay
    assert (result.outcome, result.retry_after, fake.requests) == (Outcome.RETRY, None, 5)
    assert sdk_backoffs == [0.0, 1.0, 2.0, 4.0]


async def test_a_bad_gateway_and_a_dropped_connection_are_retry(fake: FakeFcm, sender: FcmSender) -> None:
    # given a 502 (not retried by the SDK) and a connection closed without an answer
    fake.fail("gateway", 502)
    fake.fail("dropped", DROP)

    results = await sender.send([offer_push("gateway"), offer_push("dropped")])

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
    assert fake.requests == 2


async def test_an_unreachable_fcm_is_retry(fake: FakeFcm) -> None:
    # given the fake stopped (nothing listens on its port)
    url = fake.url
    await fake.stop()
    async with FcmSender(config_for(fake, fake_url=url, timeout_seconds=2)) as sender:
        # when a push is sent
        [result] = await sender.send([offer_push()])

    # then it is RETRY (a connection error), not a crash
    assert result.outcome is Outcome.RETRY
    assert result.error is not None
    assert result.error.startswith("- UNAVAILABLE: Failed to establish a connection")


async def test_an_apns_auth_error_alerts_and_keeps_the_token(
    fake: FakeFcm, sender: FcmSender, caplog: pytest.LogCaptureFixture
) -> None:
    # given FCM answering 401 THIRD_PARTY_AUTH_ERROR (the APNs key in Firebase is wrong) on every attempt; the
    # SDK's auth flow refreshes the credential and resends twice on a 401
    fake.fail("device-a", 401, times=3, fcm_code="THIRD_PARTY_AUTH_ERROR")

    # when a push is sent
    with caplog.at_level(logging.ERROR, logger="push.fcm"):
        [result] = await sender.send([offer_push()])

    # then it is AUTH, logged once at ERROR
    assert (result.outcome, fake.requests) == (Outcome.AUTH, 3)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "ERROR",
            "FCM refused our credentials for 1 of 1 pushes (tokens kept, retried later): "
            "401 THIRD_PARTY_AUTH_ERROR: programmed failure 401",
        )
    ]


async def test_our_wrong_credentials_and_a_wrong_project_are_auth(fake: FakeFcm) -> None:
    # given a sender with a token the fake does not accept, and one for another project
    wrong_token = config_for(fake, development_token="stolen")
    wrong_project = config_for(fake, project_id="someone-else")
    for config in (wrong_token, wrong_project):
        async with FcmSender(config) as sender:
            # when each sends a push
            [result] = await sender.send([offer_push()])

        # then it is AUTH (our configuration), never UNREGISTERED
        assert result.outcome is Outcome.AUTH, config
    assert fake.sent == 0


async def test_a_message_fcm_refuses_is_dropped_and_logged(
    fake: FakeFcm, sender: FcmSender, caplog: pytest.LogCaptureFixture
) -> None:
    # given FCM refusing a field of the message (400 with a BadRequest field violation, no FcmError code)
    fake.fail("device-a", 400)

    with caplog.at_level(logging.WARNING, logger="push.fcm"):
        [result] = await sender.send([offer_push()])

    assert result.outcome is Outcome.INVALID_MESSAGE
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "FCM refused a push as invalid (dropped): 400 INVALID_ARGUMENT: Invalid value at 'message.data[0].value'",
        )
    ]


async def test_one_batch_mixes_outcomes_in_order(fake: FakeFcm, sender: FcmSender) -> None:
    fake.unregistered.add("b")
    fake.fail("c", 429, fcm_code="QUOTA_EXCEEDED", retry_after="5")

    results = await sender.send([offer_push(t) for t in ("a", "b", "c", "d")])

    assert [(r.push.token, r.outcome) for r in results] == [
        ("a", Outcome.SENT),
        ("b", Outcome.UNREGISTERED),
        ("c", Outcome.RETRY),
        ("d", Outcome.SENT),
    ]


@pytest.mark.parametrize(
    ("data", "refusal"),
    [
        ({"email": "anna@example.com"}, "push data may carry ids (`…_id`) and 'deep_link' only, not 'email'"),
        ({"first_name": "Anna"}, "push data may carry ids (`…_id`) and 'deep_link' only, not 'first_name'"),
        ({"points_balance": "1200"}, "not 'points_balance'"),
        ({"google_id": "1"}, "not 'google_id'"),
        ({"member_id": "Anna Svensson"}, "push data 'member_id' must be an id, not free text"),
        ({"deep_link": "javascript:alert(1)"}, "push data 'deep_link' must be a klubb:// or https:// link"),
        ({"offer_id": 7}, "push data 'offer_id' must be a string"),
    ],
)
def test_a_payload_carries_ids_and_a_deep_link_only(data: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        offer_push(data=data)


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"token": ""}, "a push needs a device token"),
        ({"token": "tok en\n"}, "a push needs a device token"),
        ({"title": ""}, "a push's title must be 1..1000 characters"),
        ({"body": "x" * 1001}, "a push's body must be 1..1000 characters"),
        ({"collapse_key": "k" * 65}, "a collapse key must be 1..64 printable bytes"),
        ({"collapse_key": ""}, "a collapse key must be 1..64 printable bytes"),
        ({"ttl_seconds": -1}, "a push's TTL must be 0..2419200 seconds, not -1"),
        ({"ttl_seconds": 2419201}, "a push's TTL must be 0..2419200 seconds, not 2419201"),
        ({"analytics_label": "has space"}, "an analytics label is 1..50"),
    ],
)
def test_a_push_refuses_bad_fields(overrides: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal.replace("(", r"\(").replace(".", r"\.")):
        offer_push(**overrides)


def test_the_limits_themselves_are_accepted() -> None:
    push = offer_push(collapse_key="k" * 64, ttl_seconds=2419200, body="x" * 1000, analytics_label="a" * 50)
    assert (push.collapse_key, push.ttl_seconds) == ("k" * 64, 2419200)


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"batch_size": 0}, "FCM batch size must be 1..500, not 0"),
        ({"batch_size": 501}, "FCM batch size must be 1..500, not 501"),
        ({"concurrency": 0}, "FCM concurrency must be at least 1, not 0"),
        ({"fake_url": None}, "development FCM needs the fake's http(s) URL, not None"),
        ({"fake_url": "ftp://x"}, "development FCM needs the fake's http(s) URL, not 'ftp://x'"),
        ({"project_id": ""}, "FCM needs a project id"),
        ({"timeout_seconds": 0}, "FCM timeout must be positive, not 0"),
        ({"fake_certificate": "/tmp/fake.pem"}, "a fake FCM certificate needs the fake's https URL"),  # noqa: S108
    ],
)
def test_the_config_refuses_what_cannot_work(fake: FakeFcm, values: dict[str, Any], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        config_for(fake, **values)


def test_a_fake_url_is_for_development_only() -> None:
    with pytest.raises(ValueError, match="a fake FCM URL or certificate is for development credentials only"):
        FcmConfig("p", CredentialSource.APPLICATION_DEFAULT, fake_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="a fake FCM URL or certificate is for development credentials only"):
        FcmConfig("p", CredentialSource.APPLICATION_DEFAULT, fake_certificate="/tmp/fake.pem")  # noqa: S108


async def test_a_message_the_sdk_refuses_costs_only_itself(
    fake: FakeFcm, sender: FcmSender, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a push the SDK would refuse before sending anything (its batch as a whole raises ValueError)
    real = fcm.to_message

    def refusing(push: Push, now_epoch: int) -> messaging.Message:
        if push.token == "odd":
            raise ValueError("Message.android.ttl must be non-negative.")
        return real(push, now_epoch)

    monkeypatch.setattr(fcm, "to_message", refusing)

    # when it goes in one batch with two others
    with caplog.at_level(logging.WARNING, logger="push.fcm"):
        results = await sender.send([offer_push("a"), offer_push("odd"), offer_push("b")])

    # then the others are sent (one by one) and only it is dropped as invalid, logged
    assert [(r.push.token, r.outcome) for r in results] == [
        ("a", Outcome.SENT),
        ("odd", Outcome.INVALID_MESSAGE),
        ("b", Outcome.SENT),
    ]
    assert results[1].error == "firebase-admin: Message.android.ttl must be non-negative."
    assert sorted(r.message["token"] for r in fake.received) == ["a", "b"]
    assert len(caplog.records) == 1
