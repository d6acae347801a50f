"""Housekeeping that no endpoint's dispatcher owns: dead workers' leases and expired requests.

Requests whose RequestTTLSeconds passed while queued are failed here even when their endpoint
has no instance at all (scaled to zero, or failed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.worker.execute import Executor

log = logging.getLogger("inferq.worker")
SWEEP_INTERVAL_SECONDS = 1.0
EXPIRE_BATCH = 100


class Sweeper:
    def __init__(
        self,
        queue: JobQueue,
        executor: Executor,
        *,
        worker_id: str,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._worker_id = worker_id
        self._settings = settings
        self._clock = clock

    async def run_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep_failed")
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)

    async def sweep(self) -> None:
        requeued = await self._queue.requeue_expired_leases(self._clock())
        if requeued:
            log.warning("leases_expired", extra={"count": requeued})
        while True:
            now = self._clock()
            expired = await self._queue.claim_expired(
                self._worker_id, EXPIRE_BATCH, self._settings.lease_seconds, now
            )
            if not expired:
                return
            self._executor.claimed(expired, now)
            await asyncio.gather(*(self._executor.expire(job) for job in expired))
