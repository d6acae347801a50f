"""InstancePool: free slots per instance, and the dispatcher that fills them never overfills."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from tests.helpers.web import serving
from tests.helpers.worker import ENDPOINT, Clock, FakeInstance, StubModel, new_executor, new_job

from inferq.domain.invocations import Invocation, Status
from inferq.settings import WorkerSettings
from inferq.state.memory import MemoryJobQueue
from inferq.storage.memory import MemoryObjectStore
from inferq.worker.dispatcher import EndpointDispatcher
from inferq.worker.pool import InstancePool, Slot


def slot(capacity: int, url: str = "http://127.0.0.1:1") -> Slot:
    return Slot(instance=FakeInstance(url), variant="AllTraffic", capacity=capacity)


def test_acquire_takes_the_least_busy_instance_and_stops_at_capacity() -> None:
    a, b = slot(2), slot(2)
    pool = InstancePool([a, b])

    taken = [pool.acquire() for _ in range(5)]

    assert taken == [a, b, a, b, None]
    assert (a.in_flight, b.in_flight, pool.free()) == (2, 2, 0)


def test_release_frees_a_slot_and_signals_the_change() -> None:
    pool = InstancePool([slot(1)])
    taken = pool.acquire()
    assert taken is not None and pool.acquire() is None
    pool.changed.clear()

    pool.release(taken)

    assert pool.free() == 1 and pool.changed.is_set()
    assert pool.acquire() is taken


def test_dead_and_retired_instances_offer_nothing() -> None:
    retired, live = slot(4), slot(1)
    dead = Slot(
        instance=FakeInstance("http://127.0.0.1:1", alive=False), variant="AllTraffic", capacity=4
    )
    pool = InstancePool([dead, retired, live])
    pool.retire(retired)

    assert pool.free() == 1
    assert pool.acquire() is live
    assert pool.acquire() is None
    assert pool.count("AllTraffic") == 2, "a dead instance counts until it is replaced"


def test_an_empty_pool_has_no_capacity() -> None:
    pool = InstancePool()

    assert (pool.free(), pool.acquire(), pool.count("AllTraffic")) == (0, None, 0)


async def test_wait_changed_returns_on_a_change_or_after_the_timeout() -> None:
    pool = InstancePool()

    started = asyncio.get_running_loop().time()
    await pool.wait_changed(0.05)
    assert asyncio.get_running_loop().time() - started >= 0.05

    waiting = asyncio.create_task(pool.wait_changed(5))
    await asyncio.sleep(0)
    pool.add(slot(1))
    await asyncio.wait_for(waiting, 1)


async def test_the_dispatcher_never_sends_an_instance_more_than_its_capacity() -> None:
    """Twelve requests, two instances of two slots each: never more than two calls at a time on
    either model, four in all, and every request completes."""
    models = [StubModel(delay=0.1), StubModel(delay=0.1)]
    queue = MemoryJobQueue()
    settings = WorkerSettings(lease_seconds=30, poll_seconds=0.05)
    clock = Clock()  # the time the jobs were received
    jobs = [new_job() for _ in range(12)]
    for job in jobs:
        await queue.enqueue(job)
    _, pool, stack = await _dispatching(queue, [(m, 2) for m in models], settings, clock)
    async with stack:
        await _all_final(queue)

    # never above capacity; reaching it depends on timing, which a loaded machine stretches
    assert all(1 <= model.peak <= 2 for model in models)
    assert sum(len(model.calls) for model in models) == 12
    assert {job.status for job in queue.jobs.values()} == {Status.COMPLETED}
    assert pool.free() == 4


class FlakyQueue(MemoryJobQueue):
    """Its first claim fails, as a busy database may."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def claim(
        self, endpoint: str, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        if self.failures:
            self.failures -= 1
            raise OSError("database is locked")
        return await super().claim(endpoint, worker, limit, lease_seconds, now)


async def test_the_dispatcher_outlives_a_failed_claim() -> None:
    model, queue, clock = StubModel(), FlakyQueue(), Clock()
    settings = WorkerSettings(poll_seconds=0.05)
    job = new_job()
    _, _, stack = await _dispatching(queue, [(model, 1)], settings, clock)
    async with stack:
        await queue.enqueue(job)
        await _all_final(queue, seconds=2)


