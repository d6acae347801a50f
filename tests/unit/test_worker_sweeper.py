"""Sweeper: expiring requests nobody ran within their TTL, recovering dead workers' leases, and
deleting the rows of requests finished longer ago than the retention."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from tests.helpers.worker import LEASE, T0, Clock, claimed, new_executor, new_job, stored

from inferq.domain.invocations import NewInvocation, Status
from inferq.settings import WorkerSettings
from inferq.state.memory import MemoryJobQueue
from inferq.storage.memory import MemoryObjectStore
from inferq.worker import sweeper
from inferq.worker.execute import Executor
from inferq.worker.sweeper import Sweeper

RETENTION = 3600.0


@dataclass
class World:
    queue: MemoryJobQueue
    store: MemoryObjectStore
    clock: Clock
    sweeper: Sweeper
    executor: Executor


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """No model instance anywhere: what the sweeper does needs none."""
    queue, store, clock = MemoryJobQueue(), MemoryObjectStore(), Clock()
    settings = WorkerSettings(lease_seconds=LEASE, retention_seconds=RETENTION)
    async with aiohttp.ClientSession() as session:
        executor = new_executor(
            queue, store, session, settings=settings, clock=clock, worker_id="sweeper"
        )
        sweeps = Sweeper(queue, executor, worker_id="sweeper", settings=settings, clock=clock)
        yield World(queue, store, clock, sweeps, executor)


async def test_requests_queued_past_their_ttl_are_expired_with_a_reason(world: World) -> None:
    late = new_job(request_ttl_seconds=60)
    on_time = new_job(request_ttl_seconds=3600)
    for job in (late, on_time):
        await world.queue.enqueue(job)
    world.clock.advance(61)

    await world.sweeper.sweep()

    expired = await world.queue.get(late.job_id)
    assert expired is not None and expired.status is Status.EXPIRED
    failure = stored(world.store, late.failure_location)
    assert failure is not None
    assert failure.decode() == expired.failure_reason
    assert "RequestTTLSeconds (60 seconds)" in failure.decode()
    assert stored(world.store, late.output_location) is None
    waiting = await world.queue.get(on_time.job_id)
    assert waiting is not None and waiting.status is Status.QUEUED


async def test_every_expired_request_goes_in_one_sweep(world: World) -> None:
    jobs = [new_job(request_ttl_seconds=60) for _ in range(sweeper.EXPIRE_BATCH + 5)]
    for job in jobs:
        await world.queue.enqueue(job)
    world.clock.advance(61)

    await world.sweeper.sweep()

    assert {job.status for job in world.queue.jobs.values()} == {Status.EXPIRED}


async def test_an_expired_request_without_a_failure_path_is_only_recorded(world: World) -> None:
    job = new_job(request_ttl_seconds=60, failure_location=None)
    await world.queue.enqueue(job)
    world.clock.advance(61)

    await world.sweeper.sweep()

    expired = await world.queue.get(job.job_id)
    assert expired is not None and expired.status is Status.EXPIRED
    assert world.store.objects == {}


async def test_leases_of_dead_workers_go_back_to_the_queue(world: World) -> None:
    job = new_job()
    await claimed(world.queue, job, worker="dead", now=T0)
    world.clock.advance(LEASE - 1)
    await world.sweeper.sweep()
    still = await world.queue.get(job.job_id)
    assert still is not None and (still.status, still.lease_owner) == (Status.RUNNING, "dead")

    world.clock.advance(2)
    await world.sweeper.sweep()

    back = await world.queue.get(job.job_id)
    assert back is not None and (back.status, back.lease_owner) == (Status.QUEUED, None)


async def test_a_request_that_already_ran_is_not_expired_by_its_ttl(world: World) -> None:
    job = new_job(request_ttl_seconds=60)
    await claimed(world.queue, job, worker="dead", now=T0)
    world.clock.advance(61)  # past both its lease and its TTL

    await world.sweeper.sweep()

    back = await world.queue.get(job.job_id)
    assert back is not None and back.status is Status.QUEUED


# -- retention ----------------------------------------------------------------------------------


async def finished(world: World, at: float, status: Status = Status.COMPLETED) -> NewInvocation:
    """A new job, run by w1 and settled as ``status`` at ``at``."""
    job = new_job()
    await claimed(world.queue, job, now=at)
    assert await world.queue.finish(job.job_id, "w1", status, None, at)
    return job


async def test_rows_finished_longer_ago_than_the_retention_go_and_results_stay(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    late = new_job(request_ttl_seconds=60)
    waiting = new_job(endpoint_name="other", request_ttl_seconds=21600)
    for job in (late, waiting):
        await world.queue.enqueue(job)
    world.clock.advance(61)
    await world.sweeper.sweep()  # expires ``late``: its failure object is written
    done = await finished(world, world.clock())

    world.clock.advance(RETENTION)
    await world.sweeper.sweep()
    assert await world.queue.get(late.job_id) is not None  # exactly the retention old: kept

    world.clock.advance(sweeper.PURGE_INTERVAL_SECONDS)
    with caplog.at_level(logging.INFO, logger="inferq.worker"):
        await world.sweeper.sweep()

    assert await world.queue.get(late.job_id) is None
    assert await world.queue.get(done.job_id) is None
    assert stored(world.store, late.failure_location) is not None
    still = await world.queue.get(waiting.job_id)
    assert still is not None and still.status is Status.QUEUED
    [record] = [r for r in caplog.records if r.message == "finished_purged"]
    assert record.__dict__["count"] == 2


async def test_retention_runs_at_most_once_per_interval(world: World) -> None:
    old = T0 - RETENTION - 1
    first = await finished(world, old)
    await world.sweeper.sweep()
    assert await world.queue.get(first.job_id) is None

    second = await finished(world, old, Status.FAILED)
    world.clock.advance(sweeper.PURGE_INTERVAL_SECONDS - 1)
    await world.sweeper.sweep()
    assert await world.queue.get(second.job_id) is not None

    world.clock.advance(1)
    await world.sweeper.sweep()
    assert await world.queue.get(second.job_id) is None


async def test_a_backlog_of_old_rows_goes_in_batches_over_the_next_sweeps(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "PURGE_BATCH", 3)
    monkeypatch.setattr(sweeper, "PURGE_BATCHES_PER_SWEEP", 2)
    for n in range(10):
        await finished(world, T0 - RETENTION - 100 + n)

    left = []
    for _ in range(3):  # no time passes: a sweep that used its whole budget leaves the rest due
        await world.sweeper.sweep()
        left.append(len(world.queue.jobs))

    assert left == [4, 0, 0]


@pytest.mark.parametrize("retention", [0.0, -1.0])
async def test_a_retention_of_zero_or_less_keeps_every_row(world: World, retention: float) -> None:
    settings = WorkerSettings(lease_seconds=LEASE, retention_seconds=retention)
    keeper = Sweeper(
        world.queue, world.executor, worker_id="sweeper", settings=settings, clock=world.clock
    )
    job = await finished(world, T0 - 10 * 365 * 86400.0)

    await keeper.sweep()

    assert await world.queue.get(job.job_id) is not None
