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

from inferq.aws import errors as aws_errors
from inferq.domain.invocations import Invocation, Status
from inferq.domain.locations import S3Location
from inferq.runners.calls import Calls
from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.storage.base import ObjectStore, PutOptions
from inferq.worker.inputs import InputReader, InputUnavailable, Payload
from inferq.worker.leases import Leases
from inferq.worker.pool import Slot

log = logging.getLogger("inferq.worker")

CHUNK = 1 << 20
REASON_BODY_LIMIT = 1000


Verdict = tuple[Status, str | None]


@dataclass(slots=True)
class _Attempt:
    #: how the invocation ended, once it has (its result published)
    verdict: Verdict | None = None


class Executor:
    def __init__(
        self,
        queue: JobQueue,
        store: ObjectStore,
        calls: Calls,
        *,
        inputs: InputReader,
        worker_id: str,
        settings: WorkerSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._store = store
        self._calls = calls
        self._inputs = inputs
        self._worker_id = worker_id
        self._settings = settings
        self._clock = clock
        self._buckets: set[str] = set()
        #: leases this worker holds; the dispatcher and the sweeper record grants and renewals
        self.leases = Leases(margin_seconds=settings.lease_seconds / 3)

    async def run(self, job: Invocation, slot: Slot) -> None:
        """Process a claimed job on ``slot``'s instance. Never raises (but for cancellation)."""
        try:
            await self._run(job, slot)
        except Exception:
            log.exception("invocation_crashed", extra={"inference_id": job.inference_id})
            await self._crashed(job)

    async def _crashed(self, job: Invocation) -> None:
        """Fail where the caller looks (the failure object, e.g. when the output could not be
        stored), or at least in the queue when the store takes nothing."""
        reason = "An internal error occurred in inferq."
        try:
            await self._fail(job, Status.FAILED, reason)
        except Exception:
            log.exception("failure_unpublished", extra={"inference_id": job.inference_id})
            await self._settle(job, Status.FAILED, reason)

    async def expire(self, job: Invocation) -> None:
        reason = (
            f"Request expired: it waited in the queue longer than its RequestTTLSeconds "
            f"({job.request_ttl_seconds} seconds) before a model instance could take it."
        )
        await self._fail(job, Status.EXPIRED, reason)

    def claimed(self, jobs: list[Invocation], now: float) -> None:
        """Record leases just granted at ``now`` (the same ``now`` the claim was given, so the
        expiry we believe never runs later than the database's)."""
        for job in jobs:
            self.leases.granted(job.job_id, now + self._settings.lease_seconds)

    async def abandon(self, job: Invocation) -> None:
        """Fail a claimed request whose endpoint was deleted before it ran."""
        reason = f"Endpoint {job.endpoint_name} was deleted before this request could run."
        await self._fail(job, Status.FAILED, reason)

    async def _run(self, job: Invocation, slot: Slot) -> None:
        if job.attempts == 1 and self._clock() >= job.expires_at:
            await self.expire(job)
            return
        attempt = _Attempt()
        try:
            payload = await self._payload(job)
            async with asyncio.timeout(job.invocation_timeout_seconds):
                await self._call(job, slot, payload, attempt)
        except InputUnavailable as exc:
            attempt.verdict = await self._failed(job, exc.message)
        except TimeoutError:
            if attempt.verdict is None:  # not if it struck after the result was published
                attempt.verdict = await self._failed(job, _timeout_reason(job))
        except ConnectionError as exc:  # the call (CallFailed); input failures are InputUnavailable
            attempt.verdict = await self._instance_fault(job, exc)
        # settled outside the invocation timeout: a result once published stays the result
        if attempt.verdict is not None:
            await self._settle(job, *attempt.verdict)

    async def _payload(self, job: Invocation) -> Payload:
        if job.input_location is None:
            body = job.body or b""
            return Payload(body, len(body), job.content_type)
        found = await self._inputs.open(job.input_location)
        return Payload(found.body, found.length, job.content_type or found.content_type)

    async def _call(self, job: Invocation, slot: Slot, payload: Payload, attempt: _Attempt) -> None:
        headers = _model_headers(job, payload)
        url = slot.instance.url
        body, length = payload.body, payload.length
        async with self._calls.post(url, "/invocations", headers, body, length=length) as answer:
            content_type = answer.headers.get("content-type", "application/octet-stream")
            chunks = answer.chunks()
            if 200 <= answer.status < 300:
                attempt.verdict = await self._succeeded(job, chunks, content_type)
            else:
                attempt.verdict = await self._model_error(job, answer.status, chunks, content_type)

    async def _succeeded(
        self, job: Invocation, chunks: AsyncIterator[bytes], ctype: str
    ) -> Verdict | None:
        if not await self._still_ours(job):
            return None
        await self._publish(job.output_location, chunks, ctype)
        return Status.COMPLETED, None

    async def _model_error(
        self, job: Invocation, status: int, chunks: AsyncIterator[bytes], ctype: str
    ) -> Verdict | None:
        head = bytearray()
        async for chunk in chunks:
            head += chunk
            if len(head) > REASON_BODY_LIMIT:
                break
        kind = "client" if status < 500 else "server"
        message = head[:REASON_BODY_LIMIT].decode(errors="replace")
        reason = f'Received {kind} error ({status}) from primary with message "{message}".'
        body = _prepend(bytes(head), chunks)
        return await self._failed(job, reason, body=body, content_type=ctype)

    async def _instance_fault(self, job: Invocation, exc: BaseException) -> Verdict | None:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        log.warning("instance_fault", extra={"inference_id": job.inference_id, "detail": detail})
        if job.attempts < self._settings.max_attempts:
            self.leases.dropped(job.job_id)
            await self._queue.release(job.job_id, self._worker_id, detail, self._clock())
            return None
        reason = (
            f"The model instance failed while processing this request, {job.attempts} times "
            f"(last: {detail})."
        )
        return await self._failed(job, reason)

    async def _fail(self, job: Invocation, status: Status, reason: str) -> None:
        if await self._failed(job, reason) is not None:
            await self._settle(job, status, reason)

    async def _failed(
        self,
        job: Invocation,
        reason: str,
        *,
        body: AsyncIterator[bytes] | None = None,
        content_type: str = "text/plain; charset=utf-8",
    ) -> Verdict | None:
        """Publish the failure object; the verdict to settle, or None when the lease is lost."""
        if not await self._still_ours(job):
            return None
        if job.failure_location is not None:
            await self._publish(job.failure_location, body or _once(reason.encode()), content_type)
        return Status.FAILED, reason

    async def _still_ours(self, job: Invocation) -> bool:
        now = self._clock()
        if self.leases.surely_held(job.job_id, now):
            return True
        lease = self._settings.lease_seconds
        held = await self._queue.extend(job.job_id, self._worker_id, lease, now)
        if held:
            self.leases.granted(job.job_id, now + lease)
        else:
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
        self.leases.dropped(job.job_id)
        log.debug(
            "invocation_settled",
            extra={"inference_id": job.inference_id, "status": status.value, "held": settled},
        )


def _model_headers(job: Invocation, payload: Payload) -> dict[str, str]:
    headers: dict[str, str] = {"X-Amzn-SageMaker-Inference-Id": job.inference_id}
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
