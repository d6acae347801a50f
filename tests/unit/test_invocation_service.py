"""InvocationService: which endpoints accept InvokeEndpointAsync, what is queued, and the short
lookup cache on the hot path."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.helpers.worker import T0, Clock

from inferq import errors
from inferq.domain.endpoints import AsyncSpec, EndpointSpec, EndpointStatus
from inferq.services import invocations
from inferq.services.invocations import (
    AsyncRequest,
    EndpointNotAsync,
    EndpointNotFound,
    EndpointNotReady,
    EndpointNotRealtime,
    InvocationService,
)
from inferq.state.memory import MemoryJobQueue

ACCOUNT = "123456789012"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
ASYNC = AsyncSpec(s3_output_path="s3://b/out", s3_failure_path="s3://b/failed", max_concurrency=2)


def spec(name: str, async_config: AsyncSpec | None = ASYNC) -> EndpointSpec:
    return EndpointSpec(name=name, config_name=name, variants=(), async_config=async_config)


class FakeEndpoints:
    """Endpoints by lower-cased name; counts lookups."""

    def __init__(self) -> None:
        self.endpoints: dict[str, tuple[EndpointStatus, EndpointSpec]] = {}
        self.lookups = 0

    def put(
        self, name: str, status: EndpointStatus, async_config: AsyncSpec | None = ASYNC
    ) -> None:
        self.endpoints[name.lower()] = (status, spec(name, async_config))

    async def lookup(self, name: str) -> tuple[EndpointStatus, EndpointSpec]:
        self.lookups += 1
        try:
            return self.endpoints[name.lower()]
        except KeyError:
            raise errors.NotFound(name) from None


@pytest.fixture
def endpoints() -> FakeEndpoints:
    found = FakeEndpoints()
    found.put("Sentiment", EndpointStatus.IN_SERVICE)
    return found


@pytest.fixture
def queue() -> MemoryJobQueue:
    return MemoryJobQueue()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(endpoints: FakeEndpoints, queue: MemoryJobQueue, clock: Clock) -> InvocationService:
    return InvocationService(queue, endpoints, account_id=ACCOUNT, clock=clock)


def request(endpoint: str = "Sentiment", **fields: Any) -> AsyncRequest:
    return AsyncRequest(endpoint_name=endpoint, input_location="s3://b/in/x.json", **fields)


# --- what is accepted and queued ---------------------------------------------------------------


async def test_an_accepted_request_is_queued_with_its_locations_and_defaults(
    service: InvocationService, queue: MemoryJobQueue
) -> None:
    accepted = await service.submit(request())

    [job] = queue.jobs.values()
    assert re.fullmatch(UUID, accepted.inference_id) and re.fullmatch(UUID, job.job_id)
    assert job.inference_id == accepted.inference_id != job.job_id
    assert accepted.output_location == job.output_location == f"s3://b/out/{job.job_id}.out"
    assert accepted.failure_location == job.failure_location
    assert job.failure_location == f"s3://b/failed/{job.job_id}-error.out"
    assert (job.request_ttl_seconds, job.invocation_timeout_seconds) == (21600, 900)
    assert (job.received_at, job.input_location, job.body) == (T0, "s3://b/in/x.json", None)


async def test_what_the_caller_chose_is_kept(
    service: InvocationService, queue: MemoryJobQueue
) -> None:
    accepted = await service.submit(
        request(
            "sentiment",
            inference_id="mine-1",
            content_type="text/csv",
            accept="application/json",
            custom_attributes="a=b",
            request_ttl_seconds=60,
            invocation_timeout_seconds=5,
            s3_output_path_extension="batch",
            filename="r.json",
        )
    )

    [job] = queue.jobs.values()
    assert accepted.inference_id == job.inference_id == "mine-1"
    assert (job.content_type, job.accept, job.custom_attributes) == (
        "text/csv",
        "application/json",
        "a=b",
    )
    assert (job.request_ttl_seconds, job.invocation_timeout_seconds) == (60, 5)
    assert (job.output_location, job.failure_location) == (
        "s3://b/out/batch/r.json",
        "s3://b/failed/batch/r-error.out",
    )
    assert job.endpoint_name == "sentiment", "as the caller spelled it"


async def test_without_a_failure_path_there_is_no_failure_location(
    service: InvocationService, endpoints: FakeEndpoints
) -> None:
    endpoints.put(
        "NoFailures",
        EndpointStatus.IN_SERVICE,
        AsyncSpec(s3_output_path="s3://b/out", s3_failure_path=None, max_concurrency=None),
    )

    accepted = await service.submit(request("NoFailures"))

    assert accepted.failure_location is None


# --- what is refused ---------------------------------------------------------------------------


async def test_an_unknown_endpoint(service: InvocationService, queue: MemoryJobQueue) -> None:
    with pytest.raises(EndpointNotFound) as raised:
        await service.submit(request("nope"))

    assert raised.value.message == f"Endpoint nope of account {ACCOUNT} not found."
    assert queue.jobs == {}


async def test_a_real_time_endpoint(
    service: InvocationService, endpoints: FakeEndpoints, queue: MemoryJobQueue
) -> None:
    endpoints.put("Realtime", EndpointStatus.IN_SERVICE, async_config=None)

    with pytest.raises(EndpointNotAsync) as raised:
        await service.submit(request("Realtime"))

    assert "is not configured for asynchronous inference" in raised.value.message
    assert "AsyncInferenceConfig" in raised.value.message
    assert queue.jobs == {}
    assert (await service.realtime_endpoint("Realtime")).name == "Realtime"


async def test_invoke_endpoint_on_an_async_endpoint_is_refused(service: InvocationService) -> None:
    with pytest.raises(EndpointNotRealtime) as raised:
        await service.realtime_endpoint("Sentiment")

    assert "call InvokeEndpointAsync instead" in raised.value.message


@pytest.mark.parametrize(
    "status", [EndpointStatus.CREATING, EndpointStatus.FAILED, EndpointStatus.DELETING]
)
async def test_an_endpoint_not_in_service(
    service: InvocationService,
    endpoints: FakeEndpoints,
    queue: MemoryJobQueue,
    status: EndpointStatus,
) -> None:
    endpoints.put("Sentiment", status)

    with pytest.raises(EndpointNotReady) as raised:
        await service.submit(request())

    assert f"is in status {status.value}" in raised.value.message
    assert queue.jobs == {}


async def test_an_updating_endpoint_keeps_accepting(
    service: InvocationService, endpoints: FakeEndpoints
) -> None:
    endpoints.put("Sentiment", EndpointStatus.UPDATING)

    assert await service.submit(request())


# --- the lookup cache --------------------------------------------------------------------------


async def test_lookups_are_cached_briefly_whatever_the_names_case(
    service: InvocationService, endpoints: FakeEndpoints, clock: Clock
) -> None:
    await service.submit(request("Sentiment"))
    clock.advance(invocations.LOOKUP_CACHE_SECONDS / 2)
    await service.submit(request("SENTIMENT"))
    assert endpoints.lookups == 1

    clock.advance(invocations.LOOKUP_CACHE_SECONDS)
    await service.submit(request("sentiment"))
    assert endpoints.lookups == 2


async def test_a_change_is_seen_once_the_cache_runs_out(
    service: InvocationService, endpoints: FakeEndpoints, clock: Clock
) -> None:
    await service.submit(request())
    endpoints.put("Sentiment", EndpointStatus.DELETING)
    await service.submit(request())  # still cached

    clock.advance(invocations.LOOKUP_CACHE_SECONDS)
    with pytest.raises(EndpointNotReady):
        await service.submit(request())


async def test_forget_drops_the_cached_lookup_at_once(
    service: InvocationService, endpoints: FakeEndpoints
) -> None:
    await service.submit(request())
    endpoints.put("Sentiment", EndpointStatus.DELETING)

    service.forget("SENTIMENT")

    with pytest.raises(EndpointNotReady):
        await service.submit(request())


async def test_an_endpoint_that_cannot_accept_is_asked_again_each_time(
    service: InvocationService, endpoints: FakeEndpoints
) -> None:
    """A caller retrying while the endpoint is Creating (or before it exists) is accepted as
    soon as it is InService, not a cache period later."""
    endpoints.put("Sentiment", EndpointStatus.CREATING)
    with pytest.raises(EndpointNotReady):
        await service.submit(request())
    with pytest.raises(EndpointNotFound):
        await service.submit(request("Later"))

    endpoints.put("Sentiment", EndpointStatus.IN_SERVICE)
    endpoints.put("Later", EndpointStatus.IN_SERVICE)

    assert await service.submit(request())
    assert await service.submit(request("Later"))
