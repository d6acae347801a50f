"""The model-runner seam: an instance is something that answers ``GET /ping`` and
``POST /invocations`` at a base URL. The dispatcher never needs to know more."""

from __future__ import annotations

from typing import Protocol


class ModelInstance(Protocol):
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        ...

    @property
    def alive(self) -> bool:
        """False once the instance is known to be gone (its process exited)."""
        ...

    async def start(self) -> None:
        """Start (or connect) and return once ``/ping`` is healthy; raise ``ModelLoadError``."""
        ...

    async def stop(self) -> None: ...
