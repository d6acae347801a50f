"""4. Backlog scale: accept rate and claim latency with 0, 100k and 1M requests queued.

Method. One data directory: ``inferq serve`` deploys the echo endpoint and scales it to 0
instances, then stops. For each level the missing rows are inserted directly into its SQLite
state, while no server runs, with the state backend's own ``enqueue`` query in one transaction
(``bench/state_sqlite.py:bulk_fill``). At each level: the database's bytes per queued request;
claim latency (p50/p99 of ``SQLiteJobQueue.claim`` with limit 1 and 8, through
``SQLiteState`` on that database); then ``inferq serve`` is started on it (core 0) and its
accept rate is measured as in benchmark 1 (wrk on core 1, best of 16 and 64 connections). The
empty queue is measured first and (full mode) again last, on a fresh directory; the reference
is their mean, so that drift of the shared machine does not pass for a backlog effect.
``GET /metrics`` is timed where the server has it; else the row says it is pending. Retention:
what happens to finished rows (counted in the same database).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from bench import models, signing, stats, wrk
from bench.context import Context
from bench.record import Section, Target
from bench.rig import ENDPOINT, BenchServer
from bench.state_sqlite import bulk_fill
from inferq.state.sqlite import SQLiteState

ACCEPT_TARGET = Target(text=">= 80% of empty queue", min_ratio=0.8)
SCRAPE_TARGET = Target(text="<= 50 ms", max_value=50.0)


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def claim_latencies(path: Path, limit: int, times: int) -> list[float]:
    state = await SQLiteState.open(path)
    try:
        found = []
        for _ in range(times):
            started = time.perf_counter()
            await state.queue.claim(ENDPOINT, "bench-claims", limit, 60, time.time())
            found.append(time.perf_counter() - started)
        return found
    finally:
        await state.close()


def scrape_ms(url: str, times: int) -> list[float] | str:
    """Latencies of ``GET /metrics``, or why there is none."""
    found = []
    for _ in range(times):
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(url + "/metrics", timeout=30) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            return f"pending /metrics (the server answers HTTP {exc.code})"
        found.append((time.perf_counter() - started) * 1000)
    return found


def queued(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(
            db.execute("SELECT count(*) FROM invocations WHERE status = 'Queued'").fetchone()[0]
        )


def prepare(data: Path) -> None:
    """The endpoint exists, with no instance: requests only queue."""
    server = BenchServer(data).start()
    try:
        server.deploy(models.source("echo"))
        server.scale(0)
    finally:
        server.stop()


def measure(ctx: Context, data: Path) -> dict[str, Any]:
    """Claim latencies, then accept rate and scrape times of a server on ``data``."""
    claims = {n: asyncio.run(claim_latencies(data / "state.db", n, 100)) for n in (1, 8)}
    server = BenchServer(data).start()
    try:
        request = signing.invoke_async(server.url, ENDPOINT)
        wrk.warm_up(request)
        accept = wrk.peak(request, seconds=ctx.seconds, connections=ctx.peak_connections)
        scrape = scrape_ms(server.url, 20)
    finally:
        server.stop()
    return {"claims": claims, "accept": accept, "scrape": scrape}


def fill(db: Path, rows: int) -> float:
    """Bytes per row of ``rows`` more queued requests."""
    before = db_bytes(db)
    bulk_fill(db, rows, endpoints=1)
    return (db_bytes(db) - before) / rows


def run(ctx: Context) -> Section:
    section = Section(key="backlog", title="Backlog scale", method=__doc__ or "")
    data = ctx.scratch("backlog")
    db = data / "state.db"
    prepare(data)
    levels = (0, 50_000) if ctx.quick else (0, 100_000, 1_000_000)
    results: list[dict[str, Any]] = []
    per_row: float | None = None
    for level in levels:
        missing = level - queued(db)
        if missing > 0:
            per_row = fill(db, missing)
        results.append({"queued": queued(db), **measure(ctx, data)})
    if not ctx.quick:  # the machine drifts: measure the empty queue again, last, afresh
        again = ctx.scratch("backlog-empty")
        prepare(again)
        results.append({"queued": 0, "again": True, **measure(ctx, again)})
    report(section, results, per_row)
    return section


def report(section: Section, results: list[dict[str, Any]], per_row: float | None) -> None:
    empties = [r["accept"].rate for r in results if r["queued"] == 0]
    empty = sum(empties) / len(empties)
    last = max(results, key=lambda r: r["queued"])
    for result in results:
        at = f"{result['queued']:,} queued" + (" (again, last)" if result.get("again") else "")
        section.add(f"accepted/s at {at}", result["accept"].rate, "req/s",
                    reference=empty, reference_name="empty queue (mean of its runs)",
                    target=ACCEPT_TARGET if result is last else None)  # fmt: skip
        for n, samples in result["claims"].items():
            lat = stats.Latency.of_seconds(samples)
            section.add(f"claim(limit={n}) p50 at {at}", lat.p50, "ms",
                        note=f"p99 {lat.p99:.2f} ms")  # fmt: skip
    scrape = last["scrape"]
    at = f"{last['queued']:,} queued"
    if isinstance(scrape, str):
        section.add(f"/metrics scrape at {at}", None, "ms", target=SCRAPE_TARGET, note=scrape)
    else:
        lat = stats.Latency.of_ms(scrape)
        section.add(f"/metrics scrape p50 at {at}", lat.p50, "ms", target=SCRAPE_TARGET,
                    note=f"p99 {lat.p99:.1f} ms")  # fmt: skip
    section.add(
        "database bytes per queued request",
        per_row,
        "B",
        note="bulk rows: inline body of benchmark 1's size or less",
    )
    section.add("completed-request retention and cleanup", None, "",
                note="pending: inferq keeps every finished row; it has no retention setting "
                "or cleanup to measure yet")  # fmt: skip
    section.series = {
        "levels": [
            {"queued": r["queued"], "again": r.get("again", False), "accept": r["accept"].as_dict(),
             "claims_ms": {n: stats.Latency.of_seconds(s).as_dict()
                           for n, s in r["claims"].items()},
             "scrape_ms": r["scrape"]}
            for r in results
        ],
        "bytes_per_row": per_row,
    }  # fmt: skip
