"""PNG plots (matplotlib, no display): throughput against load, latency distributions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.record import Section

Series = dict[str, Any]


def _accept(series: Series, axes: list[Axes]) -> None:
    paced = series["paced"]
    offered = [r["offered_rate"] for r in paced]
    axes[0].plot(offered, [r["rate"] for r in paced], "o-", label="inferq, paced")
    axes[0].axhline(series["peak"]["rate"], color="C0", ls="--", label="inferq peak")
    axes[0].axhline(series["bare_peak"]["rate"], color="C3", ls=":", label="bare ASGI ceiling")
    axes[0].set(xlabel="offered req/s", ylabel="accepted req/s", title="Throughput vs load")
    for q, style in ((50, "o-"), (99, "s--")):
        values = [next(ms for p, ms in r["percentiles_ms"] if p >= q) for r in paced]
        axes[1].plot([r["rate"] for r in paced], values, style, label=f"p{q}")
    axes[1].set(xlabel="accepted req/s", ylabel="latency (ms)", yscale="log",
                title="Accept latency vs load")  # fmt: skip
    for ax in axes:
        ax.legend()


def _cdf(ax: Axes, curves: dict[str, list[tuple[float, float]]], title: str) -> None:
    for label, points in curves.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set(xscale="log", xlabel="ms", ylabel="fraction at or below", title=title)
    ax.legend()


def _dispatch(series: Series, axes: list[Axes]) -> None:
    _cdf(axes[0], {"202 -> output, light load": series["light_ms"],
                   "202 -> output, half of peak": series["half_ms"],
                   "direct call + write (ceiling)": series["call_ms"]},
         "Dispatch latency distribution")  # fmt: skip


def _bars(ax: Axes, values: dict[str, float], title: str, unit: str) -> None:
    """Horizontal bars, first value on top."""
    labels = list(values)[::-1]
    colors = [f"C{i}" for i in range(len(values))][::-1]
    ax.barh(labels, [values[label] for label in labels], color=colors)
    ax.set(title=title, xlabel=unit)


def _peers(series: Series, axes: list[Axes]) -> None:
    _bars(axes[0], {k: v["rate"] for k, v in series["accept"].items()}, "Accept rate", "req/s")
    _cdf(axes[1], series["latency_ms"], "Accept-to-output latency, light load")


def _payload(series: Series, axes: list[Axes]) -> None:
    size_mb = series["size"] / 1e6
    speeds = {"cp + sync": size_mb / series["copy_s"]}
    speeds |= {name.split(" (")[0]: size_mb / s for name, s in series["seconds"].items()}
    _bars(axes[0], speeds, "Throughput", "MB/s")
    _bars(axes[1], {k.split(" (")[0]: v["server"] for k, v in series["rss"].items()},
          "Server peak RSS growth", "MB")  # fmt: skip


def _backlog(series: Series, axes: list[Axes]) -> None:
    levels = series["levels"]
    labels = [
        f"{level['queued']:,}" + (" (last)" if level.get("again") else "") for level in levels
    ]
    axes[0].bar(labels, [level["accept"]["rate"] for level in levels])
    axes[0].set(title="Accept rate vs queued requests", xlabel="queued", ylabel="req/s")
    for n in (1, 8):
        # keys are ints when measured, strings once read back from JSON
        claims = [(c.get(n) or c[str(n)])["p50"] for c in (lvl["claims_ms"] for lvl in levels)]
        axes[1].plot(labels, claims, "o-", label=f"claim(limit={n}) p50")
    axes[1].set(title="Claim latency vs queued requests", xlabel="queued", ylabel="ms")
    axes[1].legend()


def _realmodel(series: Series, axes: list[Axes]) -> None:
    _cdf(axes[0], series["latency_ms"], "all-MiniLM-L6-v2: latency distribution")


DRAWERS: dict[str, tuple[int, Callable[[Series, list[Axes]], None]]] = {
    "accept": (2, _accept),
    "dispatch": (1, _dispatch),
    "payload": (2, _payload),
    "backlog": (2, _backlog),
    "peers": (2, _peers),
    "realmodel": (1, _realmodel),
}


def draw(sections: list[Section], directory: Path) -> dict[str, Path]:
    """One PNG per benchmark that ran; their paths by benchmark key."""
    directory.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path] = {}
    for section in sections:
        if section.skipped or section.key not in DRAWERS:
            continue
        panels, drawer = DRAWERS[section.key]
        figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 4), squeeze=False)
        drawer(section.series, list(axes[0]))
        figure.tight_layout()
        path = directory / f"{section.key}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        made[section.key] = path
    return made
