"""The ASGI application: ``GET /ping`` and ``POST /invocations``, nothing else.

Pure ASGI, no framework: the dispatcher makes thousands of loopback calls a second. User code
runs on the worker pool, so ``/ping`` answers while an invocation is busy. Every response has a
Content-Length (SageMaker rejects chunked responses).
"""

from __future__ import annotations

import ctypes
import logging
import mmap
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from inferq.linux import libc_function
from inferq.modelserver.executor import WorkerPool
from inferq.modelserver.transformer import TEXT_PLAIN, Response, Transformer

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_TYPE = "application/json"
HEALTHY = Response(200, b'{"status": "Healthy"}', JSON_TYPE)
LOADING = Response(503, b'{"status": "Loading"}', JSON_TYPE)
NOT_READY = Response(503, b"The model is still loading", TEXT_PLAIN)
NOT_FOUND = Response(404, b"Not Found", TEXT_PLAIN)
NOT_ALLOWED = Response(405, b"Method Not Allowed", TEXT_PLAIN)
TOO_LARGE = Response(
    413, b"The request body is larger than SAGEMAKER_MAX_PAYLOAD_IN_MB", TEXT_PLAIN
)
CRASHED = Response(500, b"The model server failed to run the invocation", TEXT_PLAIN)


class ClientGone(Exception):
    """The client disconnected before sending its whole body."""


class ModelState:
    """The loaded model, once ``model_fn`` has returned."""

    def __init__(self) -> None:
        self.transformer: Transformer | None = None


async def send_response(send: Send, response: Response) -> None:
    headers = [
        (b"content-type", response.content_type.encode("latin-1", "replace")),
        (b"content-length", b"%d" % len(response.body)),
    ]
    headers.extend(
        (name.encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in response.headers
    )
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def read_body(
    receive: Receive, limit: int | None, content_length: int | None = None
) -> bytes | None:
    """The whole request body, or None when it exceeds ``limit`` bytes.

    With a Content-Length, a body that comes in several messages is copied straight into one
    preallocated ``bytes`` object (1x the body's size in memory, no list of chunks and no join).
    """
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if limit is None or len(body) <= limit else None
    if content_length is not None:
        if limit is not None and content_length > limit:
            return None
        if content_length >= _PREALLOCATE_MIN and len(body) <= content_length:
            return await _read_into(receive, body, content_length, limit)
    chunks, size = [body], len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if limit is not None and size > limit:
            return None
    return b"".join(chunks)


_PREALLOCATE_MIN = 64 * 1024
_new_bytes = ctypes.pythonapi.PyBytes_FromStringAndSize
_new_bytes.restype = ctypes.py_object
_new_bytes.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t)
_bytes_buffer = ctypes.pythonapi.PyBytes_AsString
_bytes_buffer.restype = ctypes.c_void_p
_bytes_buffer.argtypes = (ctypes.py_object,)


def _uninitialized_bytes(size: int) -> tuple[bytes, memoryview]:
    """A new ``bytes`` of ``size`` (>= 2) bytes and a writable view of its storage.

    This is the C API's ``PyBytes_FromStringAndSize(NULL, size)`` idiom: the object is fresh,
    referenced only here, and filled before anyone else sees it (its hash is not computed yet).
    """
    data: bytes = _new_bytes(None, size)
    address = _bytes_buffer(data)
    if size >= _PREFAULT_MIN:
        _prefault(address, size)
    storage = (ctypes.c_char * size).from_address(address)
    return data, memoryview(storage).cast("B")


#: bodies from this size on have their memory mapped in one call before they are filled
_PREFAULT_MIN = 8 << 20
_PAGE = mmap.PAGESIZE
#: Linux 5.14+: fault the range in now, as writes would, but in one system call
_MADV_POPULATE_WRITE = 23


_madvise_call = libc_function("madvise", [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int])


def _prefault(address: int, size: int) -> None:
    """Map a large, untouched buffer's pages in one system call. Filling a 1 GiB body
    otherwise takes 262,144 page faults, one per 4 KiB, which were the larger part of the model
    server's time receiving it (bench/PROFILES.md: a 1 GiB input 15-35% faster). Where the kernel
    is older than 5.14 or not Linux, the call fails or is skipped and the faults happen as
    before."""
    if _madvise_call is None:
        return
    start = -(-address // _PAGE) * _PAGE
    end = (address + size) // _PAGE * _PAGE
    if end > start:
        _madvise_call(start, end - start, _MADV_POPULATE_WRITE)


async def _read_into(receive: Receive, first: bytes, size: int, limit: int | None) -> bytes | None:
    data, view = _uninitialized_bytes(size)
    filled = len(first)
    view[:filled] = first
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        end = filled + len(chunk)
        if end > size:  # more than the Content-Length said: keep every byte, slow path
            rest, total = [bytes(view[:filled]), chunk], end
            while more:
                if limit is not None and total > limit:
                    return None
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                rest.append(chunk)
                total += len(chunk)
                more = message.get("more_body", False)
            return b"".join(rest) if limit is None or total <= limit else None
        view[filled:end] = chunk
        filled = end
    view.release()
    return data if filled == size else data[:filled]


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class ModelServerApp:
    def __init__(self, state: ModelState, pool: WorkerPool, max_body_bytes: int | None) -> None:
        self._state = state
        self._pool = pool
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/invocations":
            if method != "POST":
                return await send_response(send, NOT_ALLOWED)
            return await self._invocations(scope, receive, send)
        if path == "/ping":
            if method not in ("GET", "HEAD"):
                return await send_response(send, NOT_ALLOWED)
            return await send_response(
                send, HEALTHY if self._state.transformer is not None else LOADING
            )
        await send_response(send, NOT_FOUND)

    async def _invocations(self, scope: Scope, receive: Receive, send: Send) -> None:
        transformer = self._state.transformer
        if transformer is None:
            return await send_response(send, NOT_READY)
        try:
            body = await read_body(receive, self._max_body_bytes, _content_length(scope))
        except ClientGone:
            return
        if body is None:
            return await send_response(send, TOO_LARGE)
        try:
            response = await self._pool.run(transformer.invoke, body, scope["headers"])
        except Exception:
            logger.exception("event=invocation_crashed")
            response = CRASHED
        await send_response(send, response)
