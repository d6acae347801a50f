"""What the embedded backends (``memory://``, ``sqlite://``) share: the wait doorbell, a guard."""

from __future__ import annotations

import asyncio
import contextlib

from inferq.domain.invocations import Status


class Wakeup:
    """Rings when work may have arrived; ``wait`` returns on a ring or after the timeout.

    A ring while nobody waits is remembered, so a worker that polled an empty queue just before
    an enqueue does not sleep through it. Other processes cannot ring this bell, which is why
    callers must treat the timeout as their poll interval.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> None:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a concurrent cancellation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._event.wait()
        # Every waiter woken by this ring has already been released, so clearing loses nothing.
        self._event.clear()


def check_final(status: Status) -> None:
    """``finish`` settles only into a final status; anything else is a caller bug."""
    if not status.is_final:
        raise ValueError(f"finish() needs a final status, not {status!r}")
