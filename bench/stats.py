"""Summaries of samples: percentiles by the nearest-rank method, in the unit given."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of unsorted samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    """p50/p90/p99/p99.9 and mean of one set of latencies, in milliseconds."""

    n: int
    mean: float
    p50: float
    p90: float
    p99: float
    p999: float

    @classmethod
    def of_ms(cls, samples: Sequence[float]) -> Latency:
        mean = sum(samples) / len(samples) if samples else math.nan
        p50, p90, p99, p999 = (percentile(samples, q) for q in PERCENTILES)
        return cls(len(samples), mean, p50, p90, p99, p999)

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> Latency:
        return cls.of_ms([s * 1000 for s in samples])

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cdf(samples: Sequence[float], points: int = 200) -> list[tuple[float, float]]:
    """(value, fraction at or below it) pairs for a plot, at most ``points`` of them."""
    ordered = sorted(samples)
    if not ordered:
        return []
    step = max(1, len(ordered) // points)
    pairs = [(ordered[i], (i + 1) / len(ordered)) for i in range(0, len(ordered), step)]
    pairs.append((ordered[-1], 1.0))
    return pairs
