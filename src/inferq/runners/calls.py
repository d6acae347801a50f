"""A lean HTTP/1.1 client for the one call the dispatcher makes per job: ``POST /invocations``.

Model instances answer on loopback or the pod network, and every job is one call, so the
client's own CPU is a large part of what a completion costs. aiohttp's general machinery
(cookies, redirects, tracing, multidicts, timers) took ~85 µs of the server's CPU per call on
the benchmark machine; this client, ~20 µs (bench/PROFILES.md). It does only what the container
contract needs: keep-alive connections per instance, a request with a Content-Length, a response
framed by Content-Length, chunked encoding or the end of the connection, streamed both ways with
flow control.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools

#: idle keep-alive connections older than this are not reused: servers close theirs (uvicorn,
#: which serves inferq's model server, after 5 s), and a request sent as the server closes fails
IDLE_SECONDS = 4.0
#: idle connections kept per instance at most
MAX_IDLE = 256
#: instances remembered at most before those without idle connections are forgotten
MAX_POOLS = 64
CONNECT_TIMEOUT_SECONDS = 10.0
#: a response body buffered beyond this pauses reading until the consumer catches up
READ_HIGH_WATER = 1 << 20


class CallFailed(ConnectionError):
    """The instance could not be reached, or broke the exchange before its answer was whole."""


@dataclass(frozen=True, slots=True)
class _Origin:
    host: str
    port: int
    #: the Host header and the start of the request line's target
    authority: str
    base_path: str


class _Connection(asyncio.Protocol):
    """One TCP connection, one exchange at a time. Parser callbacks fill the current answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self.idle_since = 0.0
        #: set once the connection can carry nothing more (closed, failed, or framed by EOF)
        self.broken = False
        self._lost: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._can_write = True
        self._write_waiter: asyncio.Future[None] | None = None
        #: a request is being written: an answer that completes meanwhile leaves bytes unsent
        self._sending = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head_done = False
        self.complete = False
        self.received_any = False
        self._until_eof = False
        self._interim = False
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._reading_paused = False

    # -- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(CallFailed(f"the instance sent a malformed HTTP answer: {exc}"))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        self.resume_writing()  # a writer waiting for room must see the end
        if self.head_done and self._until_eof and not self.complete and exc is None:
            self.complete = True  # a body framed by the end of the connection
            self._wake()
            return
        if not self.complete:
            detail = f": {exc}" if exc else ""
            self._fail(CallFailed(f"the instance closed the connection{detail}"))

    def pause_writing(self) -> None:
        self._can_write = False

    def resume_writing(self) -> None:
        self._can_write = True
        waiter, self._write_waiter = self._write_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        previous = self.headers.get(key)
        self.headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if self.status < 200:  # 100 Continue and friends: the real answer follows
            self._interim = True
            return
        chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        self._until_eof = not chunked and "content-length" not in self.headers
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > READ_HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self.headers = {}
            self._interim = False
            return
        self.complete = True
        if not self._parser.should_keep_alive() or self._sending:
            self.broken = True  # what is left of our request would precede the next one
        self._wake()
        self.resume_writing()  # an answer before the whole request: stop sending it

    # -- used by Answer and Calls -----------------------------------------------------------

    async def send(self, head: bytes, body: bytes | AsyncIterator[bytes]) -> None:
        """Write the request. A streamed body stops early when the answer is already whole
        (a server may answer, e.g. 413, before it read everything)."""
        transport = self._transport()
        if isinstance(body, bytes):
            transport.write(head + body if len(body) < 65536 else head)
            if len(body) >= 65536:
                transport.write(body)
            return
        self._sending = True
        try:
            transport.write(head)
            async for chunk in body:
                self._check()
                if self.complete:
                    return
                transport.write(chunk)
                if not self._can_write:
                    self._write_waiter = self._loop.create_future()
                    await self._write_waiter
            self._check()
        finally:
            self._sending = False

    async def wait_head(self) -> None:
        while not self.head_done:
            await self._wait()

    async def next_chunk(self) -> bytes | None:
        """The next piece of the body; None once it is whole."""
        while not self._body:
            if self.complete:
                return None
            await self._wait()
        chunk = self._body.popleft()
        self._buffered -= len(chunk)
        if self._reading_paused and self._buffered <= READ_HIGH_WATER // 4 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return chunk

    def ready_for_next(self) -> None:
        self._reset()

    def close(self) -> None:
        self.broken = True
        if self.transport is not None:
            self.transport.abort()

    def _transport(self) -> asyncio.Transport:
        self._check()
        assert self.transport is not None
        return self.transport

    def _check(self) -> None:
        if self._lost is not None:
            raise self._lost

    async def _wait(self) -> None:
        self._check()
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        self._check()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: CallFailed) -> None:
        self.broken = True
        if self._lost is None:
            self._lost = error
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        if self.transport is not None:
            self.transport.abort()
        self.resume_writing()


