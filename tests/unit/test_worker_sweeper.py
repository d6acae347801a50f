"""Sweeper: expiring requests nobody ran within their TTL, and recovering dead workers' leases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from tests.helpers.worker import LEASE, T0, Clock, claimed, new_job, stored

from inferq.domain.invocations import Status
from inferq.settings import WorkerSettings
from inferq.state.memory import MemoryJobQueue
from inferq.storage.memory import MemoryObjectStore
from inferq.worker import sweeper
from inferq.worker.execute import Executor
from inferq.worker.inputs import InputReader
from inferq.worker.sweeper import Sweeper


@dataclass
class World:
    queue: MemoryJobQueue
    store: MemoryObjectStore
    clock: Clock
    sweeper: Sweeper


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """No model instance anywhere: what the sweeper does needs none."""
    queue, store, clock = MemoryJobQueue(), MemoryObjectStore(), Clock()
    settings = WorkerSettings(lease_seconds=LEASE)
    async with aiohttp.ClientSession() as session:
        executor = Executor(
            queue,
            store,
            session,
            inputs=InputReader(store, session),
            worker_id="sweeper",
            settings=settings,
            clock=clock,
        )
        sweeps = Sweeper(queue, executor, worker_id="sweeper", settings=settings, clock=clock)
        yield World(queue, store, clock, sweeps)


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
