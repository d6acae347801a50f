"""Waiting for a container's ``/ping`` to turn healthy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

PING_TIMEOUT_SECONDS = 2.0  # the container contract gives /ping two seconds


async def ping(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        timeout = aiohttp.ClientTimeout(total=PING_TIMEOUT_SECONDS)
        async with session.get(url + "/ping", timeout=timeout) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def wait_healthy(
    session: aiohttp.ClientSession,
    url: str,
    deadline_seconds: float,
    gone: Callable[[], str | None] = lambda: None,
) -> str | None:
    """Poll ``/ping`` until it answers 200. Returns None when healthy, else why not
    (``gone()`` explains a dead process; otherwise the deadline passed)."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.02
    while time.monotonic() < deadline:
        if (reason := gone()) is not None:
            return reason
        if await ping(session, url):
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    return f"{url}/ping did not answer 200 within {deadline_seconds:.0f} seconds"
