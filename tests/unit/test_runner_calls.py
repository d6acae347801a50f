"""The lean HTTP/1.1 client for model instances, against real sockets: scripted raw servers for
the framings and failures, and an aiohttp server for ordinary traffic."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from tests.helpers.web import serving

from inferq.runners import calls as calls_module
from inferq.runners.calls import CallFailed, Calls

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, list[int]]]:
    """A loopback server running ``handler`` per connection; yields its URL and a list that
    grows by one per accepted connection."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await handler(reader, writer)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", accepted


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """(head, body) of the next request, or None at the end of the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def answer(body: bytes, *extra: bytes) -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), headers, body)


async def echo_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while (request := await read_request(reader)) is not None:
        writer.write(answer(request[1]))
        await writer.drain()


async def post(client: Calls, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    async with client.post(url, "/invocations", {"Content-Type": "text/plain"}, body) as got:
        return got.status, await got.read()


async def test_sequential_calls_share_one_kept_alive_connection() -> None:
    peers: set[object] = set()

    async def invocations(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(body=await request.read(), content_type="application/json")

    app = web.Application()
    app.router.add_post("/invocations", invocations)
    client = Calls()
    async with serving(app) as url:
        for n in range(5):
            assert await post(client, url, b'{"n": %d}' % n) == (200, b'{"n": %d}' % n)
    client.close()
    assert len(peers) == 1


async def test_the_request_carries_the_headers_and_its_length() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await read_request(reader)
        assert request is not None
        seen.append(request[0])
        writer.write(answer(b"ok"))
        await writer.drain()

    async with raw_server(handler) as (url, _):
        client = Calls()
        headers = {"X-Amzn-SageMaker-Inference-Id": "abc", "Content-Length": "999"}
        async with client.post(url + "/prefix/", "/invocations", headers, b"12345") as got:
            assert await got.read() == b"ok"
        client.close()
    lines = seen[0].split(b"\r\n")
    assert lines[0] == b"POST /prefix/invocations HTTP/1.1"
    assert b"X-Amzn-SageMaker-Inference-Id: abc" in lines
    assert b"Content-Length: 5" in lines  # the real length, not the caller's
    assert b"Content-Length: 999" not in lines


async def test_a_streamed_body_of_known_length_arrives_whole() -> None:
    payload = os.urandom(5 << 20)

    async def invocations(request: web.Request) -> web.Response:
        data = await request.read()
        return web.Response(text=hashlib.sha256(data).hexdigest())

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 1 << 18):
            yield payload[start : start + (1 << 18)]

    app = web.Application(client_max_size=10 << 20)
    app.router.add_post("/invocations", invocations)
    client = Calls()
    async with (
        serving(app) as url,
        client.post(url, "/invocations", {}, pieces(), length=len(payload)) as got,
    ):
        assert (await got.read()).decode() == hashlib.sha256(payload).hexdigest()
    client.close()


async def test_a_streamed_body_needs_its_length() -> None:
    async def nothing() -> AsyncIterator[bytes]:
        yield b""

    with pytest.raises(ValueError, match="length"):
        async with Calls().post("http://127.0.0.1:1", "/invocations", {}, nothing()):
            pass


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
            b"hello world",
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"after interim"), b"after interim"),
    ],
    ids=["chunked", "interim-100"],
)
async def test_answer_framings(raw: bytes, expected: bytes) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            writer.write(raw)
            await writer.drain()

    async with raw_server(handler) as (url, accepted):
        client = Calls()
        for _ in range(2):
            assert await post(client, url) == (200, expected)
        client.close()
    assert len(accepted) == 1  # both framings leave the connection reusable


async def test_an_answer_framed_by_the_end_of_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with raw_server(handler) as (url, accepted):
        client = Calls()
        assert await post(client, url) == (200, b"until the end")
        assert await post(client, url) == (200, b"until the end")
        client.close()
    assert len(accepted) == 2


async def test_connection_close_is_honoured() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"bye", b"Connection: close"))
        await writer.drain()
        await asyncio.sleep(0.5)  # a server slow to close must not be reused

    async with raw_server(handler) as (url, accepted):
        client = Calls()
        assert await post(client, url) == (200, b"bye")
        assert await post(client, url) == (200, b"bye")
        client.close()
    assert len(accepted) == 2


async def test_an_idle_connection_the_server_closed_is_replaced_without_failing() -> None:
    async def one_answer_then_silent_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(answer(b"once"))
        await writer.drain()

    async with raw_server(one_answer_then_silent_close) as (url, accepted):
        client = Calls()
        assert await post(client, url) == (200, b"once")
        await asyncio.sleep(0.05)
        assert await post(client, url) == (200, b"once")
        client.close()
    assert len(accepted) == 2


async def test_idle_connections_past_the_keep_alive_window_are_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls_module, "IDLE_SECONDS", 0.0)
    async with raw_server(echo_forever) as (url, accepted):
        client = Calls()
        await post(client, url)
        await post(client, url)
        client.close()
    assert len(accepted) == 2


async def test_headers_are_read_case_insensitively_and_repeats_joined() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"", b"Content-TYPE: text/csv", b"X-Thing: a", b"x-thing: b"))
        await writer.drain()

    async with raw_server(handler) as (url, _):
        client = Calls()
        async with client.post(url, "/invocations", {}, b"") as got:
            assert got.headers["content-type"] == "text/csv"
            assert got.headers["x-thing"] == "a, b"
        client.close()


async def test_a_server_dying_mid_answer_is_a_call_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()

    async with raw_server(handler) as (url, _):
        client = Calls()
        with pytest.raises(CallFailed, match="closed the connection"):
            await post(client, url)
        client.close()


async def test_a_malformed_answer_is_a_call_failure() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(1)

    async with raw_server(handler) as (url, _):
        client = Calls()
        with pytest.raises(CallFailed, match="malformed"):
            await post(client, url)
        client.close()


async def test_an_unreachable_instance_is_a_call_failure() -> None:
    async with raw_server(echo_forever) as (url, _):
        pass  # closed again: nothing listens on its port now
    with pytest.raises(CallFailed, match="cannot connect"):
        await post(Calls(), url)


async def test_leaving_before_the_answer_is_read_closes_the_connection() -> None:
    async def partial_first(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(accepted) == 1:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
            await writer.drain()
            await reader.read()  # until the client hangs up
            return
        await echo_forever(reader, writer)

    async with raw_server(partial_first) as (url, accepted):
        client = Calls()
        async with client.post(url, "/invocations", {}, b"first"):
            pass  # body never read
        assert await post(client, url, b"next") == (200, b"next")
        client.close()
    assert len(accepted) == 2


async def test_a_timeout_mid_answer_cancels_cleanly() -> None:
    async def stall_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await asyncio.sleep(5)

    async with raw_server(stall_once) as (url, accepted):
        client = Calls()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await post(client, url)
        client.close()
    assert len(accepted) == 1


async def test_a_large_answer_read_slowly_is_streamed_with_backpressure() -> None:
    payload = os.urandom(16 << 20)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(payload))
        await writer.drain()

    async with raw_server(handler) as (url, _):
        client = Calls()
        received = bytearray()
        most_buffered = 0
        async with client.post(url, "/invocations", {}, b"") as got:
            async for chunk in got.chunks():
                received += chunk
                most_buffered = max(most_buffered, got._connection._buffered)
                await asyncio.sleep(0)
        client.close()
    assert bytes(received) == payload
    # reading pauses past the high-water mark: what waits is bounded by it plus a socket read
    assert most_buffered <= calls_module.READ_HIGH_WATER + (1 << 20)


def test_header_values_with_line_breaks_are_refused() -> None:
    origin = calls_module._origin("http://127.0.0.1:8080")
    with pytest.raises(ValueError, match="line break"):
        calls_module._request_head(origin, "/invocations", {"X-A": "b\r\nX-Evil: 1"}, 0)


def test_only_plain_http_urls_are_called() -> None:
    with pytest.raises(ValueError, match="http://host:port"):
        calls_module._origin("https://example.com")


async def test_an_answer_before_the_whole_streamed_request_stops_the_sending() -> None:
    """A server may refuse (413) after the head and never read the body: the call gets the
    answer at once, stops streaming, and does not reuse the connection."""
    sent: list[int] = []

    async def refuse_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            answer(b"too large", b"Content-Type: text/plain").replace(
                b"200 OK", b"413 Payload Too Large"
            )
        )
        await writer.drain()
        await asyncio.sleep(3)  # keeps the connection open, reads nothing more

    async def endless() -> AsyncIterator[bytes]:
        block = b"z" * (1 << 20)
        for _ in range(256):
            sent.append(len(block))
            yield block

    async with raw_server(refuse_at_once) as (url, accepted):
        client = Calls()
        async with asyncio.timeout(2):
            async with client.post(url, "/invocations", {}, endless(), length=256 << 20) as got:
                assert got.status == 413
                assert await got.read() == b"too large"
        assert sum(sent) < 64 << 20  # stopped long before the 256 MiB
        async with asyncio.timeout(2):
            assert (await post(client, url))[0] == 413  # on a new connection
        client.close()
    assert len(accepted) == 2
