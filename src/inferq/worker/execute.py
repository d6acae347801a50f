"""Running one claimed invocation to its end: read the input, call the model, publish, settle.

Policy lives here, once, for every backend: TTL expiry before the first run, the invocation
timeout, no retry of model errors (as on AWS), retry of infrastructure faults on another
instance up to ``max_attempts``, and fencing (a result is published only while the lease is
held, so a request that was handed to another worker is not published twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

from inferq import errors
from inferq.aws import errors as aws_errors
from inferq.domain.invocations import Invocation, Status
from inferq.domain.locations import S3Location
from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.storage.base import ObjectStore, PutOptions
from inferq.worker.pool import Slot

log = logging.getLogger("inferq.worker")

CHUNK = 1 << 20
REASON_BODY_LIMIT = 1000


class InputUnavailable(errors.InferqError):
    """The request's input could not be read."""


@dataclass(frozen=True, slots=True)
class Payload:
    body: bytes | AsyncIterator[bytes]
    length: int
    content_type: str | None


class Executor:
    def __init__(
        self,
        queue: JobQueue,
        store: ObjectStore,
        session: aiohttp.ClientSession,
        *,
        worker_id: str,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._store = store
        self._session = session
        self._worker_id = worker_id
        self._settings = settings
        self._clock = clock
        self._buckets: set[str] = set()

    async def run(self, job: Invocation, slot: Slot) -> None:
        """Process a claimed job on ``slot``'s instance. Never raises (but for cancellation)."""
        try:
            await self._run(job, slot)
        except Exception:
            log.exception("invocation_crashed", extra={"inference_id": job.inference_id})
            await self._settle(job, Status.FAILED, "An internal error occurred in inferq.")

    async def expire(self, job: Invocation) -> None:
        reason = (
            f"Request expired: it waited in the queue longer than its RequestTTLSeconds "
            f"({job.request_ttl_seconds} seconds) before a model instance could take it."
        )
        await self._fail(job, Status.EXPIRED, reason)

    async def _run(self, job: Invocation, slot: Slot) -> None:
        if job.attempts == 1 and self._clock() >= job.expires_at:
            await self.expire(job)
            return
        try:
            payload = await self._payload(job)
            async with asyncio.timeout(job.invocation_timeout_seconds):
                await self._call(job, slot, payload)
        except InputUnavailable as exc:
            await self._fail(job, Status.FAILED, exc.message)
        except TimeoutError:
            await self._fail(job, Status.FAILED, _timeout_reason(job))
        except (aiohttp.ClientError, ConnectionError) as exc:
            await self._instance_fault(job, slot, exc)

    async def _payload(self, job: Invocation) -> Payload:
        if job.input_location is None:
            body = job.body or b""
            return Payload(body, len(body), job.content_type)
        location = S3Location.parse(job.input_location)
        try:
            info, chunks = await self._store.get_object(location.bucket, location.key)
        except errors.InferqError as exc:
            raise InputUnavailable(
                f"Failed to download the input from {job.input_location}: {exc.message}"
            ) from exc
        return Payload(chunks, info.size, job.content_type or info.content_type)

    async def _call(self, job: Invocation, slot: Slot, payload: Payload) -> None:
        headers = _model_headers(job, payload)
        url = slot.instance.url + "/invocations"
        async with self._session.post(url, data=payload.body, headers=headers) as response:
            content_type = response.headers.get("Content-Type", "application/octet-stream")
            chunks = response.content.iter_chunked(CHUNK)
            if 200 <= response.status < 300:
                await self._succeed(job, chunks, content_type)
            else:
                await self._model_error(job, response.status, chunks, content_type)

    async def _succeed(self, job: Invocation, chunks: AsyncIterator[bytes], ctype: str) -> None:
        if await self._still_ours(job):
            await self._publish(job.output_location, chunks, ctype)
            await self._settle(job, Status.COMPLETED, None)

    async def _model_error(
        self, job: Invocation, status: int, chunks: AsyncIterator[bytes], ctype: str
    ) -> None:
        head = bytearray()
        async for chunk in chunks:
            head += chunk
            if len(head) > REASON_BODY_LIMIT:
                break
        kind = "client" if status < 500 else "server"
        message = head[:REASON_BODY_LIMIT].decode(errors="replace")
        reason = f'Received {kind} error ({status}) from primary with message "{message}".'
        body = _prepend(bytes(head), chunks)
        await self._fail(job, Status.FAILED, reason, body=body, content_type=ctype)

    async def _instance_fault(self, job: Invocation, slot: Slot, exc: BaseException) -> None:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("instance_fault", extra={"inference_id": job.inference_id, "detail": detail})
        if job.attempts < self._settings.max_attempts:
            await self._queue.release(job.job_id, self._worker_id, detail, self._clock())
            return
        reason = (
            f"The model instance failed while processing this request, {job.attempts} times "
            f"(last: {detail})."
        )
        await self._fail(job, Status.FAILED, reason)

    async def _fail(
        self,
        job: Invocation,
        status: Status,
        reason: str,
        *,
        body: AsyncIterator[bytes] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> None:
        if not await self._still_ours(job):
            return
        if job.failure_location is not None:
            await self._publish(job.failure_location, body or _once(reason.encode()), content_type)
        await self._settle(job, status, reason)

    async def _still_ours(self, job: Invocation) -> bool:
        lease = self._settings.lease_seconds
        held = await self._queue.extend(job.job_id, self._worker_id, lease, self._clock())
        if not held:
            log.warning("lease_lost", extra={"inference_id": job.inference_id})
        return held

    async def _publish(self, uri: str, chunks: AsyncIterator[bytes], content_type: str) -> None:
        location = S3Location.parse(uri)
        await self._ensure_bucket(location.bucket)
        options = PutOptions(content_type=content_type)
        await self._store.put_object(location.bucket, location.key, chunks, options)

    async def _ensure_bucket(self, bucket: str) -> None:
        """Result buckets are created on first use, so a fresh server needs no setup."""
        if bucket in self._buckets:
            return
        try:
            await self._store.head_bucket(bucket)
        except aws_errors.NoSuchBucket:
            with contextlib.suppress(aws_errors.BucketAlreadyOwnedByYou):
                await self._store.create_bucket(bucket)
        self._buckets.add(bucket)

    async def _settle(self, job: Invocation, status: Status, reason: str | None) -> None:
        settled = await self._queue.finish(
            job.job_id, self._worker_id, status, reason, self._clock()
        )
        log.info(
            "invocation_settled",
            extra={"inference_id": job.inference_id, "status": status.value, "held": settled},
        )


def _model_headers(job: Invocation, payload: Payload) -> dict[str, str]:
    headers = {
        "Content-Length": str(payload.length),
        "X-Amzn-SageMaker-Inference-Id": job.inference_id,
    }
    if payload.content_type:
        headers["Content-Type"] = payload.content_type
    if job.accept:
        headers["Accept"] = job.accept
    if job.custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = job.custom_attributes
    return headers


def _timeout_reason(job: Invocation) -> str:
    return (
        "Your invocation timed out while waiting for a response from container primary "
        f"(InvocationTimeoutSeconds: {job.invocation_timeout_seconds})."
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _prepend(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk
