"""3. Payload scale: 1 GB in and 1 GB out through the embedded S3 API and the pipeline.

Method. A 1 GiB input file (a random 1 MiB block repeated) is made on the disk under test. The
ceiling is a plain file copy on that disk, ``cp`` then ``sync`` of the copy (the object store
fsyncs what it writes, so the copy does too), the median of 2 copies made before the inferq
steps and 2 after them. Every timed step, copies included,
starts after a ``sync`` of the whole machine, so that none pays for another's writeback.
``inferq serve`` runs on core 0 with the ``sized`` model (``size=N`` returns N bytes, anything
else returns its length) on core 1; boto3 (default TransferConfig: 8 MiB multipart, 10 threads)
runs in the benchmark process on core 1. Measured: ``upload_file`` of the input,
``download_file`` of it, an InvokeEndpointAsync whose InputLocation is that object (202 to
output), and one whose model answers 1 GiB (202 to output); then the same object PUT and GET by
curl on presigned URLs (one stream each), which shows the server's share when the Python client
is taken out. Before each step the server's and the model server's peak RSS (VmHWM) are reset
(``/proc/<pid>/clear_refs``); after it, growth = VmHWM minus the RSS before. The model server
necessarily holds the whole payload (the handler contract passes it as bytes); the server must
stream. Beside them, the speed of MD5 over the same bytes on the server's core: S3 makes the ETag
of a single-part object the MD5 of its content, so a PUT can go no faster than that alone.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
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


def md5_speed(source: Path) -> float:
    """MB/s of MD5 over ``source`` on the server's core: the S3 ETag of a single-part object
    is the MD5 of its bytes, so every PUT pays it on top of the copy."""
    with procs.pinned_here(procs.SERVER_CPU), source.open("rb") as data:
        digest, size = hashlib.md5(), 0
        started = time.perf_counter()
        while block := data.read(MiB):
            digest.update(block)
            size += len(block)
        return size / 1e6 / (time.perf_counter() - started)


def plain_copy(source: Path, target: Path) -> float:
    os.sync()  # start from a disk with nothing left to write back, as every step does
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
        os.sync()
        started = time.perf_counter()
        elapsed = action() or time.perf_counter() - started
        self.growth[name] = {
            role: procs.peak_rss_mb(pid) - before[role] for role, pid in self.pids.items()
        }
        return elapsed


def curl(server: BenchServer, method: str, key: str, path: Path) -> Callable[[], None] | None:
    """One streamed transfer by curl to a presigned URL (no Python client in the way), or None
    without curl."""
    if shutil.which("curl") is None:
        return None
    s3 = server.client("s3", signature_version="s3v4")
    operation = "put_object" if method == "PUT" else "get_object"
    url = s3.generate_presigned_url(operation, Params={"Bucket": ENDPOINT, "Key": key})
    transfer = ["-T", str(path), "-o", "/dev/null"] if method == "PUT" else ["-o", str(path)]
    command = ["curl", "-sSf", "-H", "Expect:", *transfer, url]
    mask = procs.pinned(procs.LOAD_CPU)

    def run() -> None:
        subprocess.run(
            command,
            check=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, mask)) if mask else None,
        )

    return run


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
    size, copies = int(ctx.pick(1024, 32)) * MiB, int(ctx.pick(2, 1))
    work = ctx.scratch("payload")
    source = work / "input.bin"
    make_input(source, size)
    copy_times = [plain_copy(source, work / "copy.bin") for _ in range(copies)]
    with serving(ctx.scratch("payload-server")) as server, procs.pinned_here(procs.LOAD_CPU):
        server.deploy(models.source("sized"), concurrency=1)
        server.pin_models(procs.LOAD_CPU)
        s3, watch = server.client("s3"), Watch(server)
        steps: dict[str, Callable[[], float | None] | None] = {
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
            "S3 PUT by curl (one stream, presigned)": curl(server, "PUT", "in/curl.bin", source),
            "S3 GET by curl (presigned)": curl(server, "GET", "in/curl.bin", work / "curl.bin"),
        }  # fmt: skip
        timings = {
            name: watch.step(name, action) for name, action in steps.items() if action is not None
        }
    # the disk's speed drifts: the ceiling is the median of copies made before and after
    copy_times += [plain_copy(source, work / "copy.bin") for _ in range(copies)]
    copy = statistics.median(copy_times)
    mb, copy_speed = size / 1e6, size / 1e6 / copy
    for name, seconds in timings.items():
        section.add(f"{name}, {mb:,.0f} MB", mb / seconds, "MB/s", reference=copy_speed,
                    reference_name="cp + sync, same disk", target=SPEED_TARGET)  # fmt: skip
    md5 = md5_speed(source)
    section.add("MD5 alone on the server's core (the ETag every PUT computes)", md5, "MB/s",
                reference=copy_speed, reference_name="cp + sync, same disk")  # fmt: skip
    for name, growth in watch.growth.items():
        section.add(f"server peak RSS growth: {name}", growth["server"], "MB", target=RSS_TARGET)
    worst = max(g["model server"] for g in watch.growth.values())
    section.add("model server peak RSS growth (holds the payload by contract)", worst, "MB")
    section.series = {
        "size": size, "copy_s": copy, "copies_s": copy_times, "seconds": timings,
        "rss": watch.growth, "md5_mb_s": md5,
    }  # fmt: skip
    return section
