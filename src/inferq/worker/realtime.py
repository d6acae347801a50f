"""Synchronous ``InvokeEndpoint`` on real-time endpoints, served by the same instance pools."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from inferq import errors
from inferq.runners.calls import CallFailed, Calls
from inferq.worker.pool import InstancePool

#: SageMaker gives a real-time container 60 seconds to answer
REALTIME_TIMEOUT_SECONDS = 60.0
#: request headers passed on to the container (lower-case, as the ASGI server gives them)
FORWARDED_HEADERS = frozenset(
    {
        "content-type",
        "accept",
        "x-amzn-sagemaker-custom-attributes",
        "x-amzn-sagemaker-inference-id",
        "x-amzn-sagemaker-target-model",
        "x-amzn-sagemaker-target-variant",
    }
)


class NoCapacity(errors.RunnerError):
    """No model instance is available to serve this endpoint right now."""


@dataclass(frozen=True, slots=True)
class ModelAnswer:
    status: int
    body: bytes
    content_type: str
    variant: str
    custom_attributes: str | None


async def invoke(
    pool: InstancePool, calls: Calls, body: bytes, headers: dict[str, str]
) -> ModelAnswer:
    """Call the least busy instance; raise ``InvocationTimeout`` or ``NoCapacity``."""
    slot = pool.acquire()
    if slot is None:
        raise NoCapacity
    try:
        url = slot.instance.url
        forwarded = {k: v for k, v in headers.items() if k in FORWARDED_HEADERS}
        async with asyncio.timeout(REALTIME_TIMEOUT_SECONDS):
            async with calls.post(url, "/invocations", forwarded, body) as answer:
                return ModelAnswer(
                    status=answer.status,
                    body=await answer.read(),
                    content_type=answer.headers.get("content-type", "application/json"),
                    variant=slot.variant,
                    custom_attributes=answer.headers.get("x-amzn-sagemaker-custom-attributes"),
                )
    except TimeoutError:
        raise errors.InvocationTimeout(
            "Your invocation timed out while waiting for a response from container primary."
        ) from None
    except CallFailed as exc:
        raise NoCapacity(f"The model instance could not be reached: {exc}") from exc
    finally:
        pool.release(slot)
