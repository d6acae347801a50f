"""What every benchmark is given: the mode, a scratch directory, and durations for the mode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import procs


@dataclass(frozen=True)
class Context:
    quick: bool
    #: scratch space on the disk under test (data directories, payload files, logs)
    work: Path

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    @property
    def seconds(self) -> float:
        """Length of one load run."""
        return self.pick(5, 1)

    @property
    def peak_connections(self) -> tuple[int, ...]:
        """wrk concurrencies tried for a peak (the best is kept)."""
        return (32,) if self.quick else (16, 64)

    def scratch(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log(self, name: str) -> Path:
        return self.scratch("logs") / name


def pinning() -> str:
    if procs.cpus() < 2:
        return "one core: nothing pinned"
    return (
        f"server under test on core {procs.SERVER_CPU}; load generator, model servers and "
        f"peers' workers on core {procs.LOAD_CPU} (taskset-style affinity, all threads)"
    )
