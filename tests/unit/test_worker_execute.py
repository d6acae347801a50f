"""Executor: one claimed invocation from input to settlement, against the in-memory backends and
a stand-in model served in-process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from tests.helpers.web import breaking_server, serving
from tests.helpers.worker import (
    LEASE,
    T0,
    Clock,
    FakeInstance,
    StubModel,
    body_of,
    claimed,
    new_executor,
    new_job,
    stored,
)

from inferq.domain.invocations import Invocation, NewInvocation, Status
from inferq.errors import StorageError
from inferq.settings import WorkerSettings
from inferq.state.memory import MemoryJobQueue
from inferq.storage.base import ObjectInfo, PutOptions
from inferq.storage.memory import MemoryObjectStore
from inferq.worker.execute import Executor
from inferq.worker.pool import Slot

SETTINGS = WorkerSettings(lease_seconds=LEASE, max_attempts=3)


@dataclass
class World:
    queue: MemoryJobQueue
    store: MemoryObjectStore
    model: StubModel
    clock: Clock
    executor: Executor
    slot: Slot

    async def run(self, job: NewInvocation, *, slot: Slot | None = None) -> Invocation:
        """Claim ``job`` (enqueueing it if new), run it, and return what the queue holds."""
        lease = await claimed(self.queue, job, now=self.clock())
        await self.executor.run(lease, slot or self.slot)
        settled = await self.queue.get(job.job_id)
        assert settled is not None
        return settled


@asynccontextmanager
async def world_with(store: MemoryObjectStore) -> AsyncIterator[World]:
    queue, model, clock = MemoryJobQueue(), StubModel(), Clock()
    async with serving(model.app()) as url, aiohttp.ClientSession() as session:
        executor = new_executor(queue, store, session, settings=SETTINGS, clock=clock)
        slot = Slot(instance=FakeInstance(url), variant="AllTraffic", capacity=2)
        yield World(queue, store, model, clock, executor, slot)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with world_with(MemoryObjectStore()) as made:
        yield made


def dead_slot() -> Slot:
    """An instance whose port nobody listens on: every call is a connection error."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return Slot(instance=FakeInstance(f"http://127.0.0.1:{port}"), variant="v", capacity=1)


async def content_type(store: MemoryObjectStore, uri: str | None) -> str:
    assert uri is not None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return (await store.head_object(bucket, key)).content_type


# --- success -----------------------------------------------------------------------------------


async def test_the_models_answer_is_the_output_with_its_content_type(world: World) -> None:
    world.model.body, world.model.content_type = b"label,score\ncat,0.9\n", "text/csv"
    job = new_job(accept="text/csv", custom_attributes="trace=1")

    settled = await world.run(job)

    assert settled.status is Status.COMPLETED and settled.failure_reason is None
    assert stored(world.store, job.output_location) == b"label,score\ncat,0.9\n"
    assert await content_type(world.store, job.output_location) == "text/csv"
    assert stored(world.store, job.failure_location) is None
    [call] = world.model.calls
    assert call.body == b'{"x": 1}'
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["Content-Length"] == "8"
    assert call.headers["Accept"] == "text/csv"
    assert call.headers["X-Amzn-SageMaker-Custom-Attributes"] == "trace=1"
    assert call.headers["X-Amzn-SageMaker-Inference-Id"] == job.inference_id


