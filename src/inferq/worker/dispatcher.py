"""Feeding one endpoint's instances from the queue, never above their concurrency limits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from inferq.domain.invocations import Invocation
from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.worker.execute import Executor
from inferq.worker.pool import InstancePool, Slot

log = logging.getLogger("inferq.worker")


class EndpointDispatcher:
    """Claims as many jobs as there are free slots, runs each on the least busy instance, and
    keeps their leases alive while they run."""

    def __init__(
        self,
        endpoint: str,
        pool: InstancePool,
        queue: JobQueue,
        executor: Executor,
        *,
        worker_id: str,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoint = endpoint
        self._pool = pool
        self._queue = queue
        self._executor = executor
        self._worker_id = worker_id
        self._settings = settings
        self._clock = clock
        self._running: dict[str, asyncio.Task[None]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name=f"dispatch:{self.endpoint}"),
            asyncio.create_task(self._heartbeat_loop(), name=f"heartbeat:{self.endpoint}"),
        ]

    async def stop(self) -> None:
        """Stop claiming; give running jobs back to the queue for another instance."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        running = list(self._running.values())
        for task in running:
            task.cancel()
        await asyncio.gather(*self._tasks, *running, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._running)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_once()
            except Exception:  # a backend hiccup must not end dispatching for good
                log.exception("claim_failed", extra={"endpoint": self.endpoint})
                await asyncio.sleep(self._settings.poll_seconds)

    async def _claim_once(self) -> None:
        free = self._pool.free()
        if free <= 0:
            await self._pool.wait_changed(self._settings.poll_seconds)
            return
        now, lease = self._clock(), self._settings.lease_seconds
        jobs = await self._queue.claim(self.endpoint, self._worker_id, free, lease, now)
        if not jobs:
            await self._queue.wait(self._settings.poll_seconds)
            return
        self._executor.claimed(jobs, now)
        for job in jobs:
            self._launch(job)

    def _launch(self, job: Invocation) -> None:
        slot = self._pool.acquire()
        if slot is None:  # capacity vanished between claim and launch (an instance died)
            giving_back = asyncio.create_task(self._give_back(job))
            self._running[job.job_id] = giving_back
            giving_back.add_done_callback(lambda _: self._running.pop(job.job_id, None))
            return
        task = asyncio.create_task(self._run(job, slot), name=f"invoke:{job.job_id}")
        self._running[job.job_id] = task

    async def _run(self, job: Invocation, slot: Slot) -> None:
        try:
            await self._executor.run(job, slot)
        except asyncio.CancelledError:
            await asyncio.shield(self._give_back(job))
            raise
        finally:
            self._pool.release(slot)
            self._running.pop(job.job_id, None)

    async def _give_back(self, job: Invocation) -> None:
        self._executor.leases.dropped(job.job_id)
        with contextlib.suppress(Exception):
            await self._queue.release(
                job.job_id, self._worker_id, "dispatcher stopped", self._clock()
            )

    async def _heartbeat_loop(self) -> None:
        interval = self._settings.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            running = list(self._running.items())
            # renewed together, so the state backend commits them as one group
            outcomes = await asyncio.gather(
                *(self._renew(job_id, task) for job_id, task in running), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    log.error("lease_renewal_failed", exc_info=outcome)

    async def _renew(self, job_id: str, task: asyncio.Task[None]) -> None:
        now, lease = self._clock(), self._settings.lease_seconds
        if await self._queue.extend(job_id, self._worker_id, lease, now):
            self._executor.leases.granted(job_id, now + lease)
            return
        log.warning("lease_lost", extra={"job_id": job_id})
        self._executor.leases.dropped(job_id)
        task.cancel()
