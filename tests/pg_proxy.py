"""A TCP proxy between the app and PostgreSQL that a test can cut and restore: a real outage (refused connections,
connections dropped mid-session), not a mock of the driver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from loyalty.db import connect, disconnect


@dataclass
class PgProxy:
    """Listens on 127.0.0.1:`port` and pipes every connection to `target`. `cut()` closes the listening socket (new
    connections are refused) and drops every open connection; `restore()` listens on the same port again."""

    target: tuple[str, int]
    port: int = 0
    connections: int = 0  # connections accepted so far
    # Drop a connection when the client next writes to it (not before): the driver still believes it open, so the
    # failure lands on its next statement, e.g. inside a transaction's BEGIN.
    drop_on_write: bool = False
    _server: asyncio.Server | None = None
    _transports: set[asyncio.StreamWriter] = field(default_factory=set)

    def url(self, database_url: str) -> str:
        """`database_url` with its host and port replaced by the proxy's."""
        parts = urlsplit(database_url)
        user = parts.netloc.rpartition("@")[0]
        netloc = f"{user}@127.0.0.1:{self.port}" if user else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._transports):
            writer.transport.abort()
        self._transports.clear()
        await asyncio.sleep(0)

    async def restore(self) -> None:
        self.drop_on_write = False
        if self._server is None:
            await self.start()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        self._transports.update((client_writer, server_writer))

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await reader.read(65536):
                    if self.drop_on_write and writer is server_writer:
                        client_writer.transport.abort()
                        break
                    writer.write(data)
                    await writer.drain()
            writer.transport.abort()

        try:
            await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
        finally:
            self._transports.discard(client_writer)
            self._transports.discard(server_writer)


@contextlib.asynccontextmanager
async def proxied_database(database_url: str) -> AsyncIterator[PgProxy]:
    """Reconnect the ORM to `database_url` through a `PgProxy` for the block; afterwards directly again (the `db`
    fixture's teardown checks the ledger over its own connection)."""
    parts = urlsplit(database_url)
    proxy = PgProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    await proxy.start()
    await disconnect()
    await connect(proxy.url(database_url))
    try:
        yield proxy
    finally:
        await proxy.restore()
        await disconnect()
        await proxy.cut()
        await connect(database_url)
