"""The dispatch ceiling: inferq's model server called directly over loopback, one file written
per answer (no queue, no SigV4, no object store, no fsync), by aiohttp on the event loop
inferq's dispatcher uses (uvloop when installed)."""

from __future__ import annotations

import asyncio
import sys
import time
import urllib.request
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from bench import procs

BODY_TYPE = {"Content-Type": "application/json"}
T = TypeVar("T")


@contextmanager
def model_server(
    model_source: str, work: Path, *, cpu: int | None, python: str = sys.executable
) -> Iterator[str]:
    """A standalone ``python -m inferq.modelserver`` for ``model_source``; yields its URL."""
    model_dir = work / "model"
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    (model_dir / "code" / "inference.py").write_text(model_source)
    port = procs.free_port()
    command = [python, "-m", "inferq.modelserver", "--model-dir", str(model_dir)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with procs.running(procs.spawn(command, cpu=cpu, log=work / "model-server.log")) as process:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process.poll)
        yield url


def _wait_healthy(url: str, exited: object, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/ping", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the model server at {url} never became healthy")


async def call_and_write(
    url: str, body: bytes, *, seconds: float, concurrency: int, out: Path
) -> list[float]:
    """Closed loop: ``concurrency`` callers POST /invocations and write each answer to a file;
    the seconds each call-and-write took."""
    out.mkdir(parents=True, exist_ok=True)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller(n: int) -> None:
            count = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(url + "/invocations", data=body, headers=BODY_TYPE) as r:
                    answer = await r.read()
                (out / f"{n}-{count}.out").write_bytes(answer)
                latencies.append(time.perf_counter() - started)
                count += 1

        await asyncio.gather(*(caller(n) for n in range(concurrency)))
    return latencies


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on the event loop inferq's dispatcher runs on (uvloop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def ceiling(
    model_source: str, work: Path, body: bytes, *, seconds: float, concurrency: int = 8
) -> tuple[float, list[float]]:
    """(calls per second at ``concurrency``, latencies in seconds of one caller alone) of the
    direct loopback call plus a file write: model server on the load core, client on the
    server core."""
    with (
        model_server(model_source, work, cpu=procs.LOAD_CPU) as url,
        procs.pinned_here(procs.SERVER_CPU),
    ):
        run_loop(call_and_write(url, body, seconds=1, concurrency=concurrency, out=work / "w"))
        started = time.perf_counter()
        done = run_loop(
            call_and_write(url, body, seconds=seconds, concurrency=concurrency, out=work / "out")
        )
        rate = len(done) / (time.perf_counter() - started)
        alone = run_loop(
            call_and_write(url, body, seconds=seconds / 2, concurrency=1, out=work / "one")
        )
    return rate, alone
