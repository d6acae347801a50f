"""Driving wrk with ``replay.lua``: closed loop at a fixed concurrency, or paced at a rate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs
from bench.signing import Request

SCRIPT = Path(__file__).with_name("replay.lua")


class WrkMissing(RuntimeError):
    """wrk is not installed."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    errors: dict[str, int]
    mean_ms: float
    #: (percentile, latency in ms), as wrk's HdrHistogram gives them
    percentiles: list[tuple[float, float]]
    offered_rate: float | None = None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def latency_ms(self, q: float) -> float:
        return next(value for p, value in self.percentiles if p >= q)

    @property
    def failed(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "offered_rate": self.offered_rate,
            "errors": self.errors,
            "mean_ms": round(self.mean_ms, 3),
            "percentiles_ms": self.percentiles,
        }


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    request: Request,
    *,
    seconds: float,
    connections: int,
    rate: float | None = None,
    log: Path | None = None,
    cpu: int | None = procs.LOAD_CPU,
) -> WrkResult:
    """One wrk thread (pinned to ``cpu``) replaying ``request`` for ``seconds``."""
    if not available():
        raise WrkMissing("wrk is not installed (Debian: apt-get install wrk)")
    base = request.url.split("/", 3)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        env = {**os.environ, "BENCH_REQUEST": str(request.lua_file(Path(tmp) / "request.lua"))}
        if rate is not None:
            env["BENCH_RATE"] = str(rate)
        if log is not None:
            env["BENCH_LOG"] = str(log)
        command = [
            "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
            "-s", str(SCRIPT), f"{base[0]}//{base[2]}",
        ]  # fmt: skip
        mask = None if cpu is None else procs.pinned(cpu)
        done = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
            preexec_fn=(lambda: os.sched_setaffinity(0, mask)) if mask else None,
        )
    return _parse(done.stdout, rate)


def _parse(output: str, rate: float | None) -> WrkResult:
    line = next((ln for ln in output.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{output}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["errors"],
        mean_ms=data["mean_us"] / 1000,
        percentiles=[(float(q), us / 1000) for q, us in data["percentiles_us"]],
        offered_rate=rate,
    )


def peak(request: Request, *, seconds: float, connections: tuple[int, ...] = (16, 64)) -> WrkResult:
    """The best closed-loop rate over a few concurrencies (the peak the server sustains)."""
    runs = [run(request, seconds=seconds, connections=c) for c in connections]
    return max(runs, key=lambda result: result.rate)


def warm_up(request: Request) -> None:
    run(request, seconds=1, connections=8)
