"""Rough numbers for the sqlite:// state: enqueue rate and latency, claim latency, and stats()
and claim() against a million queued rows.

    .venv/bin/python bench/state_sqlite.py [--rows 1000000] [--dir /path/on/the/real/disk]

A measurement, not a test: it asserts nothing. The database lives in --dir (default: a temp
directory), so point it at the disk you want to judge; fsync cost dominates enqueue.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from inferq.domain.invocations import NewInvocation
from inferq.state.sqlite import SQLiteState, sql
from inferq.types import InferenceId, JobId

BODY = b'{"inputs": "' + b"x" * 1000 + b'"}'


def new_job(endpoint: str = "bench", received_at: float | None = None) -> NewInvocation:
    job_id = str(uuid.uuid4())
    return NewInvocation(
        job_id=JobId(job_id),
        inference_id=InferenceId(job_id),
        endpoint_name=endpoint,
        input_location=None,
        body=BODY,
        content_type="application/json",
        accept=None,
        custom_attributes=None,
        output_location=f"s3://bench/out/{job_id}.out",
        failure_location=None,
        request_ttl_seconds=21600,
        invocation_timeout_seconds=900,
        received_at=time.time() if received_at is None else received_at,
    )


async def latencies_ms(action: Callable[[], Awaitable[object]], times: int) -> list[float]:
    found = []
    for _ in range(times):
        started = time.perf_counter()
        await action()
        found.append((time.perf_counter() - started) * 1000)
    return found


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered):.2f} ms, p99 {p99:.2f} ms"


async def enqueue_rate(state: SQLiteState, callers: int, per_caller: int) -> None:
    database = state.database
    commits_before = database.commits

    async def caller() -> None:
        for _ in range(per_caller):
            await state.queue.enqueue(new_job())

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(callers)))
    elapsed = time.perf_counter() - started
    total, commits = callers * per_caller, database.commits - commits_before
    print(
        f"enqueue, {callers} concurrent callers: {total / elapsed:,.0f}/s "
        f"({total} in {elapsed:.2f} s, {commits} commits, {total / commits:.1f} per commit)"
    )


async def single_caller(state: SQLiteState) -> None:
    enqueue = await latencies_ms(lambda: state.queue.enqueue(new_job()), 300)
    print(f"enqueue, one caller: {summary(enqueue)}")
    claim = await latencies_ms(lambda: state.queue.claim("bench", "w", 1, 60, time.time()), 300)
    print(f"claim(limit=1), one caller: {summary(claim)}")


def bulk_fill(path: Path, rows: int, endpoints: int) -> None:
    """Insert queued rows fast: one transaction, no fsync, the enqueue query itself."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("BEGIN")
    start = time.time() - rows / 1000
    for n in range(rows):
        job = new_job(f"bench-{n % endpoints}" if endpoints > 1 else "bench", start + n / 1000)
        row = {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}
        row |= {"endpoint_key": job.endpoint_name, "expires_at": job.expires_at, "body": None}
        connection.execute(sql.query("enqueue"), row)
    connection.execute("COMMIT")
    connection.close()


async def at_scale(directory: Path, rows: int) -> None:
    path = directory / "scale.db"
    await (await SQLiteState.open(path)).close()
    started = time.perf_counter()
    bulk_fill(path, rows, endpoints=1)
    print(f"filled {rows:,} queued rows in {time.perf_counter() - started:.1f} s")
    state = await SQLiteState.open(path)
    try:
        stats = await latencies_ms(lambda: state.queue.stats("bench"), 10)
        print(f"stats() at {rows:,} queued: {summary(stats)} -> {await state.queue.stats('bench')}")
        claim = await latencies_ms(lambda: state.queue.claim("bench", "w", 1, 60, time.time()), 200)
        print(f"claim(limit=1) at {rows:,} queued: {summary(claim)}")
        claim10 = await latencies_ms(
            lambda: state.queue.claim("bench", "w", 10, 60, time.time()), 100
        )
        print(f"claim(limit=10) at {rows:,} queued: {summary(claim10)}")
        expired = await latencies_ms(lambda: state.queue.claim_expired("w", 10, 60, 0), 50)
        print(f"claim_expired (none due) at {rows:,} queued: {summary(expired)}")
        requeue = await latencies_ms(lambda: state.queue.requeue_expired_leases(0), 50)
        print(f"requeue_expired_leases (none due): {summary(requeue)}")
        await enqueue_rate(state, callers=64, per_caller=50)
    finally:
        await state.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        state = await SQLiteState.open(Path(directory) / "bench.db")
        try:
            await single_caller(state)
            await enqueue_rate(state, callers=64, per_caller=300)
            await enqueue_rate(state, callers=1, per_caller=1000)
        finally:
            await state.close()
        if args.rows:
            await at_scale(Path(directory), args.rows)


if __name__ == "__main__":
    asyncio.run(main())
