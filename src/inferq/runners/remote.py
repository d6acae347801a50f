"""An already-running container reached by URL (``Image = http://host:port``)."""

from __future__ import annotations

import aiohttp

from inferq import errors
from inferq.runners import health


class RemoteContainer:
    def __init__(self, url: str, session: aiohttp.ClientSession, startup_timeout: float) -> None:
        self._url = url.rstrip("/")
        self._session = session
        self._startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return self._url

    @property
    def alive(self) -> bool:
        return True

    async def start(self) -> None:
        reason = await health.wait_healthy(self._session, self._url, self._startup_timeout)
        if reason is not None:
            raise errors.ModelLoadError(f"The container at {self._url} is not healthy: {reason}")

    async def stop(self) -> None:
        """Nothing to stop: the container's lifetime is not ours."""
