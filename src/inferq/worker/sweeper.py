"""Housekeeping that no endpoint's dispatcher owns: dead workers' leases, expired requests, and
the retention of finished requests' rows.

Requests whose RequestTTLSeconds passed while queued are failed here even when their endpoint
has no instance at all (scaled to zero, or failed). Finished requests' queue rows are deleted
once ``retention_seconds`` old; their result objects are the user's and stay in the store.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.worker.execute import Executor

log = logging.getLogger("inferq.worker")
SWEEP_INTERVAL_SECONDS = 1.0
EXPIRE_BATCH = 100
#: finished rows deleted per statement. A statement shares its transaction with the accepts that
#: group-commit beside it, and each row costs a page of the job_id index (random keys), so this
#: bounds their wait: ~3 ms for 250 (bench/backlog.py), at the rows/s of larger batches.
PURGE_BATCH = 250
#: statements per sweep at most: a larger backlog of old rows (the first start after an upgrade,
#: a shortened retention) goes on at the next sweep, so leases and TTLs are still seen to.
PURGE_BATCHES_PER_SWEEP = 40
#: how often retention looks for old rows once caught up. Rows age by hours or days, so a
#: half-minute lag costs nothing, and an idle server does not write every second.
PURGE_INTERVAL_SECONDS = 30.0


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
        self._next_purge = -math.inf

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
        await self._expire_stale_requests()
        await self._purge_finished()

    async def _expire_stale_requests(self) -> None:
        while True:
            now = self._clock()
            expired = await self._queue.claim_expired(
                self._worker_id, EXPIRE_BATCH, self._settings.lease_seconds, now
            )
            if not expired:
                return
            self._executor.claimed(expired, now)
            await asyncio.gather(*(self._executor.expire(job) for job in expired))

    async def _purge_finished(self) -> None:
        """Delete rows finished more than ``retention_seconds`` ago, a batch at a time."""
        now, retention = self._clock(), self._settings.retention_seconds
        if retention <= 0 or now < self._next_purge:
            return
        self._next_purge = now + PURGE_INTERVAL_SECONDS  # set first: a failing purge waits too
        purged = 0
        for _ in range(PURGE_BATCHES_PER_SWEEP):
            count = await self._queue.purge_finished(now - retention, PURGE_BATCH)
            purged += count
            if count < PURGE_BATCH:
                break
            await asyncio.sleep(0)  # memory:// deletes without awaiting: let requests in
        else:
            self._next_purge = now  # more are due: go on at the next sweep
        if purged:
            log.info("finished_purged", extra={"count": purged})
