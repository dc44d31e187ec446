"""Sending app pushes through firebase-admin's `messaging` (FCM HTTP v1), and what each answer means.

`FcmSender(config).send(pushes)` sends every `Push` through `messaging.send_each_async` (batches of `batch_size`,
100 by default and at most 500; `concurrency` batches in flight) and answers one `PushResult` per push, in order,
with an `Outcome` the caller acts on. Nothing here touches the database: the domain's consumer
(`push/consumer.py`) decides what to do with outcomes.

FCM has no idempotency key: a RETRY after a timeout or a dropped connection may follow a message FCM did deliver,
so sending is at least once; a `collapse_key` makes a repeat replace the first on the device.

The one seam (`_build_app`, `_point_at`), kept here and nowhere else: firebase-admin has no knob for the FCM
endpoint, so in development its messaging service's private `_fcm_url` (firebase-admin 7.7:
`messaging._get_messaging_service(app)._fcm_url`) is pointed at the local fake (`push/fake.py`), and its credential
is `_FixedToken`, a google-auth credential whose refresh does nothing (never a network call). The app is a named
app of its own, never the default one (Firebase Authentication uses that). `tests/push/test_seam.py` fails if an
upgrade removes either piece.

How FCM's answers are classified (https://firebase.google.com/docs/cloud-messaging/error-codes and
https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode):

- 200 `{"name": "projects/p/messages/…"}` → SENT (`message_name`): the caller records the delivery.
- 404 UNREGISTERED, 403 SENDER_ID_MISMATCH, and 400 INVALID_ARGUMENT whose details carry the FcmError code
  `INVALID_ARGUMENT` (FCM's "not a valid FCM registration token") → UNREGISTERED: the caller deletes the token.
- 400 INVALID_ARGUMENT with a `google.rpc.BadRequest` detail (a field of the message is wrong), other 4xx →
  INVALID_MESSAGE: dropped and logged (WARNING); sending it again would fail again.
- 429 QUOTA_EXCEEDED / RESOURCE_EXHAUSTED → RETRY with `retry_after` from its Retry-After header: the caller waits at
  least that long (the SDK does not retry 429).
- 500 INTERNAL, 503 UNAVAILABLE (after the SDK's own four retries with backoff), other 5xx, timeouts and connection
  errors → RETRY: the caller backs off.
- 401 UNAUTHENTICATED, THIRD_PARTY_AUTH_ERROR / APNS_AUTH_ERROR (the APNs key in Firebase), 403 PERMISSION_DENIED,
  404 without FCM's detail (no such project), a credential that cannot refresh → AUTH: our side is misconfigured;
  logged ERROR, tokens kept, retried later.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import itertools
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import firebase_admin
import google.auth.credentials
import google.auth.exceptions
import httpx
from firebase_admin import credentials, exceptions, messaging

from loyalty import clock
from push.config import CredentialSource, FcmConfig

log = logging.getLogger(__name__)

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"

# What a payload's data may carry: ids (`offer_id`, `message_id`…) and one deep link; nothing else, so no name,
# email, balance or text about the member can ride along. FCM reserves `from`, `gcm` and `google*` keys.
_DATA_KEY = re.compile(r"[a-z][a-z0-9_]{0,40}_id")
_ID_VALUE = re.compile(r"[A-Za-z0-9_:=.+/-]{1,128}")
DEEP_LINK_KEY = "deep_link"
_DEEP_LINK = re.compile(r"(klubb://|https://)[A-Za-z0-9._~:/?#\[\]@!$&'()*+,;=%-]{1,480}")
_ANALYTICS_LABEL = re.compile(r"[a-zA-Z0-9\-_.~%]{1,50}")  # FCM's own rule for fcm_options.analytics_label
MAX_COLLAPSE_KEY = 64  # apns-collapse-id's limit (bytes); Android's collapse_key takes it as is
MAX_TTL_SECONDS = 28 * 24 * 3600  # FCM keeps a message at most four weeks
MAX_TEXT = 1000  # title and body characters (the whole message must stay under FCM's 4 KB)


class Outcome(StrEnum):
    SENT = "sent"
    UNREGISTERED = "unregistered"  # the token is dead: delete it
    RETRY = "retry"  # FCM is busy or unreachable: try again later (after `retry_after`, if given)
    AUTH = "auth"  # our credentials (or the APNs key in Firebase) are wrong: alert, keep the token, retry later
    INVALID_MESSAGE = "invalid-message"  # the message itself is refused: drop it


@dataclass(frozen=True)
class Push:
    """One notification to one device. `data` holds ids and a deep link only (checked); `ttl_seconds` is how long
    FCM and APNs may keep it for an offline device (0: now or never); `urgent` wakes the device (Android priority
    high, apns-priority 10) — otherwise normal / 5; `collapse_key` makes a newer push replace an older one with the
    same key (Android collapse_key, apns-collapse-id)."""

    token: str
    title: str
    body: str
    data: Mapping[str, str] = field(default_factory=dict)
    collapse_key: str | None = None
    ttl_seconds: int | None = None
    urgent: bool = False
    analytics_label: str | None = None

    def __post_init__(self) -> None:
        if not self.token or len(self.token) > 4096 or not self.token.isascii() or not self.token.isprintable():
            raise ValueError("a push needs a device token (printable ASCII, at most 4096 characters)")
        for name, text in (("title", self.title), ("body", self.body)):
            if not text or len(text) > MAX_TEXT:
                raise ValueError(f"a push's {name} must be 1..{MAX_TEXT} characters")
        for key, value in self.data.items():
            if not isinstance(value, str):
                raise ValueError(f"push data {key!r} must be a string (FCM's data values are strings)")
            if key == DEEP_LINK_KEY:
                if not _DEEP_LINK.fullmatch(value):
                    raise ValueError(f"push data {key!r} must be a klubb:// or https:// link")
            elif not _DATA_KEY.fullmatch(key) or key.startswith("google"):
                raise ValueError(
                    f"push data may carry ids (`…_id`) and {DEEP_LINK_KEY!r} only, not {key!r}: no personal data"
                )
            elif not _ID_VALUE.fullmatch(value):
                raise ValueError(f"push data {key!r} must be an id, not free text")
        if self.collapse_key is not None and not (
            0 < len(self.collapse_key.encode()) <= MAX_COLLAPSE_KEY and self.collapse_key.isprintable()
        ):
            raise ValueError(f"a collapse key must be 1..{MAX_COLLAPSE_KEY} printable bytes")
        if self.ttl_seconds is not None and not 0 <= self.ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"a push's TTL must be 0..{MAX_TTL_SECONDS} seconds, not {self.ttl_seconds}")
        if self.analytics_label is not None and not _ANALYTICS_LABEL.fullmatch(self.analytics_label):
            raise ValueError("an analytics label is 1..50 of [a-zA-Z0-9-_.~%]")


@dataclass(frozen=True)
class PushResult:
    push: Push
    outcome: Outcome
    message_name: str | None = None  # SENT: FCM's `projects/<p>/messages/<id>`
    retry_after: float | None = None  # RETRY after a 429: seconds FCM asked us to wait
    error: str | None = None  # what FCM (or the network) said, for the log


def to_message(push: Push, now_epoch: int) -> messaging.Message:
    """The v1 message of a push: notification, data, and the Android and APNs delivery options."""
    android_ttl = push.ttl_seconds
    apns_headers = {"apns-priority": "10" if push.urgent else "5"}
    if push.collapse_key is not None:
        apns_headers["apns-collapse-id"] = push.collapse_key
    if push.ttl_seconds is not None:
        # APNs wants an absolute expiry; 0 means "deliver once, do not store", as Android's ttl 0 does.
        apns_headers["apns-expiration"] = "0" if push.ttl_seconds == 0 else str(now_epoch + push.ttl_seconds)
    return messaging.Message(
        token=push.token,
        notification=messaging.Notification(title=push.title, body=push.body),
        data=dict(push.data),
        android=messaging.AndroidConfig(
            collapse_key=push.collapse_key, priority="high" if push.urgent else "normal", ttl=android_ttl
        ),
        apns=messaging.APNSConfig(headers=apns_headers),
        fcm_options=messaging.FCMOptions(analytics_label=push.analytics_label) if push.analytics_label else None,
    )


def _error_body(error: exceptions.FirebaseError) -> dict[str, Any]:
    response = error.http_response
    if response is None:
        return {}
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return {}
    inner = body.get("error") if isinstance(body, dict) else None
    return inner if isinstance(inner, dict) else {}


def _fcm_error_code(error: exceptions.FirebaseError) -> str | None:
    for detail in _error_body(error).get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode")
            return code if isinstance(code, str) else None
    return None


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = error.http_response
    header = response.headers.get("Retry-After") if response is not None else None
    if not header:
        return None
    if header.strip().isdigit():
        return float(header.strip())
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _status(error: exceptions.FirebaseError) -> int | None:
    response = error.http_response
    return int(response.status_code) if response is not None else None


def classify(error: BaseException) -> tuple[Outcome, float | None]:
    """The outcome of one failed send (see the module's table) and, for a 429, how long FCM asked us to wait."""
    if isinstance(error, messaging.UnregisteredError | messaging.SenderIdMismatchError):
        return Outcome.UNREGISTERED, None
    if isinstance(error, messaging.ThirdPartyAuthError):
        return Outcome.AUTH, None
    if not isinstance(error, exceptions.FirebaseError):
        # Raised around the SDK's calls: a credential that cannot refresh is ours to fix, the rest is transient.
        if isinstance(error, google.auth.exceptions.RefreshError):
            return Outcome.AUTH, None
        return Outcome.RETRY, None
    if isinstance(error.cause, google.auth.exceptions.RefreshError):
        return Outcome.AUTH, None
    status = _status(error)
    if status == 429 or isinstance(error, messaging.QuotaExceededError | exceptions.ResourceExhaustedError):
        return Outcome.RETRY, _retry_after(error)
    if status is None or status >= 500:
        return Outcome.RETRY, None  # no answer (timeout, connection) or FCM's own fault
    if status == 401 or status == 403:
        return Outcome.AUTH, None
    if status == 404:
        return Outcome.AUTH, None  # 404 without FCM's UNREGISTERED detail: the project is wrong, not the token
    if status == 400 and _fcm_error_code(error) == "INVALID_ARGUMENT":
        return Outcome.UNREGISTERED, None  # FCM's answer for a malformed or foreign registration token
    return Outcome.INVALID_MESSAGE, None


def _describe(error: BaseException) -> str:
    if isinstance(error, exceptions.FirebaseError):
        fcm = _fcm_error_code(error)
        status = _status(error)
        return f"{status or '-'} {fcm or error.code}: {error}"
    return f"{type(error).__name__}: {error}"


class _FixedToken(google.auth.credentials.Credentials):
    """Development's credential: a fixed bearer token, valid forever; refreshing does nothing (no network)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def refresh(self, request: object) -> None:
        """Nothing to refresh: the fake FCM accepts this token."""


class _DevelopmentCredential(credentials.Base):
    def __init__(self, token: str) -> None:
        self._credential = _FixedToken(token)

    def get_credential(self) -> google.auth.credentials.Credentials:
        return self._credential


_app_names = itertools.count(1)


def _build_app(config: FcmConfig) -> firebase_admin.App:
    """A named firebase-admin app of our own (never the default app, which Firebase Authentication uses)."""
    credential: credentials.Base
    if config.credentials is CredentialSource.DEVELOPMENT:
        credential = _DevelopmentCredential(config.development_token)
    elif config.credentials is CredentialSource.SERVICE_ACCOUNT_FILE:
        credential = credentials.Certificate(config.service_account_file)
    else:
        credential = credentials.ApplicationDefault()
    options = {"projectId": config.project_id, "httpTimeout": config.timeout_seconds}
    return firebase_admin.initialize_app(credential, options, name=f"klubb-push-{next(_app_names)}")


@contextlib.contextmanager
def _trusting(certificate: str | None) -> Iterator[None]:
    """While the SDK builds its httpx client (the first `_get_messaging_service` call), SSL_CERT_FILE names the
    fake's certificate: httpx reads that documented variable once, when it makes the client's SSL context, so this
    client alone trusts the fake and nothing else of the process changes (restored at once)."""
    if certificate is None:
        yield
        return
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = certificate
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = previous


def _point_at(app: firebase_admin.App, url: str) -> None:
    """THE seam: the messaging service's private send URL (firebase-admin 7.7) aimed at the local fake."""
    service = messaging._get_messaging_service(app)
    if not isinstance(getattr(service, "_fcm_url", None), str):
        raise RuntimeError("firebase-admin's messaging service has no _fcm_url any more: update push/fcm.py's seam")
    service._fcm_url = url


class FcmSender:
    """Sends pushes through one firebase-admin app; `aclose()` (or `async with`) releases its connections."""

    def __init__(self, config: FcmConfig) -> None:
        self.config = config
        self.app = _build_app(config)
        if config.messages_url is not None:
            with _trusting(config.fake_certificate):
                _point_at(self.app, config.messages_url)
        self._batches = asyncio.Semaphore(config.concurrency)

    async def __aenter__(self) -> FcmSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def send(self, pushes: Sequence[Push]) -> list[PushResult]:
        """One result per push, in order. Batches of `config.batch_size` (≤ 500) go through `send_each_async`,
        `config.concurrency` of them at once. Never raises for what FCM answers; AUTH is logged at ERROR (once per
        call), INVALID_MESSAGE at WARNING."""
        now_epoch = int(clock.now().timestamp())
        size = self.config.batch_size
        batches = [pushes[i : i + size] for i in range(0, len(pushes), size)]
        answers = await asyncio.gather(*(self._send_batch(batch, now_epoch) for batch in batches))
        results = [result for answer in answers for result in answer]
        self._log(results)
        return results

    async def _send_batch(self, batch: Sequence[Push], now_epoch: int) -> list[PushResult]:
        async with self._batches:
            try:
                with warnings.catch_warnings():
                    # firebase-admin 7.7 deprecates `Message.token` for `fid` (Firebase installation ids); FCM v1
                    # still takes registration tokens, which is what the app registers (`deviceRegister`). Filtered
                    # as the SDK itself does for multicast tokens; moving to fids changes what the app sends us.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    messages = [to_message(push, now_epoch) for push in batch]  # built when sent: one batch held
                response = await messaging.send_each_async(messages, app=self.app)
            except ValueError as refused:
                # The SDK checks every message before sending any (`Push` should have refused it first).
                if len(batch) == 1:
                    return [PushResult(batch[0], Outcome.INVALID_MESSAGE, error=f"firebase-admin: {refused}")]
                response = None
            except (exceptions.FirebaseError, httpx.HTTPError, google.auth.exceptions.GoogleAuthError) as error:
                # The whole call failed (the SDK wraps whatever escaped its gather in UnknownError).
                outcome, retry_after = classify(
                    error.cause if isinstance(error, exceptions.UnknownError) and error.cause is not None else error
                )
                return [PushResult(push, outcome, None, retry_after, _describe(error)) for push in batch]
        if response is None:
            # One message made the SDK refuse the whole batch, nothing was sent: one by one, only that one is lost.
            singles = [await self._send_batch([push], now_epoch) for push in batch]
            return [result for single in singles for result in single]
        results = []
        for push, answer in zip(batch, response.responses, strict=True):
            if answer.success:
                results.append(PushResult(push, Outcome.SENT, message_name=answer.message_id))
            else:
                failure = answer.exception
                outcome, retry_after = classify(failure)
                results.append(PushResult(push, outcome, None, retry_after, _describe(failure)))
        return results

    def _log(self, results: list[PushResult]) -> None:
        auth = [r for r in results if r.outcome is Outcome.AUTH]
        if auth:
            log.error(
                "FCM refused our credentials for %d of %d pushes (tokens kept, retried later): %s",
                len(auth),
                len(results),
                auth[0].error,
            )
        for result in results:
            if result.outcome is Outcome.INVALID_MESSAGE:
                log.warning("FCM refused a push as invalid (dropped): %s", result.error)

    async def aclose(self) -> None:
        """Closes the SDK's HTTP client on this loop, then deletes the app. firebase-admin's own `close()` runs
        `asyncio.run(...)`, which cannot run inside a loop: it runs in a thread, on a client already closed."""
        service = messaging._get_messaging_service(self.app)
        await service._async_client.aclose()
        await asyncio.to_thread(firebase_admin.delete_app, self.app)
