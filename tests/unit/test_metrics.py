"""The /metrics exposition: SageMaker's backlog gauges per endpoint, in Prometheus text."""

from __future__ import annotations

from typing import Any

from inferq.api.metrics import MetricsApi
from inferq.domain.invocations import NewInvocation
from inferq.state.base import Kind
from inferq.state.memory import MemoryState
from inferq.types import InferenceId, JobId


def invocation(n: int, received_at: float) -> NewInvocation:
    return NewInvocation(
        job_id=JobId(f"job-{n}"),
        inference_id=InferenceId(f"id-{n}"),
        endpoint_name="Busy",
        input_location="s3://b/k",
        body=None,
        content_type=None,
        accept=None,
        custom_attributes=None,
        output_location=f"s3://b/out/{n}.out",
        failure_location=None,
        request_ttl_seconds=21600,
        invocation_timeout_seconds=900,
        received_at=received_at,
    )


async def scrape(app: MetricsApi) -> dict[str, float]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    await app({"type": "http", "method": "GET", "path": "/metrics", "headers": []}, receive, send)
    assert sent[0]["status"] == 200
    text = sent[1]["body"].decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_backlog_without_capacity_and_age() -> None:
    state = MemoryState()
    await state.catalog.create(Kind.ENDPOINT, "Busy", {}, 0.0)
    await state.catalog.create(Kind.ENDPOINT, "idle", {}, 0.0)
    for n in range(3):
        await state.queue.enqueue(invocation(n, received_at=100.0 + n))
    counts = {"Busy": 0, "idle": 2}
    app = MetricsApi(state.queue, state.catalog, counts.__getitem__, clock=lambda: 160.0)

    samples = await scrape(app)

    assert samples['inferq_approximate_backlog_size{endpoint="Busy"}'] == 3
    assert samples['inferq_has_backlog_without_capacity{endpoint="Busy"}'] == 1
    assert samples['inferq_approximate_age_of_oldest_request_seconds{endpoint="Busy"}'] == 60
    assert samples['inferq_approximate_backlog_size_per_instance{endpoint="Busy"}'] == 3
    assert samples['inferq_has_backlog_without_capacity{endpoint="idle"}'] == 0
    assert samples['inferq_instances{endpoint="idle"}'] == 2


async def test_per_instance_backlog_divides_by_instances() -> None:
    state = MemoryState()
    await state.catalog.create(Kind.ENDPOINT, "Busy", {}, 0.0)
    for n in range(4):
        await state.queue.enqueue(invocation(n, received_at=0.0))
    app = MetricsApi(state.queue, state.catalog, lambda _: 2, clock=lambda: 1.0)

    samples = await scrape(app)

    assert samples['inferq_approximate_backlog_size_per_instance{endpoint="Busy"}'] == 2
