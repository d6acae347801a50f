"""The state contract: every backend behaves as ``memory://`` does."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from inferq import errors
from inferq.domain.invocations import Invocation, NewInvocation, Status
from inferq.state.base import Kind, QueueStats, State
from inferq.state.memory import MemoryState
from inferq.state.sqlite import SQLiteState
from inferq.types import InferenceId, JobId

LEASE = 30.0
T0 = 1_700_000_000.0


@pytest.fixture
def memory_state() -> State:
    return MemoryState()


@pytest.fixture
async def sqlite_state(tmp_path: Path) -> AsyncIterator[State]:
    state = await SQLiteState.open(tmp_path / "state.db")
    yield state
    await state.close()


@pytest.fixture(params=["memory", "sqlite"])
def state(request: pytest.FixtureRequest) -> State:
    backend: State = request.getfixturevalue(f"{request.param}_state")
    return backend


def new_job(**changes: Any) -> NewInvocation:
    job_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "job_id": JobId(job_id),
        "inference_id": InferenceId(f"inference-{job_id}"),
        "endpoint_name": "my-endpoint",
        "input_location": None,
        "body": b'{"x": 1}',
        "content_type": "application/json",
        "accept": None,
        "custom_attributes": None,
        "output_location": f"s3://out/{job_id}.out",
        "failure_location": None,
        "request_ttl_seconds": 3600,
        "invocation_timeout_seconds": 900,
        "received_at": T0,
    }
    return NewInvocation(**{**fields, **changes})


def queued(job: NewInvocation) -> Invocation:
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
    return Invocation(**fields, status=Status.QUEUED)


async def enqueue_all(state: State, *jobs: NewInvocation) -> None:
    for job in jobs:  # one by one: the order is part of what is tested
        await state.queue.enqueue(job)


async def claim_one(state: State, worker: str = "w1", now: float = T0) -> Invocation:
    [job] = await state.queue.claim("my-endpoint", worker, 1, LEASE, now)
    return job


def ids(jobs: list[Invocation]) -> list[str]:
    return [job.job_id for job in jobs]


# -- enqueue and get ----------------------------------------------------------------------------


async def test_enqueued_invocation_round_trips_exactly(state: State) -> None:
    job = new_job(
        input_location="s3://in/payload.bin",
        body=bytes(range(256)) * 500,
        accept="application/json",
        custom_attributes="a=b",
        failure_location="s3://err/",
        priority=7,
        received_at=T0 + 0.123456789,
    )
    await state.queue.enqueue(job)
    assert await state.queue.get(job.job_id) == queued(job)
    assert await state.queue.get("no-such-job") is None


async def test_empty_and_absent_bodies_stay_distinct(state: State) -> None:
    empty, absent = new_job(body=b""), new_job(body=None, input_location="s3://in/x")
    await enqueue_all(state, empty, absent)
    assert (await state.queue.get(empty.job_id)) == queued(empty)
    assert (await state.queue.get(absent.job_id)) == queued(absent)


async def test_enqueue_of_an_existing_job_id_conflicts(state: State) -> None:
    job = new_job()
    await state.queue.enqueue(job)
    with pytest.raises(errors.Conflict):
        await state.queue.enqueue(dataclasses.replace(job, endpoint_name="other"))
    assert await state.queue.get(job.job_id) == queued(job)


# -- claim --------------------------------------------------------------------------------------


async def test_claim_is_fifo(state: State) -> None:
    jobs = [new_job(received_at=T0 + n) for n in (2, 0, 1)]
    await enqueue_all(state, *jobs)
    claimed = await state.queue.claim("my-endpoint", "w1", 10, LEASE, T0)
    assert ids(claimed) == [jobs[1].job_id, jobs[2].job_id, jobs[0].job_id]


async def test_claim_breaks_ties_in_enqueue_order(state: State) -> None:
    jobs = [new_job() for _ in range(5)]
    await enqueue_all(state, *jobs)
    claimed = await state.queue.claim("my-endpoint", "w1", 10, LEASE, T0)
    assert ids(claimed) == [job.job_id for job in jobs]


async def test_claim_takes_higher_priority_first_then_oldest(state: State) -> None:
    low_old = new_job(priority=0, received_at=T0)
    high_new = new_job(priority=5, received_at=T0 + 2)
    high_old = new_job(priority=5, received_at=T0 + 1)
    await enqueue_all(state, low_old, high_new, high_old)
    claimed = await state.queue.claim("my-endpoint", "w1", 2, LEASE, T0)
    assert ids(claimed) == [high_old.job_id, high_new.job_id]


async def test_claim_leases_the_job(state: State) -> None:
    job = new_job()
    await state.queue.enqueue(job)
    claimed = await claim_one(state, now=T0 + 5)
    expected = dataclasses.replace(
        queued(job),
        status=Status.RUNNING,
        attempts=1,
        lease_owner="w1",
        lease_expires_at=T0 + 5 + LEASE,
        started_at=T0 + 5,
    )
    assert claimed == expected
    assert await state.queue.get(job.job_id) == expected


async def test_claim_respects_limit_and_leaves_nothing_behind(state: State) -> None:
    await enqueue_all(state, *(new_job() for _ in range(3)))
    assert len(await state.queue.claim("my-endpoint", "w1", 2, LEASE, T0)) == 2
    assert len(await state.queue.claim("my-endpoint", "w1", 2, LEASE, T0)) == 1
    assert await state.queue.claim("my-endpoint", "w1", 2, LEASE, T0) == []
    assert await state.queue.claim("my-endpoint", "w1", 0, LEASE, T0) == []


async def test_claim_matches_endpoint_names_in_any_case(state: State) -> None:
    job = new_job(endpoint_name="My-Endpoint")
    other = new_job(endpoint_name="my-endpoint-2")
    await enqueue_all(state, job, other)
    claimed = await state.queue.claim("MY-ENDPOINT", "w1", 10, LEASE, T0)
    assert ids(claimed) == [job.job_id]
    assert claimed[0].endpoint_name == "My-Endpoint"


async def test_concurrent_claimers_never_share_a_job(state: State) -> None:
    jobs = [new_job(received_at=T0 + n) for n in range(120)]
    await enqueue_all(state, *jobs)

    async def drain(worker: str) -> list[str]:
        got: list[str] = []
        while batch := await state.queue.claim("my-endpoint", worker, 3, LEASE, T0):
            got += ids(batch)
        return got

    per_worker = await asyncio.gather(*(drain(f"w{n}") for n in range(16)))
    everything = [job_id for got in per_worker for job_id in got]
    assert sorted(everything) == sorted(job.job_id for job in jobs)


# -- fencing: extend, finish, release -----------------------------------------------------------


async def test_only_the_owner_extends_finishes_or_releases(state: State) -> None:
    await state.queue.enqueue(new_job())
    job = await claim_one(state)
    assert not await state.queue.extend(job.job_id, "w2", 60, T0)
    assert not await state.queue.finish(job.job_id, "w2", Status.COMPLETED, None, T0)
    assert not await state.queue.release(job.job_id, "w2", None, T0)
    assert await state.queue.get(job.job_id) == job
    assert await state.queue.extend(job.job_id, "w1", 60, T0 + 10)
    assert (await state.queue.get(job.job_id)) == dataclasses.replace(job, lease_expires_at=T0 + 70)


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.EXPIRED])
async def test_owner_finishes_once_into_a_final_status(state: State, status: Status) -> None:
    await state.queue.enqueue(new_job())
    job = await claim_one(state)
    with pytest.raises(ValueError):
        await state.queue.finish(job.job_id, "w1", Status.QUEUED, None, T0)
    assert await state.queue.finish(job.job_id, "w1", status, "why", T0 + 3)
    finished = dataclasses.replace(
        job,
        status=status,
        failure_reason="why",
        finished_at=T0 + 3,
        lease_expires_at=None,
        body=None,  # the inline body is dropped once settled
    )
    assert await state.queue.get(job.job_id) == finished
    assert not await state.queue.finish(job.job_id, "w1", Status.FAILED, None, T0 + 4)
    assert not await state.queue.extend(job.job_id, "w1", LEASE, T0 + 4)
    assert await state.queue.get(job.job_id) == finished


async def test_queued_or_unknown_jobs_cannot_be_settled(state: State) -> None:
    job = new_job()
    await state.queue.enqueue(job)
    for job_id in (job.job_id, "no-such-job"):
        assert not await state.queue.finish(job_id, "w1", Status.COMPLETED, None, T0)
        assert not await state.queue.extend(job_id, "w1", LEASE, T0)
        assert not await state.queue.release(job_id, "w1", None, T0)
    assert await state.queue.get(job.job_id) == queued(job)


async def test_release_puts_the_job_back_without_counting(state: State) -> None:
    await state.queue.enqueue(new_job())
    job = await claim_one(state)
    assert await state.queue.release(job.job_id, "w1", "runner died", T0 + 1)
    released = await state.queue.get(job.job_id)
    assert released == dataclasses.replace(
        job,
        status=Status.QUEUED,
        lease_owner=None,
        lease_expires_at=None,
        started_at=None,
        failure_reason="runner died",
    )
    again = await claim_one(state, "w2", T0 + 2)
    assert (again.job_id, again.attempts, again.lease_owner) == (job.job_id, 2, "w2")


async def test_unclaim_undoes_a_claim_as_if_it_never_happened(state: State) -> None:
    original = new_job(received_at=T0, request_ttl_seconds=5)
    await state.queue.enqueue(original)
    job = await claim_one(state, "w1", T0 + 1)
    assert not await state.queue.unclaim(job.job_id, "w2")  # only the holder may
    assert await state.queue.unclaim(job.job_id, "w1")
    assert await state.queue.get(job.job_id) == queued(original)
    assert not await state.queue.unclaim(job.job_id, "w1")  # queued again: nothing held
    # never run, so still subject to its TTL like any request that waited
    expired = await state.queue.claim_expired("sweeper", 10, LEASE, T0 + 6)
    assert [(e.job_id, e.attempts) for e in expired] == [(job.job_id, 1)]


async def test_expired_leases_are_requeued_and_fence_the_old_owner(state: State) -> None:
    await enqueue_all(state, new_job(), new_job())
    stale = await claim_one(state, "w1", T0)
    fresh = await claim_one(state, "w2", T0 + 20)
    assert await state.queue.requeue_expired_leases(T0 + LEASE) == 1
    assert await state.queue.get(fresh.job_id) == fresh
    requeued = await state.queue.get(stale.job_id)
    assert requeued is not None
    assert (requeued.status, requeued.lease_owner, requeued.attempts) == (Status.QUEUED, None, 1)

    assert not await state.queue.finish(stale.job_id, "w1", Status.COMPLETED, None, T0 + 31)
    assert not await state.queue.extend(stale.job_id, "w1", LEASE, T0 + 31)
    again = await claim_one(state, "w3", T0 + 32)
    assert (again.job_id, again.attempts) == (stale.job_id, 2)
    assert not await state.queue.finish(stale.job_id, "w1", Status.COMPLETED, None, T0 + 33)
    assert await state.queue.requeue_expired_leases(T0 + 33) == 0


# -- request TTL --------------------------------------------------------------------------------


async def test_claim_expired_takes_stale_requests_of_every_endpoint(state: State) -> None:
    stale_a = new_job(endpoint_name="a", request_ttl_seconds=60)
    stale_b = new_job(endpoint_name="B", request_ttl_seconds=30)
    fresh = new_job(endpoint_name="a", request_ttl_seconds=600)
    await enqueue_all(state, stale_a, stale_b, fresh)
    claimed = await state.queue.claim_expired("reaper", 10, LEASE, T0 + 60)
    assert ids(claimed) == [stale_b.job_id, stale_a.job_id]
    assert all(job.status is Status.RUNNING and job.lease_owner == "reaper" for job in claimed)
    assert await state.queue.claim_expired("reaper", 10, LEASE, T0 + 60) == []


async def test_claim_expired_respects_limit_and_skips_running_jobs(state: State) -> None:
    await enqueue_all(state, *(new_job(request_ttl_seconds=1) for _ in range(3)))
    await claim_one(state)
    assert len(await state.queue.claim_expired("reaper", 1, LEASE, T0 + 5)) == 1
    assert len(await state.queue.claim_expired("reaper", 5, LEASE, T0 + 5)) == 1


# -- retention: purge_finished ------------------------------------------------------------------


async def settled(state: State, status: Status, at: float) -> Invocation:
    """A new job of endpoint "done", run by w1 and finished as ``status`` at ``at``."""
    await state.queue.enqueue(new_job(endpoint_name="done"))
    [job] = await state.queue.claim("done", "w1", 1, LEASE, T0)
    assert await state.queue.finish(job.job_id, "w1", status, None, at)
    finished = await state.queue.get(job.job_id)
    assert finished is not None
    return finished


async def test_purge_finished_deletes_only_final_jobs_finished_before_the_cutoff(
    state: State,
) -> None:
    old = [
        await settled(state, status, T0 + n)
        for n, status in enumerate((Status.COMPLETED, Status.FAILED, Status.EXPIRED))
    ]
    recent = await settled(state, Status.COMPLETED, T0 + 10)
    waiting = new_job(received_at=T0 - 10_000, request_ttl_seconds=60)
    await enqueue_all(state, new_job(received_at=T0 - 10_000), waiting)
    running = await claim_one(state, now=T0 - 5_000)

    assert await state.queue.purge_finished(T0 + 10, 100) == 3

    for job in old:
        assert await state.queue.get(job.job_id) is None
    assert await state.queue.get(recent.job_id) == recent
    assert await state.queue.get(running.job_id) == running
    assert await state.queue.get(waiting.job_id) == queued(waiting)
    assert await state.queue.purge_finished(T0 + 10, 100) == 0
    assert await state.queue.stats("my-endpoint") == QueueStats(
        queued=1, running=1, oldest_received_at=T0 - 10_000
    )


async def test_purge_finished_takes_the_oldest_first_up_to_the_limit(state: State) -> None:
    offsets = (3, 1, 4, 2, 2, 5)  # two finish in the same instant: enqueue order breaks the tie
    jobs = [await settled(state, Status.COMPLETED, T0 + n) for n in offsets]
    by_age = [jobs[1], jobs[3], jobs[4], jobs[0], jobs[2], jobs[5]]

    assert await state.queue.purge_finished(T0 + 100, 0) == 0
    for start, count in ((0, 2), (2, 2), (4, 2)):
        assert await state.queue.purge_finished(T0 + 100, 2) == count
        left = [job for job in by_age if await state.queue.get(job.job_id) is not None]
        assert left == by_age[start + count :]
    assert await state.queue.purge_finished(T0 + 100, 2) == 0


# -- stats and wait -----------------------------------------------------------------------------


async def test_stats_count_live_jobs_of_one_endpoint(state: State) -> None:
    assert await state.queue.stats("my-endpoint") == QueueStats(
        queued=0, running=0, oldest_received_at=None
    )
    await enqueue_all(state, *(new_job(received_at=T0 + n) for n in range(4)))
    await state.queue.enqueue(new_job(endpoint_name="other", received_at=T0 - 100))
    first, _running = await state.queue.claim("my-endpoint", "w1", 2, LEASE, T0)
    await state.queue.finish(first.job_id, "w1", Status.COMPLETED, None, T0)
    stats = await state.queue.stats("MY-ENDPOINT")
    assert stats == QueueStats(queued=2, running=1, oldest_received_at=T0 + 1)


async def test_stats_oldest_looks_at_queued_jobs_too(state: State) -> None:
    await enqueue_all(state, new_job(received_at=T0, priority=0), new_job(received_at=T0 + 1))
    await state.queue.enqueue(new_job(received_at=T0 + 2, priority=9))
    await claim_one(state)
    assert await state.queue.stats("my-endpoint") == QueueStats(
        queued=2, running=1, oldest_received_at=T0
    )


async def test_stats_follow_every_transition_of_a_random_workload(state: State) -> None:
    """Enqueue, claim, finish, release, unclaim, lease expiry, TTL expiry and purge in a seeded
    random order, over endpoints differing only in case: stats always equal a count of the
    jobs themselves."""
    rng = random.Random(7)
    names = ["ep-a", "EP-A", "ep-b", "ep-c"]
    jobs: list[str] = []
    now = T0

    async def check() -> None:
        everything = [await state.queue.get(job_id) for job_id in jobs]
        for key in {name.lower() for name in names}:
            mine = [j for j in everything if j is not None and j.endpoint_name.lower() == key]
            live = [j for j in mine if j.status in (Status.QUEUED, Status.RUNNING)]
            expected = QueueStats(
                queued=sum(j.status is Status.QUEUED for j in mine),
                running=sum(j.status is Status.RUNNING for j in mine),
                oldest_received_at=min((j.received_at for j in live), default=None),
            )
            assert await state.queue.stats(key.upper()) == expected

    for step in range(300):
        now += 1
        action = rng.choice(["enqueue"] * 4 + ["claim", "finish", "give back", "sweep"])
        held = [
            j
            for j in [await state.queue.get(job_id) for job_id in jobs]
            if j is not None and j.status is Status.RUNNING
        ]
        if action == "enqueue":
            job = new_job(endpoint_name=rng.choice(names), received_at=now, request_ttl_seconds=40)
            await state.queue.enqueue(job)
            jobs.append(job.job_id)
        elif action == "claim":
            name = rng.choice(names)
            await state.queue.claim(name, rng.choice(["w1", "w2"]), rng.randint(1, 3), 5, now)
        elif action == "finish" and held:
            job = rng.choice(held)
            status = rng.choice([Status.COMPLETED, Status.FAILED, Status.EXPIRED])
            await state.queue.finish(job.job_id, job.lease_owner or "", status, None, now)
        elif action == "give back" and held:
            job = rng.choice(held)
            if rng.random() < 0.5:
                await state.queue.release(job.job_id, job.lease_owner or "", "died", now)
            else:
                await state.queue.unclaim(job.job_id, job.lease_owner or "")
        elif action == "sweep":
            await state.queue.requeue_expired_leases(now)
            await state.queue.claim_expired("sweeper", 5, 5, now)
            await state.queue.purge_finished(now - 20, 7)
        if step % 10 == 0:
            await check()
    await check()


async def test_wait_returns_after_the_timeout(state: State) -> None:
    started = time.monotonic()
    await state.queue.wait(0.05)
    await state.queue.wait(0.05)
    assert time.monotonic() - started >= 0.09


async def test_wait_wakes_up_on_enqueue(state: State) -> None:
    await state.queue.wait(0)  # forget any earlier ring
    waiter = asyncio.create_task(state.queue.wait(30))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await state.queue.enqueue(new_job())
    await asyncio.wait_for(waiter, 5)


async def test_wait_wakes_up_on_release_and_requeue(state: State) -> None:
    await enqueue_all(state, new_job(), new_job())
    first = await claim_one(state)
    await claim_one(state)
    wakes: list[Callable[[], Awaitable[object]]] = [
        lambda: state.queue.release(first.job_id, "w1", None, T0),
        lambda: state.queue.requeue_expired_leases(T0 + LEASE),
    ]
    for wake in wakes:
        await state.queue.wait(0)
        waiter = asyncio.create_task(state.queue.wait(30))
        await asyncio.sleep(0.01)
        await wake()
        await asyncio.wait_for(waiter, 5)


# -- catalog ------------------------------------------------------------------------------------

DOC: dict[str, Any] = {"ModelName": "m", "Containers": [{"Image": "x", "Env": {"A": "1"}}]}


async def test_catalog_create_get_list(state: State) -> None:
    created = await state.catalog.create(Kind.MODEL, "Model-A", DOC, T0)
    await state.catalog.create(Kind.MODEL, "model-b", {}, T0 + 1)
    await state.catalog.create(Kind.ENDPOINT, "model-a", {"x": None}, T0 + 2)
    assert (created.kind, created.name, created.doc) == (Kind.MODEL, "Model-A", DOC)
    assert (created.created, created.modified) == (T0, T0)
    assert await state.catalog.get(Kind.MODEL, "MODEL-a") == created
    assert [r.name for r in await state.catalog.list(Kind.MODEL)] == ["Model-A", "model-b"]
    assert [r.name for r in await state.catalog.list(Kind.ENDPOINT)] == ["model-a"]
    assert await state.catalog.list(Kind.ENDPOINT_CONFIG) == []
    for name in ["c", "a", "b"]:  # equal creation times: creation order
        await state.catalog.create(Kind.ENDPOINT_CONFIG, name, {}, T0)
    assert [r.name for r in await state.catalog.list(Kind.ENDPOINT_CONFIG)] == ["c", "a", "b"]


async def test_catalog_names_conflict_in_any_case(state: State) -> None:
    await state.catalog.create(Kind.ENDPOINT_CONFIG, "Config", DOC, T0)
    with pytest.raises(errors.Conflict):
        await state.catalog.create(Kind.ENDPOINT_CONFIG, "cOnFiG", {}, T0 + 1)
    assert (await state.catalog.get(Kind.ENDPOINT_CONFIG, "config")).doc == DOC


async def test_catalog_update_replaces_the_doc(state: State) -> None:
    await state.catalog.create(Kind.ENDPOINT, "Ep", DOC, T0)
    updated = await state.catalog.update(Kind.ENDPOINT, "EP", {"Status": "InService"}, T0 + 5)
    assert (updated.name, updated.doc) == ("Ep", {"Status": "InService"})
    assert (updated.created, updated.modified) == (T0, T0 + 5)
    assert await state.catalog.get(Kind.ENDPOINT, "ep") == updated


async def test_catalog_delete(state: State) -> None:
    await state.catalog.create(Kind.MODEL, "Gone", DOC, T0)
    await state.catalog.delete(Kind.MODEL, "GONE")
    assert await state.catalog.list(Kind.MODEL) == []
    await state.catalog.create(Kind.MODEL, "gone", {}, T0 + 1)


async def test_catalog_missing_resources_are_not_found(state: State) -> None:
    await state.catalog.create(Kind.MODEL, "here", {}, T0)
    with pytest.raises(errors.NotFound):
        await state.catalog.get(Kind.ENDPOINT, "here")
    with pytest.raises(errors.NotFound):
        await state.catalog.update(Kind.MODEL, "absent", {}, T0)
    with pytest.raises(errors.NotFound):
        await state.catalog.delete(Kind.MODEL, "absent")


async def test_catalog_docs_are_copies(state: State) -> None:
    doc: dict[str, Any] = {"Tags": [{"Key": "k", "Value": "v"}]}
    created = await state.catalog.create(Kind.MODEL, "m", doc, T0)
    doc["Tags"].append("mutated")
    created.doc["Tags"].append("mutated too")
    assert (await state.catalog.get(Kind.MODEL, "m")).doc == {"Tags": [{"Key": "k", "Value": "v"}]}
