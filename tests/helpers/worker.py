"""The worker's surroundings for unit tests: a clock to turn, invocations, and a stand-in model
container (``/ping``, ``/invocations``) served by aiohttp in the test's own event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from inferq.domain.invocations import Invocation, NewInvocation
from inferq.runners.calls import Calls
from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.state.memory import MemoryJobQueue
from inferq.storage.base import ObjectStore
from inferq.storage.memory import MemoryObjectStore
from inferq.types import InferenceId, JobId
from inferq.worker.execute import Executor
from inferq.worker.inputs import InputReader

T0 = 1_700_000_000.0
ENDPOINT = "my-endpoint"
LEASE = 30.0


class Clock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(eq=False)
class FakeInstance:
    """A ``ModelInstance`` at a URL whose life the test controls."""

    url: str
    alive: bool = True

    async def start(self) -> None:
        self.alive = True

    async def stop(self) -> None:
        self.alive = False


def new_job(**changes: Any) -> NewInvocation:
    job_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "job_id": JobId(job_id),
        "inference_id": InferenceId(f"inference-{job_id}"),
        "endpoint_name": ENDPOINT,
        "input_location": None,
        "body": b'{"x": 1}',
        "content_type": "application/json",
        "accept": None,
        "custom_attributes": None,
        "output_location": f"s3://results/out/{job_id}.out",
        "failure_location": f"s3://results/failed/{job_id}-error.out",
        "request_ttl_seconds": 3600,
        "invocation_timeout_seconds": 900,
        "received_at": T0,
    }
    return NewInvocation(**{**fields, **changes})


async def claimed(
    queue: MemoryJobQueue, job: NewInvocation, *, worker: str = "w1", now: float = T0
) -> Invocation:
    """``job`` enqueued (if new) and claimed by ``worker``."""
    if await queue.get(job.job_id) is None:
        await queue.enqueue(job)
    [lease] = await queue.claim(job.endpoint_name, worker, 1, LEASE, now)
    assert lease.job_id == job.job_id
    return lease


def stored(store: MemoryObjectStore, uri: str | None) -> bytes | None:
    """The content of the object at ``s3://bucket/key``, or None."""
    assert uri is not None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return store.objects.get((bucket, key))


@dataclass(frozen=True)
class Call:
    headers: dict[str, str]
    body: bytes


@dataclass
class StubModel:
    """Answers ``/invocations`` with ``status``/``body``/``content_type`` after ``delay``
    seconds, and records every call and the most calls it ever had at once."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    active: int = 0
    peak: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ping", self._ping)
        app.router.add_post("/invocations", self._invoke)
        return app

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def _invoke(self, request: web.Request) -> web.Response:
        self.calls.append(Call(dict(request.headers), await request.read()))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


def body_of(data: bytes) -> AsyncIterator[bytes]:
    """A store body of ``data``."""
    return _one(data)


def new_executor(
    queue: JobQueue,
    store: ObjectStore,
    session: aiohttp.ClientSession,
    *,
    settings: WorkerSettings,
    clock: Callable[[], float],
    worker_id: str = "w1",
) -> Executor:
    """An Executor as bootstrap builds one: its own model-call client, inputs read through
    ``session``."""
    return Executor(
        queue,
        store,
        Calls(),
        inputs=InputReader(store, session),
        worker_id=worker_id,
        settings=settings,
        clock=clock,
    )
