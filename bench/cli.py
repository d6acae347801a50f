"""``python -m bench [--quick] [--only NAMES] [--out DIR]``: run the suite, write the results.

Full mode (the default) regenerates ``bench/RESULTS.md`` (the README's performance section),
``bench/RESULTS.json`` and ``bench/plots/*.png``. ``--quick`` (the CI smoke test) runs every
benchmark briefly at small sizes, skips the real model, and writes only to ``--out``. The exit
status is 1 when a benchmark failed (a missing peer tool included), else 0; missed targets are
results, not failures.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import (
    accept,
    backlog,
    dispatch,
    machine,
    payload,
    peer_compare,
    plots,
    realmodel,
    report,
)
from bench.context import Context
from bench.record import Section

BENCH = Path(__file__).resolve().parent
BENCHMARKS: dict[str, Callable[[Context], Section]] = {
    "accept": accept.run,
    "dispatch": dispatch.run,
    "payload": payload.run,
    "backlog": backlog.run,
    "peers": peer_compare.run,
    "realmodel": realmodel.run,
}
log = logging.getLogger("bench")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help=f"comma-separated subset of {list(BENCHMARKS)}"
    )
    parser.add_argument("--out", type=Path, help="results directory (default bench/results/MODE)")
    parser.add_argument("--work", type=Path, help="scratch directory on the disk to measure")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="measure nothing: rewrite the markdown and plots from a results JSON",
    )
    return parser.parse_args(argv)


def run_one(key: str, ctx: Context) -> tuple[Section, bool]:
    log.info("running %s", key)
    started = time.perf_counter()
    try:
        section = BENCHMARKS[key](ctx)
        ok = True
    except Exception as exc:
        traceback.print_exc()
        section = Section(key=key, title=key, method="", skipped=f"failed: {exc}")
        ok = False
    section.seconds = time.perf_counter() - started
    log.info("%s: %.0f s%s", key, section.seconds, "" if ok else " (FAILED)")
    return section, ok


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.render is not None:
        return render(args.render, args.out)
    keys = [key.strip() for key in args.only.split(",") if key.strip()]
    unknown = set(keys) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {sorted(unknown)}")
    mode = "quick" if args.quick else "full"
    out = args.out or BENCH / "results" / mode
    out.mkdir(parents=True, exist_ok=True)
    described = machine.describe()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="inferq-bench-", dir=args.work) as work:
        ctx = Context(quick=args.quick, work=Path(work))
        outcomes = [run_one(key, ctx) for key in keys]
    sections = [section for section, _ in outcomes]
    described |= {
        "mode": mode,
        "seconds": round(time.perf_counter() - started, 1),
        "load_average_at_end": os.getloadavg()[0],
    }
    publish = mode == "full" and keys == list(BENCHMARKS) and args.out is None
    write(sections, described, out, publish)
    return 0 if all(ok for _, ok in outcomes) else 1


TARGETS = {
    target.text: target
    for target in (
        accept.TARGET, dispatch.P50_TARGET, dispatch.P99_TARGET, dispatch.THROUGHPUT_TARGET,
        payload.RSS_TARGET, payload.SPEED_TARGET, backlog.ACCEPT_TARGET, backlog.SCRAPE_TARGET,
        peer_compare.CELERY_TARGET,
    )
}  # fmt: skip


def render(results: Path, out: Path | None) -> int:
    """Rewrite the reports of a finished run (``bench/RESULTS.json``: the published ones)."""
    sections, described = report.read_json(results, TARGETS)
    publish = out is None and results.resolve() == (BENCH / "RESULTS.json").resolve()
    target = out or (BENCH / "results" / "full" if publish else results.parent)
    target.mkdir(parents=True, exist_ok=True)
    write(sections, described, target, publish)
    return 0


def write(sections: list[Section], described: dict[str, object], out: Path, publish: bool) -> None:
    """results.json, results.md and plots in ``out``; the committed copies when ``publish``."""
    plot_dir = BENCH / "plots" if publish else out / "plots"
    made = plots.draw(sections, plot_dir)
    root = BENCH.parent if publish else out
    links = {key: path.relative_to(root).as_posix() for key, path in made.items()}
    text = report.markdown(sections, described, links)
    (out / "results.md").write_text(text)
    report.write_json(out / "results.json", sections, described)
    if publish:
        (BENCH / "RESULTS.md").write_text(text)
        report.write_json(BENCH / "RESULTS.json", sections, described)
    print(text)