@dataclass(eq=False)
class Answer:
    """The instance's answer: status and headers (names lower-case), the body as a stream."""

    status: int
    headers: dict[str, str]
    _connection: _Connection

    async def chunks(self) -> AsyncIterator[bytes]:
        while (chunk := await self._connection.next_chunk()) is not None:
            yield chunk

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


@dataclass(eq=False)
class _Pool:
    origin: _Origin
    idle: list[_Connection] = field(default_factory=list)

    def take(self, now: float) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if not connection.broken and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    def give_back(self, connection: _Connection, now: float) -> None:
        unsent = connection.transport is not None and connection.transport.get_write_buffer_size()
        if connection.broken or unsent or len(self.idle) >= MAX_IDLE:
            connection.close()
            return
        connection.ready_for_next()
        connection.idle_since = now
        self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class Calls:
    """Keep-alive connections to model instances, by base URL (``http://host:port[/prefix]``)."""

    def __init__(self) -> None:
        self._pools: dict[str, _Pool] = {}

    @contextlib.asynccontextmanager
    async def post(
        self,
        base_url: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterator[bytes],
        *,
        length: int | None = None,
    ) -> AsyncIterator[Answer]:
        """POST ``body`` to ``base_url + path``; the answer is open inside the block. A streamed
        body needs its ``length``. Raise ``CallFailed`` when the exchange breaks.

        A connection goes back to the pool only when the answer was read whole; leaving the
        block early (an error, a cancellation, an unread body) closes it."""
        pool = self._pool(base_url)
        size = len(body) if isinstance(body, bytes) else length
        if size is None:
            raise ValueError("a streamed body needs its length")
        head = _request_head(pool.origin, path, headers, size)
        connection = await self._exchange(pool, head, body)
        try:
            yield Answer(connection.status, connection.headers, connection)
        except BaseException:
            connection.close()
            raise
        if connection.complete:
            pool.give_back(connection, time.monotonic())
        else:
            connection.close()

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    async def _exchange(
        self, pool: _Pool, head: bytes, body: bytes | AsyncIterator[bytes]
    ) -> _Connection:
        connection = pool.take(time.monotonic())
        if connection is not None:
            try:
                return await _send(connection, head, body)
            except CallFailed:
                # the server may have closed this idle connection as we wrote: when nothing
                # came back, the request was not taken, and a body in memory can go again
                if connection.received_any or not isinstance(body, bytes):
                    raise
        connection = await _connect(pool.origin)
        return await _send(connection, head, body)

    def _pool(self, base_url: str) -> _Pool:
        pool = self._pools.get(base_url)
        if pool is None:
            if len(self._pools) >= MAX_POOLS:  # instances come and go: drop pools gone idle
                for url in [url for url, p in self._pools.items() if not p.idle]:
                    del self._pools[url]
            pool = self._pools[base_url] = _Pool(_origin(base_url))
        return pool


async def _send(
    connection: _Connection, head: bytes, body: bytes | AsyncIterator[bytes]
) -> _Connection:
    try:
        await connection.send(head, body)
        await connection.wait_head()
    except BaseException:
        connection.close()
        raise
    return connection


async def _connect(origin: _Origin) -> _Connection:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            _, connection = await loop.create_connection(_Connection, origin.host, origin.port)
    except TimeoutError:
        raise CallFailed(f"connecting to {origin.authority} timed out") from None
    except OSError as exc:
        raise CallFailed(f"cannot connect to {origin.authority}: {exc}") from exc
    return connection


def _origin(base_url: str) -> _Origin:
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"model instances are called over http://host:port, not {base_url!r}")
    port = parts.port or 80
    authority = parts.netloc.rsplit("@", 1)[-1]
    return _Origin(parts.hostname, port, authority, parts.path.rstrip("/"))


def _request_head(origin: _Origin, path: str, headers: Mapping[str, str], size: int) -> bytes:
    lines = [f"POST {origin.base_path}{path} HTTP/1.1", f"Host: {origin.authority}"]
    for name, value in headers.items():
        if name.lower() in ("content-length", "host", "transfer-encoding", "connection"):
            continue
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
            raise ValueError(f"header {name!r} holds a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {size}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
