"""A real websocket client for `memberUpdated` (the `websockets` library over TCP) and an in-process server for it
(uvicorn in the test's own event loop, no lifespan: the `db` fixture holds the connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.server import free_port

SUBSCRIPTION = (Path(__file__).parents[2] / "mobile-client-mock" / "operations" / "MemberUpdated.graphql").read_text()
PROTOCOL = "graphql-transport-ws"


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """`app` on a free local port; yields the websocket URL of /graphql."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", ws="websockets-sansio")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


class Socket:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def receive(self, seconds: float = 5.0) -> dict[str, Any]:
        """The next message that is not the server's ping."""
        while True:
            frame = await asyncio.wait_for(self.ws.recv(), seconds)
            assert isinstance(frame, str), "the protocol's messages are text frames"
            message: dict[str, Any] = json.loads(frame)
            if message.get("type") != "ping":
                return message

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await self.receive(seconds)
        except TimeoutError:
            return True
        return False

    async def closed(self, seconds: float = 5.0) -> tuple[int | None, str | None]:
        """The close code and reason once the server closes (messages before it are skipped)."""
        try:
            async with asyncio.timeout(seconds):
                while True:
                    await self.ws.recv()
        except ConnectionClosed as closed:
            return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (None, None)

    async def subscribe(self, operation_id: str = "1") -> dict[str, Any]:
        """Subscribe to memberUpdated; the first message's payload (the state now)."""
        await self.send({"id": operation_id, "type": "subscribe", "payload": {"query": SUBSCRIPTION}})
        return await self.next(operation_id)

    async def next(self, operation_id: str = "1", seconds: float = 5.0) -> dict[str, Any]:
        message = await self.receive(seconds)
        assert (message["type"], message["id"]) == ("next", operation_id), message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def aclose(self) -> None:
        await self.ws.close()


@asynccontextmanager
async def socket(url: str, protocols: tuple[str, ...] = (PROTOCOL,)) -> AsyncIterator[Socket]:
    async with connect(url, subprotocols=list(protocols) or None, open_timeout=5) as ws:  # type: ignore[arg-type]
        yield Socket(ws)


@asynccontextmanager
async def member_socket(url: str, token: str) -> AsyncIterator[Socket]:
    """A socket acknowledged for the member of `token`."""
    async with socket(url) as ws:
        await ws.send({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
        assert await ws.receive() == {"type": "connection_ack"}
        yield ws


def update(changes: list[str], available: int, pending: int, lifetime: int, tier: str = "Member") -> dict[str, Any]:
    """A memberUpdated payload in the test program (tiers Member 0, Silver 500, Gold 2000; points metric)."""
    thresholds = {"Member": 0, "Silver": 500, "Gold": 2000}
    names = list(thresholds)
    following = names[names.index(tier) + 1] if tier != "Gold" else None
    qualifying = lifetime
    span = thresholds[following] - thresholds[tier] if following else 0
    return {
        "data": {
            "memberUpdated": {
                "changes": changes,
                "points": {"available": available, "pending": pending, "lifetimeEarned": lifetime},
                "tier": {
                    "current": {"name": tier},
                    "next": {"name": following} if following else None,
                    "qualifyingValue": qualifying,
                    "remainingToNext": max(0, thresholds[following] - qualifying) if following else None,
                    "progress": round(min(1.0, (qualifying - thresholds[tier]) / span), 4) if following else 1.0,
                },
            }
        }
    }
