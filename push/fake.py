"""A local fake of FCM's HTTP v1 send endpoint, for development, the demo, tests and the bench.

`POST /v1/projects/{project}/messages:send` with `Authorization: Bearer <token>` answers
`{"name": "projects/{project}/messages/<n>"}` for a well-formed v1 message, and FCM's error shape otherwise (the
`details` FCM sends, so firebase-admin raises the same exception types it raises against Google). It checks what
matters to us: the project, the bearer token, `message.token` (the only target we use), `notification`'s and
`data`'s values all strings, the `android` block (priority, `ttl` as `"<seconds>s"`, collapse key) and the `apns`
block (string headers: `apns-priority` 5 or 10, a numeric `apns-expiration`, `apns-collapse-id` ≤ 64 bytes).

Tests program failures per token (`unregistered`, `sender_mismatch`, `invalid_tokens`, or `fail(token, status,
times, retry_after=…)` for 429/500/503/401/400 and `DROP` to close the connection unanswered) and read what arrived
(`received`, or `sent_to(token)`). `GET /_fake/stats` and `POST /_fake/reset` serve a fake in another process.

The server is a bare asyncio protocol over httptools' C parser (HTTP/1.1, keep-alive, no ASGI): the bench sends
thousands of messages a second and the fake must not be what it measures. With a TLS certificate it speaks HTTP/2
instead (h2, ALPN), as FCM does: firebase-admin's httpx client then multiplexes one connection, as in production.
In the process: `await fake.start()`; as a process: `python -m push.fake --port 9098 [--project klubb-dev]
[--token …] [--no-record] [--tls-cert c.pem --tls-key k.pem]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import re
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httptools
import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DEFAULT_PORT = 9098  # push.config.DEVELOPMENT_FAKE_URL
DEFAULT_TOKEN = "klubb-development-fcm-token"  # noqa: S105 — push.config.FcmConfig.development_token's default
DROP = 0  # a programmed "status" that closes the connection without an answer (a network failure)

_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_TTL = re.compile(r"\d{1,10}(\.\d{1,9})?s")
_MESSAGE_KEYS = frozenset(
    {"name", "token", "fid", "topic", "condition", "notification", "data", "android", "apns", "webpush", "fcm_options"}
)
_NOTIFICATION_KEYS = frozenset({"title", "body", "image"})
_ANDROID_KEYS = frozenset(
    {
        "collapse_key",
        "priority",
        "ttl",
        "restricted_package_name",
        "data",
        "notification",
        "fcm_options",
        "direct_boot_ok",
    }
)
_APNS_KEYS = frozenset({"headers", "payload", "fcm_options"})
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REASONS = {
    200: b"OK",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    429: b"Too Many Requests",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


@dataclass(frozen=True)
class Failure:
    status: int  # 400, 401, 429, 500, 503… or DROP
    fcm_code: str | None = None  # FcmError.errorCode (QUOTA_EXCEEDED, THIRD_PARTY_AUTH_ERROR…); None: none sent
    retry_after: str | None = None  # a Retry-After header


@dataclass(frozen=True)
class Received:
    project: str
    message: Mapping[str, Any]  # the v1 `message` object as sent
    status: int  # what the fake answered


class Invalid(ValueError):
    """The request is not a v1 message we accept: a 400 with a BadRequest field violation."""

    def __init__(self, field_name: str, description: str) -> None:
        super().__init__(description)
        self.field_name = field_name


Answer = tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]


def _error(status: int, message: str, fcm_code: str | None = None, violation: str | None = None) -> bytes:
    details: list[dict[str, Any]] = []
    if fcm_code is not None:
        details.append({"@type": _FCM_ERROR, "errorCode": fcm_code})
    if violation is not None:
        details.append({"@type": _BAD_REQUEST, "fieldViolations": [{"field": violation, "description": message}]})
    error = {"code": status, "message": message, "status": _STATUS_NAMES.get(status, "UNKNOWN"), "details": details}
    return orjson.dumps({"error": error})


def _strings(value: object, where: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(where, f"Invalid value at '{where}': expected an object")
    for key, item in value.items():
        if not isinstance(item, str):
            raise Invalid(f"{where}.{key}", f"Invalid value at '{where}[{key}].value' (TYPE_STRING), {item!r}")


def validate(message: object) -> str:
    """The target token of a v1 message, or `Invalid` naming the first field FCM would refuse."""
    if not isinstance(message, dict):
        raise Invalid("message", "Invalid JSON payload: 'message' must be an object")
    if unknown := set(message) - _MESSAGE_KEYS:
        raise Invalid("message", f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r} at 'message'")
    targets = [key for key in ("token", "fid", "topic", "condition") if key in message]
    token = message.get(targets[0]) if targets else None
    if targets not in (["token"], ["fid"]) or not isinstance(token, str) or not token:
        # We address devices only: a registration token (or, firebase-admin 7.7's successor, an installation id).
        raise Invalid("message.token", "The message must have exactly one target: a registration token or fid")
    if "notification" in message:
        notification = message["notification"]
        _strings(notification, "message.notification")
        if unknown := set(notification) - _NOTIFICATION_KEYS:
            raise Invalid("message.notification", f"Unknown name {sorted(unknown)[0]!r} at 'message.notification'")
    if "data" in message:
        _strings(message["data"], "message.data")
    android = message.get("android")
    if android is not None:
        if not isinstance(android, dict) or (set(android) - _ANDROID_KEYS):
            raise Invalid("message.android", "Invalid value at 'message.android'")
        if android.get("priority") is not None and str(android["priority"]).upper() not in ("HIGH", "NORMAL"):
            raise Invalid(
                "message.android.priority", f"Invalid value at 'message.android.priority', {android['priority']!r}"
            )
        if android.get("ttl") is not None and not (isinstance(android["ttl"], str) and _TTL.fullmatch(android["ttl"])):
            raise Invalid(
                "message.android.ttl",
                "Invalid value at 'message.android.ttl' (type.googleapis.com/google.protobuf.Duration)",
            )
        if android.get("collapse_key") is not None and not isinstance(android["collapse_key"], str):
            raise Invalid("message.android.collapse_key", "Invalid value at 'message.android.collapse_key'")
    apns = message.get("apns")
    if apns is not None:
        if not isinstance(apns, dict) or (set(apns) - _APNS_KEYS):
            raise Invalid("message.apns", "Invalid value at 'message.apns'")
        headers = apns.get("headers", {})
        _strings(headers, "message.apns.headers")
        if headers.get("apns-priority", "10") not in ("5", "10"):
            raise Invalid("message.apns.headers", "apns-priority must be 5 or 10")
        if not headers.get("apns-expiration", "0").isdigit():
            raise Invalid("message.apns.headers", "apns-expiration must be a UNIX time in seconds")
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            raise Invalid("message.apns.headers", "apns-collapse-id must be at most 64 bytes")
        if "payload" in apns and not isinstance(apns["payload"], dict):
            raise Invalid("message.apns.payload", "Invalid value at 'message.apns.payload'")
    return token


@dataclass
class FakeFcm:
    project: str = "klubb-dev"
    token: str = DEFAULT_TOKEN
    record: bool = True
    latency_seconds: float = 0.0  # answer this much later (the bench's stand-in for the network)
    received: list[Received] = field(default_factory=list)
    unregistered: set[str] = field(default_factory=set)  # 404 UNREGISTERED
    sender_mismatch: set[str] = field(default_factory=set)  # 403 SENDER_ID_MISMATCH
    invalid_tokens: set[str] = field(default_factory=set)  # 400 "not a valid FCM registration token"
    failures: dict[str, deque[Failure]] = field(default_factory=dict)  # token → answers queued, one per request
    requests: int = 0  # every request that reached the send endpoint (or tried to)
    sent: int = 0  # messages answered 200
    h2_connections: int = 0  # connections served over HTTP/2 (TLS mode)
    url: str | None = None  # the base URL once started (`FcmConfig.fake_url`)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _server: asyncio.Server | None = None
    _connections: set[_Connection | _H2Connection] = field(default_factory=set)

    def fail(
        self, token: str, status: int, times: int = 1, fcm_code: str | None = None, retry_after: str | None = None
    ) -> None:
        """The next `times` requests for `token` are answered `status` (DROP: the connection closed unanswered)."""
        queue = self.failures.setdefault(token, deque())
        queue.extend([Failure(status, fcm_code, retry_after)] * times)

    def sent_to(self, token: str) -> list[Mapping[str, Any]]:
        """The messages answered 200 for a token, in arrival order."""
        return [
            r.message
            for r in self.received
            if r.status == 200 and token in (r.message.get("token"), r.message.get("fid"))
        ]

    def reset(self) -> None:
        self.received.clear()
        self.unregistered.clear()
        self.sender_mismatch.clear()
        self.invalid_tokens.clear()
        self.failures.clear()
        self.requests = self.sent = 0

    # The HTTP exchange, without the HTTP: (status, body, extra headers); status DROP closes the connection.
    def handle(self, method: bytes, path: str, headers: Mapping[bytes, bytes], body: bytes) -> Answer:
        if path == "/_fake/stats" and method == b"GET":
            stats = {"requests": self.requests, "sent": self.sent, "received": len(self.received)}
            return 200, orjson.dumps(stats), ()
        if path == "/_fake/reset" and method == b"POST":
            self.reset()
            return 200, b"{}", ()
        match = _SEND_PATH.fullmatch(path)
        if match is None:
            return 404, _error(404, f"no such endpoint {path}"), ()
        if method != b"POST":
            return 405, _error(405, "messages:send takes POST"), ()
        self.requests += 1
        if headers.get(b"authorization") != b"Bearer " + self.token.encode():
            return 401, _error(401, "Request had invalid authentication credentials. Expected OAuth 2 access token"), ()
        project = match.group(1)
        if project != self.project:
            return 404, _error(404, f"Requested entity was not found (project {project!r})"), ()
        try:
            request = orjson.loads(body)
            if not isinstance(request, dict) or set(request) - {"message", "validate_only"}:
                raise Invalid("", "Invalid JSON payload: only 'message' and 'validate_only' are known")
            message = request.get("message")
            token = validate(message)
        except orjson.JSONDecodeError:
            return 400, _error(400, "Invalid JSON payload received", violation=""), ()
        except Invalid as invalid:
            sent = request.get("message") if isinstance(request, dict) else None
            body = _error(400, str(invalid), violation=invalid.field_name)
            return self._answer(project, sent if isinstance(sent, dict) else {}, 400, body)
        assert isinstance(message, dict)  # validate() checked it
        return self._for_token(project, token, message)

    def _for_token(self, project: str, token: str, message: dict[str, Any]) -> Answer:
        queue = self.failures.get(token)
        if queue:
            failure = queue.popleft()
            if failure.status == DROP:
                return self._answer(project, message, DROP, b"")
            extra = ((b"retry-after", failure.retry_after.encode()),) if failure.retry_after else ()
            if failure.status == 400 and failure.fcm_code is None:
                body = _error(400, "Invalid value at 'message.data[0].value'", violation="message.data[0].value")
            else:
                body = _error(failure.status, f"programmed failure {failure.status}", failure.fcm_code)
            return self._answer(project, message, failure.status, body, extra)
        if token in self.unregistered:
            return self._answer(project, message, 404, _error(404, "Requested entity was not found.", "UNREGISTERED"))
        if token in self.sender_mismatch:
            return self._answer(project, message, 403, _error(403, "SenderId mismatch", "SENDER_ID_MISMATCH"))
        if token in self.invalid_tokens:
            body = _error(400, "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT")
            return self._answer(project, message, 400, body)
        self.sent += 1
        name = f"projects/{project}/messages/{next(self._ids)}"
        return self._answer(project, message, 200, b'{"name":"' + name.encode() + b'"}')

    def _answer(
        self,
        project: str,
        message: Mapping[str, Any],
        status: int,
        body: bytes,
        extra: tuple[tuple[bytes, bytes], ...] = (),
    ) -> Answer:
        if self.record:
            self.received.append(Received(project, message, status))
        return status, body, extra

    async def start(self, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None) -> str:
        """Serves on this loop; answers the base URL (`FcmConfig.fake_url`). With `tls` it speaks HTTP/2 over TLS
        (ALPN h2), as FCM does, so firebase-admin's client multiplexes one connection as in production."""
        loop = asyncio.get_running_loop()
        if tls is None:
            self._server = await loop.create_server(lambda: _Connection(self), host, port)
        else:
            tls.set_alpn_protocols(["h2"])
            self._server = await loop.create_server(lambda: _H2Connection(self), host, port, ssl=tls)
        bound = self._server.sockets[0].getsockname()
        self.url = f"{'https' if tls else 'http'}://{bound[0]}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections):
                if connection.transport is not None:  # Python 3.11 has no Server.close_clients()
                    connection.transport.close()
            await self._server.wait_closed()
            self._server = None


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: httptools calls back as it parses; answers go out in request order."""

    def __init__(self, fake: FakeFcm) -> None:
        self.fake = fake
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, _error(400, "malformed HTTP"), (), keep_alive=False)

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = httptools.parse_url(self.url).path.decode()
        status, body, extra = self.fake.handle(self.parser.get_method(), path, self.headers, b"".join(self.body))
        keep_alive = self.parser.should_keep_alive()
        if self.fake.latency_seconds:
            asyncio.get_running_loop().call_later(
                self.fake.latency_seconds, self._write, status, body, extra, keep_alive
            )
        else:
            self._write(status, body, extra, keep_alive)

    def _write(self, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...], keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if status == DROP:
            transport.close()
            return
        head = [
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json; charset=UTF-8\r\ncontent-length: %d\r\n"
            % (status, _REASONS.get(status, b"Error"), len(body))
        ]
        head.extend(name + b": " + value + b"\r\n" for name, value in extra)
        if not keep_alive:
            head.append(b"connection: close\r\n")
        transport.write(b"".join(head) + b"\r\n" + body)
        if not keep_alive:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fake._connections.discard(self)


class _H2Connection(asyncio.Protocol):
    """One HTTP/2 connection (h2's state machine): streams answered as each one ends, in any order."""

    def __init__(self, fake: FakeFcm) -> None:
        self.fake = fake
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, tuple[dict[bytes, bytes], list[bytes]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.fake._connections.add(self)
        self.fake.h2_connections += 1
        # Windows as large as Google's front ends grant (h2's default 64 KiB connection window is used up by ~100
        # requests in flight, and httpcore then stalled streams waiting for flow: timeouts in the bench).
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100,
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20,
            },
        )
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window((1 << 24) - 65535)
        transport.write(self.h2.data_to_send())

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.transport.write(self.h2.data_to_send())
            self.transport.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                self.streams[event.stream_id] = ({bytes(k): bytes(v) for k, v in event.headers or ()}, [])
            elif isinstance(event, h2.events.DataReceived) and event.stream_id in self.streams:
                self.streams[event.stream_id][1].append(event.data or b"")
                self.h2.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in self.streams:
                self._answer(event.stream_id, *self.streams.pop(event.stream_id))
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.transport.close()
                return
        self.transport.write(self.h2.data_to_send())

    def _answer(self, stream_id: int, headers: dict[bytes, bytes], body: list[bytes]) -> None:
        path = headers.get(b":path", b"/").split(b"?")[0].decode()
        status, payload, extra = self.fake.handle(headers.get(b":method", b""), path, headers, b"".join(body))
        if status == DROP:
            self.h2.reset_stream(stream_id)
            return
        head = [
            (b":status", str(status).encode()),
            (b"content-type", b"application/json; charset=UTF-8"),
            (b"content-length", str(len(payload)).encode()),
            *extra,
        ]
        self.h2.send_headers(stream_id, head)
        self.h2.send_data(stream_id, payload, end_stream=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fake._connections.discard(self)


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway certificate and key for `host` (an IP address or a name) in `directory`, for the HTTP/2 mode."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "klubb fake FCM")])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_file, key_file = directory / "fake-fcm.pem", directory / "fake-fcm-key.pem"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_file, key_file


def tls_context(certificate_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """The server side of the fake's HTTP/2 (clients trust the certificate through SSL_CERT_FILE)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate_file, key_file)
    return context


async def _serve(fake: FakeFcm, host: str, port: int, tls: ssl.SSLContext | None) -> None:
    url = await fake.start(host, port, tls)
    print(f"fake FCM for project {fake.project!r} at {url}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m push.fake", description="A local fake FCM v1 send endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--project", default="klubb-dev")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bearer token it accepts")
    parser.add_argument("--no-record", action="store_true", help="count messages without keeping them")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--tls-cert", help="PEM certificate: serve HTTP/2 over TLS (with --tls-key)")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args(argv)
    tls = tls_context(args.tls_cert, args.tls_key) if args.tls_cert and args.tls_key else None
    fake = FakeFcm(project=args.project, token=args.token, record=not args.no_record, latency_seconds=args.latency)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(fake, args.host, args.port, tls))


if __name__ == "__main__":
    main()