async def test_an_input_object_is_sent_with_its_content_type_unless_the_request_names_one(
    world: World,
) -> None:
    await world.store.create_bucket("inputs")
    options = PutOptions(content_type="application/x-npy")
    await world.store.put_object("inputs", "a.npy", body_of(b"\x93NUMPY"), options)
    untyped = new_job(input_location="s3://inputs/a.npy", body=None, content_type=None)
    typed = new_job(input_location="s3://inputs/a.npy", body=None, content_type="text/plain")

    await world.run(untyped)
    await world.run(typed)

    first, second = world.model.calls
    assert (first.body, first.headers["Content-Type"]) == (b"\x93NUMPY", "application/x-npy")
    assert (second.body, second.headers["Content-Type"]) == (b"\x93NUMPY", "text/plain")


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "kind"), [(400, "client"), (503, "server")])
async def test_a_model_error_writes_the_models_body_to_the_failure_location_only(
    world: World, status: int, kind: str
) -> None:
    world.model.status, world.model.body = status, b'{"message": "bad tensor shape"}'
    job = new_job()

    settled = await world.run(job)

    assert settled.status is Status.FAILED
    assert stored(world.store, job.failure_location) == b'{"message": "bad tensor shape"}'
    assert await content_type(world.store, job.failure_location) == "application/json"
    assert stored(world.store, job.output_location) is None
    assert settled.failure_reason == (
        f"Received {kind} error ({status}) from primary with message "
        '"{"message": "bad tensor shape"}".'
    )
    assert len(world.model.calls) == 1, "model errors are not retried"


async def test_a_long_model_error_is_kept_whole_in_the_failure_object(world: World) -> None:
    world.model.status, world.model.body = 500, b"x" * 3_000_000

    job = new_job()
    settled = await world.run(job)

    assert stored(world.store, job.failure_location) == b"x" * 3_000_000
    assert settled.failure_reason is not None and len(settled.failure_reason) < 1100


async def test_a_request_past_its_ttl_expires_without_calling_the_model(world: World) -> None:
    job = new_job(request_ttl_seconds=60)
    world.clock.advance(61)

    settled = await world.run(job)

    assert settled.status is Status.EXPIRED
    assert world.model.calls == []
    failure = stored(world.store, job.failure_location)
    assert failure is not None and b"RequestTTLSeconds (60 seconds)" in failure
    assert settled.failure_reason == failure.decode()
    assert stored(world.store, job.output_location) is None


async def test_a_retried_request_is_not_expired_by_its_ttl(world: World) -> None:
    """The TTL bounds the wait for a first run; a run interrupted by a dying instance goes on."""
    job = new_job(request_ttl_seconds=60)
    await world.run(job, slot=dead_slot())
    world.clock.advance(61)

    settled = await world.run(job)

    assert settled.status is Status.COMPLETED and settled.attempts == 2


async def test_a_model_slower_than_the_invocation_timeout_fails_the_request(world: World) -> None:
    world.model.delay = 3
    job = new_job(invocation_timeout_seconds=1)

    settled = await world.run(job)

    assert settled.status is Status.FAILED
    failure = stored(world.store, job.failure_location)
    assert failure is not None and b"timed out" in failure
    assert b"(InvocationTimeoutSeconds: 1)" in failure
    assert stored(world.store, job.output_location) is None


async def test_an_input_that_is_not_there_fails_without_calling_the_model(world: World) -> None:
    await world.store.create_bucket("inputs")
    job = new_job(input_location="s3://inputs/missing.json", body=None)

    settled = await world.run(job)

    assert settled.status is Status.FAILED
    assert world.model.calls == []
    failure = stored(world.store, job.failure_location)
    assert failure is not None
    assert failure.startswith(b"Failed to download the input from s3://inputs/missing.json: ")


async def test_without_a_failure_path_a_failure_is_only_recorded(world: World) -> None:
    world.model.status = 500
    job = new_job(failure_location=None)

    settled = await world.run(job)

    assert settled.status is Status.FAILED and settled.failure_reason
    assert world.store.objects == {}


# --- instance faults and retries ---------------------------------------------------------------


async def test_an_instance_fault_gives_the_request_back_until_max_attempts(world: World) -> None:
    job = new_job()

    for attempt in (1, 2):
        settled = await world.run(job, slot=dead_slot())
        assert (settled.status, settled.attempts) == (Status.QUEUED, attempt)
        assert settled.lease_owner is None
        assert "CallFailed: cannot connect to" in (settled.failure_reason or "")
    settled = await world.run(job, slot=dead_slot())

    assert (settled.status, settled.attempts) == (Status.FAILED, 3)
    assert settled.failure_reason is not None
    assert "failed while processing this request, 3 times" in settled.failure_reason
    failure = stored(world.store, job.failure_location)
    assert failure == settled.failure_reason.encode()
    assert stored(world.store, job.output_location) is None


