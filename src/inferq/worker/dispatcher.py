"""Feeding one endpoint's instances from the queue, never above their concurrency limits.

Under a backlog the dispatcher claims a few jobs ahead of its free slots (half its slots' worth)
and starts them from memory as slots free: one claim transaction then serves several jobs
instead of one per finishing job. Jobs claimed ahead keep their leases renewed like running
ones, go back to the queue when the dispatcher stops or its instances are gone, and still meet
their TTL (checked when they start).
"""

from __future__ import annotations

import asyncio
import collections
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

#: jobs claimed ahead of free slots while a backlog lasts, as a share of the endpoint's slots
PREFETCH_SHARE = 0.5


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
        #: claimed ahead, waiting for a free slot (oldest first)
        self._ready: collections.deque[Invocation] = collections.deque()
        #: whether the last claim came back full: the queue holds more
        self._backlog = False
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
        await self._give_back_ready()

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
            if self._ready and self._pool.capacity() == 0:
                await self._give_back_ready()  # no instance left to run them: let others try
            await self._pool.wait_changed(self._settings.poll_seconds)
            return
        if not self._ready:
            ahead = int(self._pool.capacity() * PREFETCH_SHARE) if self._backlog else 0
            now, lease = self._clock(), self._settings.lease_seconds
            wanted = free + ahead
            jobs = await self._queue.claim(self.endpoint, self._worker_id, wanted, lease, now)
            self._backlog = len(jobs) == wanted
            if not jobs:
                await self._queue.wait(self._settings.poll_seconds)
                return
            self._executor.claimed(jobs, now)
            self._ready.extend(jobs)
        while self._ready and self._pool.free() > 0:
            self._launch(self._ready.popleft())

    async def _give_back_ready(self) -> None:
        ready, self._ready = list(self._ready), collections.deque()
        await asyncio.gather(*(self._unclaim(job) for job in ready))

    async def _unclaim(self, job: Invocation) -> None:
        """Back to the queue as if never claimed: it did not start, so no attempt is spent."""
        self._executor.leases.dropped(job.job_id)
        with contextlib.suppress(Exception):
            await self._queue.unclaim(job.job_id, self._worker_id)

    def _launch(self, job: Invocation) -> None:
        slot = self._pool.acquire()
        if slot is None:  # capacity vanished between claim and launch (an instance died)
            giving_back = asyncio.create_task(self._unclaim(job))
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
            held: list[tuple[str, asyncio.Task[None] | None]] = list(self._running.items())
            held += [(job.job_id, None) for job in self._ready]
            # renewed together, so the state backend commits them as one group
            outcomes = await asyncio.gather(
                *(self._renew(job_id, task) for job_id, task in held), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    log.error("lease_renewal_failed", exc_info=outcome)

    async def _renew(self, job_id: str, task: asyncio.Task[None] | None) -> None:
        """Renew the lease of a running job (``task``) or of one claimed ahead (None)."""
        now, lease = self._clock(), self._settings.lease_seconds
        if await self._queue.extend(job_id, self._worker_id, lease, now):
            self._executor.leases.granted(job_id, now + lease)
            return
        log.warning("lease_lost", extra={"job_id": job_id})
        self._executor.leases.dropped(job_id)
        if task is not None:
            task.cancel()
        else:
            self._ready = collections.deque(job for job in self._ready if job.job_id != job_id)
