"""Profiles of the scenarios whose targets are missed: ``python -m bench.profile SCENARIO``.

Each scenario runs the server under the same load as its benchmark while ``py-spy record``
samples it (all threads, idle frames left out, 250 Hz) and prints a summary: the share of
samples whose stack passes through each function (inclusive) and ends in it (self). Needs
py-spy (``uv pip install py-spy``; run as root or with ptrace allowed). Scenarios: ``accept``
(wrk closed loop into a 0-instance endpoint), ``drain`` (1 instance working off a backlog),
``upload`` (boto3 upload_file of 512 MiB), ``put`` (curl PUT of 1 GiB to a presigned URL),
``pipeline_in`` (1 GiB InputLocation to the model; ``--target model`` samples the model server).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench import models, procs, signing, wrk
from bench.payload import MiB, make_input
from bench.rig import ENDPOINT, BenchServer, serving

#: py-spy options: all threads; only the thread holding the GIL (where Python CPU time goes);
#: all threads with C frames and idle time (where the wall time goes, GIL released or not)
MODES = {
    "threads": ["--threads"],
    "gil": ["--threads", "--gil"],
    "native": ["--threads", "--native", "--idle"],
}
mode = MODES["gil"]


def record(pid: int, seconds: int, out: Path) -> Path:
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: uv pip install py-spy")
    command = [spy, "record", "-p", str(pid), "-d", str(seconds), "-r", "250", "-f", "raw"]
    command += ["-o", str(out), *mode]
    if "--native" not in mode:  # native unwinding has to pause the process
        command.append("--nonblocking")
    subprocess.run(command, check=True, capture_output=True)
    return out


#: frames every sample of a thread passes through: left out of the inclusive list
ENTRY = ("<frozen runpy>", "click/", "inferq/__main__.py", "inferq/cli.py", "uvloop/__init__",
         "asyncio/runners.py", "threading.py")  # fmt: skip


def _frames(stack: str) -> tuple[str, list[tuple[str, str]]]:
    """(thread name, [(function, file)]) of one collapsed stack."""
    thread, *frames = stack.split(";")
    parsed = []
    for frame in frames:
        function, _, where = frame.rpartition(" (")
        parsed.append((function, where.rsplit(":", 1)[0]))
    return thread.split(": ", 1)[-1], parsed


def summarize(collapsed: Path, top: int = 25) -> str:
    """Shares of the samples per thread, per function (inclusive and self) and per file (self)."""
    threads: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        thread, frames = _frames(stack)
        total += count
        threads[thread.split("-")[0]] += count
        for name in {f"{fn} ({where})" for fn, where in frames if not where.startswith(ENTRY)}:
            inclusive[name] += count
        if frames:
            own[f"{frames[-1][0]} ({frames[-1][1]})"] += count
            files[frames[-1][1]] += count
    sections = [
        ("threads", threads),
        ("inclusive", inclusive),
        ("self", own),
        ("file, self", files),
    ]
    lines = [f"{total} samples"]
    for title, counter in sections:
        lines += ["", f"{title}:"]
        lines += [f"  {n / total:6.1%}  {name}" for name, n in counter.most_common(top)]
    return "\n".join(lines)


#: which process to sample: the server, or its (first) model server
target = ["server"]


def under_load(server: BenchServer, load: Callable[[], object], seconds: int, out: Path) -> Path:
    worker = threading.Thread(target=load)
    worker.start()
    time.sleep(1)
    pid = server.pid if target[0] == "server" else server.model_pids()[0]
    path = record(pid, seconds, out)
    worker.join()
    return path


def accept(server: BenchServer, out: Path) -> Path:
    server.deploy(models.source("echo"))
    server.scale(0)
    request = signing.invoke_async(server.url, ENDPOINT)
    return under_load(server, lambda: wrk.run(request, seconds=12, connections=64), 10, out)


def drain(server: BenchServer, out: Path) -> Path:
    server.deploy(models.source("echo"), concurrency=8)
    server.scale(0)
    wrk.run(signing.invoke_async(server.url, ENDPOINT), seconds=8, connections=16)
    server.scale(1)
    server.pin_models(procs.LOAD_CPU)
    return record(server.pid, 8, out)


def upload(server: BenchServer, out: Path) -> Path:
    source = out.with_suffix(".bin")
    make_input(source, 512 * MiB)
    s3 = server.client("s3")
    s3.create_bucket(Bucket=ENDPOINT)
    load = lambda: s3.upload_file(str(source), ENDPOINT, "big")  # noqa: E731
    return under_load(server, load, 3, out)


def put(server: BenchServer, out: Path) -> Path:
    """One 1 GiB PUT from curl (a presigned URL): the server's ingest path, no Python client."""
    source = out.with_suffix(".bin")
    make_input(source, 1024 * MiB)
    s3 = server.client("s3", signature_version="s3v4")
    s3.create_bucket(Bucket=ENDPOINT)
    url = s3.generate_presigned_url(
        "put_object", Params={"Bucket": ENDPOINT, "Key": "big"}, ExpiresIn=900
    )
    command = ["curl", "-sSf", "-H", "Expect:", "-o", "/dev/null", "-T", str(source), url]
    return under_load(server, lambda: subprocess.run(command, check=True), 2, out)


def pipeline_in(server: BenchServer, out: Path) -> Path:
    """A 1 GiB InputLocation through the dispatcher to the sized model."""
    server.deploy(models.source("sized"), concurrency=1)
    server.pin_models(procs.LOAD_CPU)
    source = out.with_suffix(".bin")
    make_input(source, 1024 * MiB)
    server.client("s3").upload_file(str(source), ENDPOINT, "big")
    runtime = server.client("sagemaker-runtime")
    load = lambda: runtime.invoke_endpoint_async(  # noqa: E731
        EndpointName=ENDPOINT, InputLocation=f"s3://{ENDPOINT}/big"
    )
    return under_load(server, load, 4, out)


SCENARIOS = {
    "accept": accept,
    "drain": drain,
    "upload": upload,
    "put": put,
    "pipeline_in": pipeline_in,
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("scenario", choices=list(SCENARIOS))
    parser.add_argument("--out", type=Path, default=Path("bench/results/profiles"))
    parser.add_argument("--mode", choices=list(MODES), default="gil")
    parser.add_argument("--target", choices=["server", "model"], default="server")
    args = parser.parse_args()
    mode[:] = MODES[args.mode]
    target[:] = [args.target]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as server:
        name = f"{args.scenario}-{args.target}-{args.mode}.txt"
        collapsed = SCENARIOS[args.scenario](server, args.out / name)
    print(summarize(collapsed))


if __name__ == "__main__":
    main()