async def _all_final(queue: MemoryJobQueue, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if all(job.status.is_final for job in queue.jobs.values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the requests did not finish within {seconds} seconds")


class CountingQueue(MemoryJobQueue):
    """Counts claims, and the jobs each asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.claims: list[int] = []

    async def claim(
        self, endpoint: str, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        self.claims.append(limit)
        return await super().claim(endpoint, worker, limit, lease_seconds, now)


async def _dispatching(
    queue: MemoryJobQueue,
    models: list[tuple[StubModel, int]],
    settings: WorkerSettings,
    clock: Clock | None = None,
) -> tuple[EndpointDispatcher, InstancePool, contextlib.AsyncExitStack]:
    """A started dispatcher of the endpoint over one instance per (model, capacity); the stack
    stops it and the models."""
    stack = contextlib.AsyncExitStack()
    urls = [await stack.enter_async_context(serving(model.app())) for model, _ in models]
    session = await stack.enter_async_context(aiohttp.ClientSession())
    store = MemoryObjectStore()
    executor = new_executor(queue, store, session, settings=settings, clock=clock or Clock())
    pool = InstancePool(
        [slot(capacity, url) for (_, capacity), url in zip(models, urls, strict=True)]
    )
    dispatcher = EndpointDispatcher(
        ENDPOINT, pool, queue, executor, worker_id="w1", settings=settings, clock=clock or Clock()
    )
    dispatcher.start()
    stack.push_async_callback(dispatcher.stop)
    return dispatcher, pool, stack


async def test_under_a_backlog_one_claim_serves_several_jobs() -> None:
    model, queue = StubModel(delay=0.01), CountingQueue()
    for _ in range(40):
        await queue.enqueue(new_job())
    _, _, stack = await _dispatching(queue, [(model, 4)], WorkerSettings(poll_seconds=0.05))
    async with stack:
        await _all_final(queue)
    assert model.peak <= 4
    assert {job.status for job in queue.jobs.values()} == {Status.COMPLETED}
    # the first claim asks for the free slots only; once the queue proved deep, for 2 more
    assert queue.claims[0] == 4
    assert max(queue.claims) > 4
    assert len(queue.claims) < 40 / 2


async def test_jobs_claimed_ahead_go_back_unspent_when_the_dispatcher_stops() -> None:
    model, queue = StubModel(delay=0.3), MemoryJobQueue()
    for _ in range(10):
        await queue.enqueue(new_job())
    dispatcher, _, stack = await _dispatching(
        queue, [(model, 2)], WorkerSettings(poll_seconds=0.05)
    )
    async with stack:
        for _ in range(200):  # the first two finished, the next claim took one ahead
            if len(model.calls) >= 4:
                break
            await asyncio.sleep(0.01)
        await dispatcher.stop()
    called = {call.headers["X-Amzn-SageMaker-Inference-Id"] for call in model.calls}
    jobs = queue.jobs.values()
    assert not [job for job in jobs if job.status is Status.RUNNING]
    # a job that never reached the model has spent no attempt (so its TTL still applies)
    assert all(job.attempts == 0 for job in jobs if job.inference_id not in called)
    assert sum(job.status is Status.COMPLETED for job in jobs) >= 2


async def test_jobs_claimed_ahead_go_back_when_the_instances_are_gone() -> None:
    model, queue = StubModel(delay=0.2), MemoryJobQueue()
    for _ in range(10):
        await queue.enqueue(new_job())
    settings = WorkerSettings(poll_seconds=0.05)
    dispatcher, pool, stack = await _dispatching(queue, [(model, 2)], settings)
    async with stack:
        for _ in range(200):
            if dispatcher._ready:
                break
            await asyncio.sleep(0.005)
        assert dispatcher._ready, "nothing was claimed ahead"
        for each in list(pool.slots):
            pool.retire(each)
        for _ in range(200):
            if not dispatcher._ready:
                break
            await asyncio.sleep(0.01)
        assert not dispatcher._ready
    called = {call.headers["X-Amzn-SageMaker-Inference-Id"] for call in model.calls}
    never_run = [job for job in queue.jobs.values() if job.inference_id not in called]
    assert never_run and all((job.status, job.attempts) == (Status.QUEUED, 0) for job in never_run)
