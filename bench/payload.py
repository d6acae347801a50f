"""3. Payload scale: 1 GB in and 1 GB out through the embedded S3 API and the pipeline.

Method. A 1 GiB input file (a random 1 MiB block repeated) is made on the disk under test. The
ceiling is a plain file copy on that disk, ``cp`` then ``sync`` of the copy (the object store
fsyncs what it writes, so the copy does too). ``inferq serve`` runs on core 0 with the
``sized`` model (``size=N`` returns N bytes, anything else returns its length) on core 1;
boto3 (default TransferConfig: 8 MiB multipart, 10 threads) runs in the benchmark process on
core 1. Measured: ``upload_file`` of the input, ``download_file`` of it, an InvokeEndpointAsync
whose InputLocation is that object (202 to output), and one whose model answers 1 GiB (202 to
output). Before each step the server's and the model server's peak RSS (VmHWM) are reset
(``/proc/<pid>/clear_refs``); after it, growth = VmHWM minus the RSS before. The model server
necessarily holds the whole payload (the handler contract passes it as bytes); the server must
stream.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench import models, procs
from bench.context import Context
from bench.record import Section, Target
from bench.rig import ENDPOINT, BenchServer, serving

MiB = 1 << 20
RSS_TARGET = Target(text="<= 64 MB", max_value=64.0)
SPEED_TARGET = Target(text=">= 50% of file copy", min_ratio=0.5)


def make_input(path: Path, size: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as out:
        for _ in range(size // MiB):
            out.write(block)


def plain_copy(source: Path, target: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["cp", str(source), str(target)], check=True)
    subprocess.run(["sync", str(target)], check=True)
    elapsed = time.perf_counter() - started
    target.unlink()
    return elapsed


class Watch:
    """Times one step and the RSS growth it causes in the server and its model server."""

    def __init__(self, server: BenchServer) -> None:
        self.pids = {"server": server.pid, "model server": server.model_pids()[0]}
        self.growth: dict[str, dict[str, float]] = {}

    def step(self, name: str, action: Callable[[], float | None]) -> float:
        before = {role: procs.rss_mb(pid) for role, pid in self.pids.items()}
        for pid in self.pids.values():
            procs.reset_peak_rss(pid)
        started = time.perf_counter()
        elapsed = action() or time.perf_counter() - started
        self.growth[name] = {
            role: procs.peak_rss_mb(pid) - before[role] for role, pid in self.pids.items()
        }
        return elapsed


def invoke_and_wait(server: BenchServer, **params: str | bytes) -> float:
    """Seconds from the 202 to the output of one InvokeEndpointAsync."""
    answer = server.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=ENDPOINT, **params
    )
    accepted = time.time()
    finished, status = server.finished(answer["InferenceId"])
    if status != "Completed":
        raise RuntimeError(f"the payload invocation ended {status}")
    return finished - accepted


def run(ctx: Context) -> Section:
    section = Section(key="payload", title="Payload scale", method=__doc__ or "")
    size = int(ctx.pick(1024, 32)) * MiB
    work = ctx.scratch("payload")
    source = work / "input.bin"
    make_input(source, size)
    copy = plain_copy(source, work / "copy.bin")
    with serving(ctx.scratch("payload-server")) as server, procs.pinned_here(procs.LOAD_CPU):
        server.deploy(models.source("sized"), concurrency=1)
        server.pin_models(procs.LOAD_CPU)
        s3, watch = server.client("s3"), Watch(server)
        steps = {
            "S3 upload_file": lambda: s3.upload_file(str(source), ENDPOINT, "in/big.bin"),
            "S3 download_file": lambda: s3.download_file(
                ENDPOINT, "in/big.bin", str(work / "down.bin")
            ),
            "pipeline, input from S3 (202 -> output)": lambda: invoke_and_wait(
                server, InputLocation=f"s3://{ENDPOINT}/in/big.bin",
                ContentType="application/octet-stream",
            ),
            "pipeline, model answers the size (202 -> output)": lambda: invoke_and_wait(
                server, Body=f"size={size}".encode(), ContentType="text/plain"
            ),
        }  # fmt: skip
        timings = {name: watch.step(name, action) for name, action in steps.items()}
    mb, copy_speed = size / 1e6, size / 1e6 / copy
    for name, seconds in timings.items():
        section.add(f"{name}, {mb:,.0f} MB", mb / seconds, "MB/s", reference=copy_speed,
                    reference_name="cp + sync, same disk", target=SPEED_TARGET)  # fmt: skip
    for name, growth in watch.growth.items():
        section.add(f"server peak RSS growth: {name}", growth["server"], "MB", target=RSS_TARGET)
    worst = max(g["model server"] for g in watch.growth.values())
    section.add("model server peak RSS growth (holds the payload by contract)", worst, "MB")
    section.series = {"size": size, "copy_s": copy, "seconds": timings, "rss": watch.growth}
    return section
