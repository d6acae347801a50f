"""``GET /metrics``: the backlog in Prometheus' text format, for dashboards and autoscalers.

The gauges mirror SageMaker's asynchronous-inference CloudWatch metrics (dimension
EndpointName): ApproximateBacklogSize, ApproximateBacklogSizePerInstance,
ApproximateAgeOfOldestRequest and HasBacklogWithoutCapacity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from inferq.api import asgi
from inferq.state.base import Catalog, JobQueue, Kind, QueueStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GAUGES = (
    ("inferq_approximate_backlog_size", "Requests queued or being processed."),
    ("inferq_approximate_backlog_size_per_instance", "Backlog divided by running instances."),
    ("inferq_approximate_age_of_oldest_request_seconds", "Age of the oldest request."),
    ("inferq_has_backlog_without_capacity", "1 when requests wait and no instance runs."),
    ("inferq_instances", "Model instances running."),
)


class MetricsApi:
    def __init__(
        self,
        queue: JobQueue,
        catalog: Catalog,
        instances: Callable[[str], int],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._queue = queue
        self._catalog = catalog
        self._instances = instances
        self._clock = clock

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        names = [resource.name for resource in await self._catalog.list(Kind.ENDPOINT)]
        stats = await asyncio.gather(*(self._queue.stats(name) for name in names))
        samples = {name: self._samples(name, s) for name, s in zip(names, stats, strict=True)}
        await asgi.respond(send, 200, [("content-type", CONTENT_TYPE)], _render(samples))

    def _samples(self, name: str, stats: QueueStats) -> tuple[float, ...]:
        backlog = stats.queued + stats.running
        instances = self._instances(name)
        oldest = stats.oldest_received_at
        age = max(0.0, self._clock() - oldest) if oldest is not None else 0.0
        return (
            backlog,
            backlog / instances if instances else backlog,
            age,
            1.0 if backlog and not instances else 0.0,
            instances,
        )


def _render(samples: dict[str, tuple[float, ...]]) -> bytes:
    lines: list[str] = []
    for index, (metric, help_text) in enumerate(GAUGES):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        lines += [
            f'{metric}{{endpoint="{_label(name)}"}} {values[index]:g}'
            for name, values in samples.items()
        ]
    return ("\n".join(lines) + "\n").encode()


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
