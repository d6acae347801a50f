"""Accepting asynchronous invocations: the hot path behind ``InvokeEndpointAsync``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from inferq import errors, ids
from inferq.domain import locations
from inferq.domain.endpoints import EndpointSpec, EndpointStatus
from inferq.domain.invocations import NewInvocation
from inferq.state.base import JobQueue
from inferq.types import InferenceId, JobId

DEFAULT_TTL_SECONDS = 21600
DEFAULT_INVOCATION_TIMEOUT_SECONDS = 900
#: how long a looked-up endpoint is trusted before it is read again (other processes may change it)
LOOKUP_CACHE_SECONDS = 1.0
ACCEPTING = (EndpointStatus.IN_SERVICE, EndpointStatus.UPDATING)


class EndpointLookup(Protocol):
    async def lookup(self, name: str) -> tuple[EndpointStatus, EndpointSpec]:
        """Raise ``errors.NotFound`` for an unknown endpoint."""
        ...


class EndpointNotFound(errors.NotFound):
    """The endpoint does not exist."""


class EndpointNotAsync(errors.InvalidRequest):
    """The endpoint is not configured for asynchronous inference."""


class EndpointNotRealtime(errors.InvalidRequest):
    """The endpoint serves asynchronous invocations only."""


class EndpointNotReady(errors.InvalidRequest):
    """The endpoint is not in service."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AsyncRequest:
    endpoint_name: str
    input_location: str | None = None
    body: bytes | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    request_ttl_seconds: int | None = None
    invocation_timeout_seconds: int | None = None
    s3_output_path_extension: str | None = None
    filename: str | None = None


class InvocationService:
    def __init__(
        self,
        queue: JobQueue,
        endpoints: EndpointLookup,
        *,
        account_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._endpoints = endpoints
        self._account_id = account_id
        self._clock = clock
        self._cache: dict[str, tuple[float, EndpointStatus, EndpointSpec]] = {}

    async def submit(self, request: AsyncRequest) -> NewInvocation:
        """Queue the request durably; the queued invocation says where its result will appear
        (``inference_id``, ``output_location``, ``failure_location``)."""
        spec = await self._async_endpoint(request.endpoint_name)
        job = self._new_invocation(request, spec)
        await self._queue.enqueue(job)
        return job

    async def realtime_endpoint(self, name: str) -> EndpointSpec:
        """The spec of a real-time endpoint that can serve ``InvokeEndpoint`` now."""
        status, spec = await self._lookup(name)
        if spec.async_config is not None:
            raise EndpointNotRealtime(
                f"Endpoint {name} of account {self._account_id} is configured for asynchronous "
                "inference; call InvokeEndpointAsync instead."
            )
        self._require_accepting(name, status)
        return spec

    def forget(self, endpoint_name: str) -> None:
        """Drop a cached lookup (the endpoint changed in this process)."""
        self._cache.pop(endpoint_name.lower(), None)

    async def _async_endpoint(self, name: str) -> EndpointSpec:
        status, spec = await self._lookup(name)
        if spec.async_config is None:
            raise EndpointNotAsync(
                f"Endpoint {name} of account {self._account_id} is not configured for "
                "asynchronous inference. Use InvokeEndpoint, or create the endpoint from an "
                "EndpointConfig with AsyncInferenceConfig."
            )
        self._require_accepting(name, status)
        return spec

    def _require_accepting(self, name: str, status: EndpointStatus) -> None:
        if status not in ACCEPTING:
            raise EndpointNotReady(
                f"Endpoint {name} of account {self._account_id} is in status {status.value}; "
                "it accepts invocations once InService."
            )

    async def _lookup(self, name: str) -> tuple[EndpointStatus, EndpointSpec]:
        now = self._clock()
        cached = self._cache.get(name.lower())
        if cached is not None and now - cached[0] < LOOKUP_CACHE_SECONDS:
            return cached[1], cached[2]
        try:
            status, spec = await self._endpoints.lookup(name)
        except errors.NotFound:
            raise EndpointNotFound(
                f"Endpoint {name} of account {self._account_id} not found."
            ) from None
        if status in ACCEPTING:  # a refusal is not cached: the endpoint may be ready next time
            self._cache[name.lower()] = (now, status, spec)
        return status, spec

    def _new_invocation(self, request: AsyncRequest, spec: EndpointSpec) -> NewInvocation:
        assert spec.async_config is not None
        job_id = ids.uuid4()
        ext, filename = request.s3_output_path_extension, request.filename
        return NewInvocation(
            job_id=JobId(job_id),
            inference_id=InferenceId(request.inference_id or ids.uuid4()),
            endpoint_name=request.endpoint_name,
            input_location=request.input_location,
            body=request.body,
            content_type=request.content_type,
            accept=request.accept,
            custom_attributes=request.custom_attributes,
            output_location=locations.output_location(
                spec.async_config.s3_output_path, job_id, ext, filename
            ),
            failure_location=locations.failure_location(
                spec.async_config.s3_failure_path, job_id, ext, filename
            ),
            request_ttl_seconds=request.request_ttl_seconds or DEFAULT_TTL_SECONDS,
            invocation_timeout_seconds=(
                request.invocation_timeout_seconds or DEFAULT_INVOCATION_TIMEOUT_SECONDS
            ),
            received_at=self._clock(),
        )
