"""The accept-path ceiling: an ASGI app that reads the request and answers 202, nothing else.

Served the way ``inferq serve`` serves (``inferq.cli`` and ``bootstrap.serve``): uvicorn,
httptools, uvloop when it is installed (else the asyncio loop), no lifespan, no access log,
no proxy-header rewriting, no Server header.
``command(module, port)`` is how the benchmarks start it (the Celery peer's app too).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]

HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body", False):
        pass
    await send({"type": "http.response.start", "status": 202, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"{}"})


def loop() -> str:
    """The event loop ``inferq serve`` runs on in this environment (``inferq.cli._run``)."""
    return "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"


def command(module: str, port: int, python: str = sys.executable) -> list[str]:
    """uvicorn serving ``module:app`` on the stack inferq uses."""
    return [
        python, "-m", "uvicorn", f"{module}:app", "--host", "127.0.0.1", "--port", str(port),
        "--http", "httptools", "--loop", loop(), "--lifespan", "off", "--no-access-log",
        "--log-level", "warning", "--no-proxy-headers", "--no-server-header",
    ]  # fmt: skip
