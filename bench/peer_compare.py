"""5. Peers, same machine, same run: Celery on Redis, and moto's server.

Method. (a) Celery on Redis, built as a Python team would without inferq: a Starlette endpoint
served by uvicorn on inferq's stack (``bench/peers/celery_api.py``, core 0) enqueues a Celery
task and answers 202; a Celery worker (prefork pool, concurrency 2 = the core count, the
default) calls the same model server (echo model, same ``/invocations``) and writes the output
file. redis-server runs on loopback on core 1 with its defaults but snapshots off
(``--save ""``): no AOF, so unlike inferq's 202 its 202 is not durable, and it checks no
signature. (b) moto's server (``moto_server``, core 0), the only other SageMaker-shaped server:
a mock, which answers InvokeEndpointAsync without running anything. Accept rate: wrk as in
benchmark 1 (best of 16 and 64 connections, core 1), inferq's endpoint and Celery's worker
stopped so that requests only queue. Accept-to-output latency at light load (one request at a
time, 10 ms apart): from sending the request to the output file appearing on disk, seen with
inotify in the client, for inferq (1 instance, model server on core 1) and Celery (worker and
model server on core 1); moto writes no output.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench import e2e, models, procs, signing, stats, wrk
from bench.context import Context
from bench.inotify import Watcher
from bench.peers import bare, loopback
from bench.record import Section, Target
from bench.rig import ENDPOINT, serving

CELERY_TARGET = Target(text=">= 5x Celery", min_ratio=5.0)


class Missing(RuntimeError):
    """A peer's program is not installed."""


def require(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise Missing(f"{program} is not installed")
    return found


def inferq_side(ctx: Context, count: int) -> tuple[wrk.WrkResult, list[float]]:
    with serving(ctx.scratch("peers-inferq")) as server:
        server.deploy(models.source("echo"))
        server.pin_models(procs.LOAD_CPU)
        request = signing.invoke_async(server.url, ENDPOINT)
        latencies = e2e.inferq_latencies(server, request, count)
        server.scale(0)
        wrk.warm_up(request)
        accept = wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)
    return accept, latencies


@contextmanager
def redis_server(ctx: Context) -> Iterator[str]:
    port = procs.free_port()
    command = [require("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(ctx.scratch("redis"))]
    with procs.running(procs.spawn(command, cpu=procs.LOAD_CPU, log=ctx.log("redis.log"))) as p:
        procs.wait_port(port, process=p)
        yield f"redis://127.0.0.1:{port}/0"


def celery_side(ctx: Context, count: int) -> tuple[wrk.WrkResult, list[float]]:
    outputs = ctx.scratch("peers-celery-output")
    with redis_server(ctx) as redis_url:
        env = {**os.environ, "BENCH_REDIS_URL": redis_url, "BENCH_OUTPUT_DIR": str(outputs)}
        port = procs.free_port()
        api = procs.spawn(bare.command("bench.peers.celery_api", port), cpu=procs.SERVER_CPU,
                          log=ctx.log("celery-api.log"), env=env)  # fmt: skip
        with procs.running(api):
            procs.wait_port(port, process=api)
            request = signing.plain_post(
                f"http://127.0.0.1:{port}/endpoints/{ENDPOINT}/async-invocations"
            )
            wrk.warm_up(request)
            accept = wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)
            _flush(redis_url)
            latencies = celery_latencies(ctx, env, request, outputs, count)
    return accept, latencies


def _flush(redis_url: str) -> None:
    """Drop the tasks the accept run queued: the worker is to see only the latency run's."""
    redis.Redis.from_url(redis_url).flushall()


def celery_latencies(
    ctx: Context, env: dict[str, str], request: signing.Request, outputs: Path, count: int
) -> list[float]:
    echo = models.source("echo")
    with loopback.model_server(echo, ctx.scratch("peers-model"), cpu=procs.LOAD_CPU) as model_url:
        command = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_app", "worker"]
        command += [
            "--pool",
            "prefork",
            "--concurrency",
            str(procs.cpus()),
            "--loglevel",
            "WARNING",
        ]
        worker = procs.spawn(command, cpu=procs.LOAD_CPU, log=ctx.log("celery-worker.log"),
                             env={**env, "BENCH_MODEL_URL": model_url})  # fmt: skip
        with procs.running(worker), Watcher(outputs) as watcher:
            connection = e2e.connect(request)

            def send() -> str:
                answer = json.loads(e2e.post(connection, request).body)
                return Path(answer["OutputLocation"]).name

            e2e.sequential(send, watcher, 5)  # also waits for the worker to be up
            latencies = e2e.sequential(send, watcher, count)
            connection.close()
    return latencies


def moto_side(ctx: Context) -> wrk.WrkResult:
    port = procs.free_port()
    command = [require("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with procs.running(procs.spawn(command, cpu=procs.SERVER_CPU, log=ctx.log("moto.log"))) as p:
        procs.wait_port(port, process=p, timeout=60)
        request = signing.invoke_async(f"http://127.0.0.1:{port}", ENDPOINT)
        wrk.warm_up(request)
        return wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)


def run(ctx: Context) -> Section:
    section = Section(key="peers", title="Peers", method=__doc__ or "")
    count = int(ctx.pick(200, 20))
    inferq_accept, inferq_lat = inferq_side(ctx, count)
    celery_accept, celery_lat = celery_side(ctx, count)
    moto_accept = moto_side(ctx)
    section.add(
        "accepted/s, inferq / Celery on Redis",
        inferq_accept.rate,
        "req/s",
        reference=celery_accept.rate,
        reference_name="Celery on Redis",
        target=CELERY_TARGET,
    )
    section.add(
        "accepted/s, inferq / moto_server",
        inferq_accept.rate,
        "req/s",
        reference=moto_accept.rate,
        reference_name="moto_server (mock)",
        note=f"moto: {moto_accept.failed} errors",
    )
    mine, theirs = stats.Latency.of_seconds(inferq_lat), stats.Latency.of_seconds(celery_lat)
    for q in ("p50", "p99"):
        section.add(
            f"accept-to-output {q}, inferq / Celery",
            getattr(mine, q),
            "ms",
            reference=getattr(theirs, q),
            reference_name=f"Celery on Redis {q}",
        )
    section.add(
        "accept-to-output, moto_server",
        None,
        "ms",
        note="n/a: moto is a mock that runs no model and writes no output",
    )
    section.series = {
        "accept": {"inferq": inferq_accept.as_dict(), "celery": celery_accept.as_dict(),
                   "moto": moto_accept.as_dict()},
        "latency_ms": {"inferq": stats.cdf([s * 1000 for s in inferq_lat]),
                       "celery": stats.cdf([s * 1000 for s in celery_lat])},
        "latency": {"inferq": mine.as_dict(), "celery": theirs.as_dict()},
    }  # fmt: skip
    return section
