"""4. Backlog scale: accept rate and claim latency with 0, 100k and 1M requests queued; the
cleanup of finished requests' rows.

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
after the largest level, 200,000 more rows (quick: 10,000) are bulk-filled the same way and
settled as ``finish`` settles them (Completed, ``finished_at`` set), beside the queued backlog;
then ``SQLiteJobQueue.purge_finished`` is called through ``SQLiteState`` (``synchronous=FULL``)
with the sweeper's batch size until none is left: rows deleted per second, the time of each
statement (an accept committed beside one waits for it), and the database's bytes per finished
request before and after, counted in pages in use (``PRAGMA page_count`` less
``freelist_count``): SQLite keeps the pages it frees for new rows and does not shrink the file.
The queued rows are checked to be all there afterwards.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path
from typing import Any

from bench import models, signing, stats, wrk
from bench.context import Context
from bench.record import Section, Target
from bench.rig import ENDPOINT, BenchServer
from bench.state_sqlite import bulk_fill
from inferq.state.sqlite import SQLiteState
from inferq.worker.sweeper import PURGE_BATCH

ACCEPT_TARGET = Target(text=">= 80% of empty queue", min_ratio=0.8)
SCRAPE_TARGET = Target(text="<= 50 ms", max_value=50.0)
#: what ``finish`` writes, for every row after ``seq`` :after
SETTLE = """
UPDATE invocations
SET status = 'Completed', attempts = 1, started_at = received_at,
    finished_at = received_at + 0.01
WHERE seq > :after
"""


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


def pages(db: Path) -> tuple[int, int]:
    """Bytes of the database's pages in use, and of its free pages (kept for reuse)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        count, free, size = (
            connection.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "freelist_count", "page_size")
        )
    return (count - free) * size, free * size


def fill_finished(db: Path, rows: int) -> None:
    """``rows`` more requests, finished: queued by ``bulk_fill``, then settled."""
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        last = connection.execute("SELECT coalesce(max(seq), 0) FROM invocations").fetchone()[0]
    bulk_fill(db, rows, endpoints=1)
    with closing(sqlite3.connect(db, isolation_level=None)) as connection:
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute(SETTLE, {"after": last})


async def purge_all(db: Path) -> tuple[int, list[float]]:
    """Rows deleted by ``purge_finished`` until none is left, and each statement's seconds."""
    state = await SQLiteState.open(db)
    try:
        purged, took = 0, []
        while True:
            started = time.perf_counter()
            count = await state.queue.purge_finished(time.time(), PURGE_BATCH)
            took.append(time.perf_counter() - started)
            purged += count
            if count < PURGE_BATCH:
                return purged, took
    finally:
        await state.close()


def retention(db: Path, rows: int) -> dict[str, Any]:
    """Fill ``rows`` finished requests beside the queued ones, then purge them all."""
    waiting, (base, _) = queued(db), pages(db)
    fill_finished(db, rows)
    filled, _ = pages(db)
    purged, took = asyncio.run(purge_all(db))
    (left, free), after = pages(db), queued(db)
    if (purged, after) != (rows, waiting):
        raise RuntimeError(f"purged {purged} of {rows} finished; {waiting} queued became {after}")
    return {
        "rows": rows,
        "queued": waiting,
        "seconds": took,
        "bytes_before": (filled - base) / rows,
        "bytes_after": (left - base) / rows,
        "file_bytes": db_bytes(db),
        "free_bytes": free,
    }


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
    cleanup = retention(db, 10_000 if ctx.quick else 200_000)
    if not ctx.quick:  # the machine drifts: measure the empty queue again, last, afresh
        again = ctx.scratch("backlog-empty")
        prepare(again)
        results.append({"queued": 0, "again": True, **measure(ctx, again)})
    report(section, results, per_row)
    report_retention(section, cleanup)
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


def report_retention(section: Section, cleanup: dict[str, Any]) -> None:
    rows, waiting = cleanup["rows"], cleanup["queued"]
    section.add("database bytes per finished request", cleanup["bytes_before"], "B",
                note=f"{rows:,} bulk rows settled as Completed beside {waiting:,} queued; "
                "pages in use")  # fmt: skip
    took = cleanup["seconds"]
    lat = stats.Latency.of_seconds(took)
    section.add(f"finished rows deleted/s, {PURGE_BATCH} per statement",
                rows / sum(took), "rows/s",
                note=f"one statement p50 {lat.p50:.2f} ms, p99 {lat.p99:.2f} ms")  # fmt: skip
    mb = 1e6
    section.add("database bytes per finished request after cleanup", cleanup["bytes_after"], "B",
                note=f"pages in use; the file stays {cleanup['file_bytes'] / mb:,.0f} MB: SQLite "
                f"keeps the {cleanup['free_bytes'] / mb:,.0f} MB it freed for new rows, and new "
                "requests fill the index pages these rows left part-empty")  # fmt: skip
    section.series["retention"] = {
        **{k: v for k, v in cleanup.items() if k != "seconds"},
        "batch": PURGE_BATCH,
        "statement_ms": stats.Latency.of_seconds(took).as_dict(),
    }
