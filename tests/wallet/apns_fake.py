"""A local APNs: HTTP/2 over TLS that requires a client certificate issued by the pass certificates' CA, records
every push (`POST /3/device/<token>`: its topic, headers and body) and answers as told per token (200 by default;
410 `Unregistered`, 500 …). Used by the tests and by `bench/wallet.py` (`python -m tests.wallet.apns_fake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypercorn.asyncio import serve
from hypercorn.config import Config

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Push:
    token: str
    topic: str
    headers: dict[str, str]
    body: bytes
    http_version: str


@dataclass
class ApnsFake:
    url: str
    ca_file: str  # the server certificate's CA (for the client's `verify`)
    pushes: list[Push] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)  # token → status (default 200)
    count_only: bool = False  # the bench: count, do not keep
    count: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path: str = scope["path"]
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["method"] != "POST" or not path.startswith("/3/device/"):
            await _answer(send, 404, {"reason": "BadPath"})
            return
        token = path.removeprefix("/3/device/")
        self.count += 1
        if not self.count_only:
            self.pushes.append(Push(token, headers.get("apns-topic", ""), headers, body, scope["http_version"]))
        status = self.answers.get(token, 200)
        if status == 200:
            await _answer(send, 200, None)
        elif status == 410:
            await _answer(send, 410, {"reason": "Unregistered", "timestamp": 1700000000000})
        else:
            await _answer(send, status, {"reason": "InternalServerError" if status >= 500 else "BadRequest"})


async def _answer(send: Send, status: int, body: dict[str, Any] | None) -> None:
    content = orjson.dumps(body) if body is not None else b""
    headers = [(b"apns-id", b"00000000-0000-0000-0000-000000000000")]
    if content:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _pem(obj: x509.Certificate) -> bytes:
    return obj.public_bytes(serialization.Encoding.PEM)


def server_tls(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it issues: (ca.pem, server.pem, server-key.pem)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "APNs fake CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "server.pem", directory / "server-key.pem")
    paths[0].write_bytes(_pem(ca))
    paths[1].write_bytes(_pem(server))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def fake_config(directory: Path, client_ca: Path, port: int) -> Config:
    _, certificate, key = server_tls(directory)
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = str(certificate)
    config.keyfile = str(key)
    config.ca_certs = str(client_ca)  # client certificates must be issued by this chain
    config.verify_mode = ssl.CERT_REQUIRED
    config.alpn_protocols = ["h2"]
    config.accesslog = None
    config.errorlog = None
    config.loglevel = "WARNING"
    config.h2_max_concurrent_streams = 1000
    config.keep_alive_max_requests = 2**62  # APNs keeps a connection for as long as the client wants
    return config


@contextlib.asynccontextmanager
async def running_fake(directory: Path, client_ca: Path) -> AsyncIterator[ApnsFake]:
    """The fake serving on 127.0.0.1 in this event loop until the block ends. `client_ca`: the CA bundle (PEM)
    that client certificates must chain to (the pass certificate's WWDR + root)."""
    port = free_port()
    config = fake_config(directory, client_ca, port)
    fake = ApnsFake(url=f"https://127.0.0.1:{port}", ca_file=str(directory / "ca.pem"))
    stop = asyncio.Event()
    server = asyncio.create_task(serve(fake, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        yield fake
    finally:
        stop.set()
        await server


def client_ca_bundle(wallet_directory: Path, into: Path) -> Path:
    """The development chain's WWDR stand-in and root in one PEM file (what the fake trusts for client certificates)."""
    into.parent.mkdir(parents=True, exist_ok=True)
    into.write_bytes((wallet_directory / "wwdr.pem").read_bytes() + (wallet_directory / "root-ca.pem").read_bytes())
    return into


async def _main(directory: Path, wallet_directory: Path) -> None:
    # `python -m tests.wallet.apns_fake <tls dir> <wallet dev dir>`: serve until stdin closes; print the URL, CA,
    # then the push count when done.
    bundle = client_ca_bundle(wallet_directory, directory / "client-ca.pem")
    async with running_fake(directory, bundle) as fake:
        fake.count_only = True
        print(fake.url, fake.ca_file, flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        print(fake.count, flush=True)


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), Path(sys.argv[2])))
