"""Minimal ASGI plumbing shared by the API apps: headers, bodies, responses, request ids."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from inferq import ids

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[str, str]]


class BodyTooLarge(Exception):
    """The request body is larger than the operation allows."""


def headers_of(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name (latin-1, as HTTP defines them)."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def request_id(scope: Scope) -> str:
    """The id the auth layer gave this request, or a fresh one."""
    rid = scope.get("inferq.request_id")
    if rid is None:
        rid = scope["inferq.request_id"] = ids.uuid4()
    return str(rid)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body; raise ``BodyTooLarge`` as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, headers: Headers, body: bytes = b"") -> None:
    raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