async def test_a_request_given_back_succeeds_on_a_live_instance(world: World) -> None:
    job = new_job()
    await world.run(job, slot=dead_slot())

    settled = await world.run(job)

    assert (settled.status, settled.attempts) == (Status.COMPLETED, 2)
    assert stored(world.store, job.output_location) == b'{"ok": true}'


# --- fencing -----------------------------------------------------------------------------------


async def taken_over(world: World, job: NewInvocation) -> Invocation:
    """``job`` claimed by w1 (this executor), whose lease then ran out and went to w2."""
    lease = await claimed(world.queue, job, now=world.clock())
    world.clock.advance(LEASE + 1)
    assert await world.queue.requeue_expired_leases(world.clock()) == 1
    await claimed(world.queue, job, worker="w2", now=world.clock())
    return lease


@pytest.mark.parametrize("model_status", [200, 500])
async def test_a_worker_that_lost_its_lease_publishes_nothing(
    world: World, model_status: int
) -> None:
    world.model.status = model_status
    job = new_job()
    stale = await taken_over(world, job)

    await world.executor.run(stale, world.slot)

    assert world.store.objects == {}
    now = await world.queue.get(job.job_id)
    assert now is not None and (now.status, now.lease_owner) == (Status.RUNNING, "w2")


async def test_a_worker_that_lost_its_lease_does_not_expire_the_request(world: World) -> None:
    job = new_job(request_ttl_seconds=60)
    stale = await taken_over(world, job)

    await world.executor.expire(stale)

    assert world.store.objects == {}
    now = await world.queue.get(job.job_id)
    assert now is not None and now.lease_owner == "w2"


async def test_the_lease_is_renewed_when_publishing(world: World) -> None:
    job = new_job()
    lease = await claimed(world.queue, job, now=world.clock())
    world.clock.advance(LEASE - 1)  # nearly run out, still ours

    await world.executor.run(lease, world.slot)

    settled = await world.queue.get(job.job_id)
    assert settled is not None and settled.status is Status.COMPLETED
    assert settled.finished_at == T0 + LEASE - 1


# --- inferq's own faults -----------------------------------------------------------------------


class FullDisk(MemoryObjectStore):
    """Refuses to store anything under ``prefixes``, as a full disk would."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self._refused = prefixes

    async def put_object(
        self, bucket: str, key: str, body: AsyncIterator[bytes], options: PutOptions
    ) -> ObjectInfo:
        if key.startswith(self._refused):
            raise StorageError("No space left on device")
        return await super().put_object(bucket, key, body, options)


async def test_an_output_that_cannot_be_stored_fails_the_request_visibly() -> None:
    """The caller polls both locations: a failure must land where it looks."""
    job = new_job()
    async with world_with(FullDisk("out/")) as world:
        settled = await world.run(job)

    assert settled.status is Status.FAILED
    assert stored(world.store, job.output_location) is None
    failure = stored(world.store, job.failure_location)
    assert failure is not None and failure.decode() == settled.failure_reason


async def test_a_request_is_settled_even_when_nothing_can_be_stored() -> None:
    job = new_job()
    async with world_with(FullDisk("out/", "failed/")) as world:
        settled = await world.run(job)

    assert (settled.status, settled.failure_reason) == (
        Status.FAILED,
        "An internal error occurred in inferq.",
    )
    assert world.store.objects == {}


async def test_an_input_that_breaks_while_sent_fails_the_request_not_the_instance(
    world: World,
) -> None:
    """The model call had started when the input's source hung up: the request fails with the
    input's reason at once, and is not retried as if the model instance had died."""

    async with breaking_server() as url:
        job = new_job(input_location=url, body=None)
        settled = await asyncio.wait_for(world.run(job), 10)

    assert (settled.status, settled.attempts) == (Status.FAILED, 1)
    failure = stored(world.store, job.failure_location)
    assert failure is not None
    assert failure.startswith(f"Reading the input from {url} failed part-way".encode())
