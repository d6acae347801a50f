"""Accept rate and accept-to-output latency of one ``inferq serve`` process.

Method (run: ``uv run python bench/core.py [--seconds 5] [--concurrency 32]``):

1. Start ``inferq serve`` on a fresh data directory and deploy, through boto3, an async endpoint
   whose model returns its input at once (1 instance, MaxConcurrentInvocationsPerInstance 8).
2. **Accept**: scale the endpoint to 0 instances (requests only queue), sign one
   InvokeEndpointAsync request with botocore's SigV4 and replay it (SigV4 allows replay inside
   its 15-minute window) from an aiohttp client at fixed concurrency for N seconds. Every
   answer must be 202; report requests/s and p50/p99 latency. Each 202 is a durable commit.
3. **Drain**: scale back to 1 instance and time how fast the backlog completes (completions/s).
4. **Accept to output**: at light load (one request at a time, 20 ms apart), the time from
   ``received_at`` to ``finished_at`` (output written, then settled) read from the SQLite state.

Client and server share the machine's cores, so absolute numbers are a floor; compare runs
made on the same machine only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).parents[1]))
from tests.helpers.inferq import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    InferqServer,
    deploy_async_endpoint,
)

MODEL = """
def transform_fn(model, data, content_type, accept):
    return data, "application/json"

def model_fn(model_dir):
    return None
"""


def signed_invoke(url: str, endpoint: str) -> tuple[str, dict[str, str]]:
    target = f"{url}/endpoints/{endpoint}/async-invocations"
    request = AWSRequest(
        method="POST",
        url=target,
        data=b'{"x": 1}',
        headers={"X-Amzn-SageMaker-Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "sagemaker", REGION).add_auth(request)
    return target, dict(request.headers.items())


async def replay(
    url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.post(url, data=b'{"x": 1}', headers=headers) as response:
                    await response.read()
                    if response.status != 202:
                        raise RuntimeError(f"{response.status}: {await response.text()}")
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def scale(server: InferqServer, endpoint: str, instances: int) -> None:
    sm = server.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": instances}
        ],
    )
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=endpoint, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )


def pending(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT count(*) FROM invocations WHERE status IN ('Queued', 'InProgress')"
        ).fetchone()
    return int(row[0])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = InferqServer(Path(tmp)).start()
        try:
            deploy_async_endpoint(server, "bench", MODEL, concurrency=8)
            url, headers = signed_invoke(server.url, "bench")
            scale(server, "bench", 0)
            lat = asyncio.run(replay(url, headers, args.seconds, args.concurrency))
            results["accept_per_s"] = len(lat) / args.seconds
            results["accept_p50_ms"] = statistics.median(lat) * 1000
            results["accept_p99_ms"] = percentile(lat, 0.99) * 1000
            db = Path(tmp) / "state.db"
            backlog = pending(db)
            start = time.perf_counter()
            scale(server, "bench", 1)
            while pending(db):
                time.sleep(0.05)
            results["drain_completions_per_s"] = backlog / (time.perf_counter() - start)
            results.update(light_load(server, url, headers, db))
        finally:
            server.stop()
    print(json.dumps({k: round(v, 2) for k, v in results.items()}, indent=2))


def light_load(
    server: InferqServer, url: str, headers: dict[str, str], db: Path
) -> dict[str, float]:
    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                async with session.post(url, data=b'{"x": 1}', headers=headers) as response:
                    await response.read()
                await asyncio.sleep(0.02)

    mark = time.time()
    asyncio.run(run())
    while pending(db):
        time.sleep(0.05)
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT finished_at - received_at FROM invocations WHERE received_at >= ?", (mark,)
        ).fetchall()
    spans = [row[0] for row in rows]
    return {
        "accept_to_output_p50_ms": statistics.median(spans) * 1000,
        "accept_to_output_p99_ms": percentile(spans, 0.99) * 1000,
    }


if __name__ == "__main__":
    main()
