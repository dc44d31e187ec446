"""A real HTTP receiver on 127.0.0.1 (asyncio streams, minimal HTTP/1.1) that records what webhooks deliver."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from tortoise.transactions import in_transaction

from loyalty import events
from loyalty.models import OutboxEvent


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes


# A behavior gets the request and its 0-based index; returns a status code, or "stall" to never answer.
Behavior = Callable[[Received, int], int | str]


@dataclass
class Receiver:
    behavior: Behavior = lambda request, index: 204
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    delay: float = 0.0  # seconds to wait before answering
    received_at: list[float] = field(default_factory=list)  # time.monotonic() of each request
    got_request: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        return [r.path for r in self.requests]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                method, path, _ = request_line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Received(method, path, headers, body)
                index = len(self.requests)
                self.requests.append(request)
                self.received_at.append(time.monotonic())
                self.got_request.set()
                outcome = self.behavior(request, index)
                if outcome == "stall":
                    await self._release.wait()
                    return
                if self.delay:
                    await asyncio.sleep(self.delay)
                writer.write(f"HTTP/1.1 {outcome} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def release(self) -> None:
        self._release.set()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A webhook receiver on a free port; set `receiver.behavior` to script its answers."""
    recv = Receiver()
    server = await asyncio.start_server(recv.handle, "127.0.0.1", 0)
    recv.port = server.sockets[0].getsockname()[1]
    try:
        yield recv
    finally:
        recv.release()
        server.close()
        for writer in list(recv._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await server.wait_closed()
        await asyncio.sleep(0)


async def emit_event(event_type: str, member_id: int | None = 1, **payload: object) -> OutboxEvent:
    """Write one outbox event the way the domain does: inside a transaction."""
    async with in_transaction() as conn:
        return await events.emit(conn, event_type, member_id=member_id, payload=dict(payload))
