"""What only sqlite:// has: a schema and migrations, files that outlive processes, group commit."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from inferq import errors
from inferq.domain.invocations import NewInvocation, Status
from inferq.state.base import Kind, QueueStats
from inferq.state.sqlite import SQLiteState, sql
from inferq.state.sqlite.migrate import migrate
from inferq.state.sqlite.state import path_from_url
from inferq.types import InferenceId, JobId

T0 = 1_700_000_000.0


def new_job(**changes: Any) -> NewInvocation:
    job_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "job_id": JobId(job_id),
        "inference_id": InferenceId(job_id),
        "endpoint_name": "ep",
        "input_location": None,
        "body": b"payload",
        "content_type": None,
        "accept": None,
        "custom_attributes": None,
        "output_location": f"s3://out/{job_id}.out",
        "failure_location": None,
        "request_ttl_seconds": 3600,
        "invocation_timeout_seconds": 900,
        "received_at": T0,
    }
    return NewInvocation(**{**fields, **changes})


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def state(db_path: Path) -> AsyncIterator[SQLiteState]:
    opened = await SQLiteState.open(db_path)
    yield opened
    await opened.close()


# -- schema and migrations ----------------------------------------------------------------------


def schema_objects(connection: sqlite3.Connection) -> set[tuple[str, str, str, str]]:
    """Every table and index, with its SQL stripped of comments and spacing."""
    rows = connection.execute(
        "SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master "
        "WHERE name != 'schema_migrations' AND name NOT LIKE 'sqlite_autoindex_schema_%'"
    )
    return {(kind, name, table, normalized(text)) for kind, name, table, text in rows}


def normalized(text: str) -> str:
    return " ".join(re.sub(r"--[^\n]*", "", text).split())


async def test_migrations_build_exactly_the_schema(db_path: Path, tmp_path: Path) -> None:
    await (await SQLiteState.open(db_path)).close()
    with closing(sqlite3.connect(tmp_path / "ref.db")) as reference:
        reference.executescript(sql.schema())
        expected = schema_objects(reference)
    with closing(sqlite3.connect(db_path)) as migrated:
        assert schema_objects(migrated) == expected
    assert len(expected) > 5


async def test_reopening_applies_no_migration_twice(db_path: Path) -> None:
    await (await SQLiteState.open(db_path)).close()
    await (await SQLiteState.open(db_path)).close()
    with closing(sqlite3.connect(db_path, isolation_level=None)) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_migrations")]
        assert versions == [migration.version for migration in sql.migrations()]
        assert migrate(connection) == []


async def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    await (await SQLiteState.open(db_path)).close()
    with closing(sqlite3.connect(db_path)) as connection, connection:
        connection.execute(sql.query("record_migration"), (9999, "9999_future.sql", T0))
    with pytest.raises(errors.ConfigError, match="9999"):
        await SQLiteState.open(db_path)


async def test_a_database_of_an_older_version_is_brought_up_to_date(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = sql.migrations()[:1]
    with monkeypatch.context() as patch:
        patch.setattr(sql, "migrations", lambda: first)
        old = await SQLiteState.open(db_path)
        await old.queue.enqueue(new_job())
        [job] = await old.queue.claim("ep", "w", 1, 30, T0)
        await old.queue.finish(job.job_id, "w", Status.COMPLETED, None, T0 + 1)
        await old.close()

    with closing(sqlite3.connect(db_path, isolation_level=None)) as connection:
        assert migrate(connection) == [m.version for m in sql.migrations()[1:]]
    state = await SQLiteState.open(db_path)
    assert await state.queue.purge_finished(T0 + 2, 10) == 1
    await state.close()


async def test_the_queue_counts_of_an_older_database_are_filled_in(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0003 adds trigger-kept counts: rows queued and running before it are counted too."""
    before_counts = [m for m in sql.migrations() if m.version < 3]
    with monkeypatch.context() as patch:
        patch.setattr(sql, "migrations", lambda: before_counts)
        old = await SQLiteState.open(db_path)
        for n in range(5):
            await old.queue.enqueue(new_job(endpoint_name="Ep", received_at=T0 + n))
        await old.queue.claim("ep", "w", 2, 30, T0)
        await old.close()
    state = await SQLiteState.open(db_path)
    assert await state.queue.stats("EP") == QueueStats(queued=3, running=2, oldest_received_at=T0)
    await state.queue.enqueue(new_job(endpoint_name="ep", received_at=T0 + 9))
    assert (await state.queue.stats("ep")).queued == 4
    await state.close()


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [migration.version for migration in sql.migrations()]
    assert versions == list(range(1, len(versions) + 1))


def test_statements_split_scripts_and_reject_unterminated_ones() -> None:
    script = "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');\nCREATE TABLE b (y);\n-- end\n"
    assert len(sql.statements(script)) == 2
    with pytest.raises(ValueError, match="unterminated"):
        sql.statements("CREATE TABLE c (z)")


# -- the query plans that keep a big queue fast -------------------------------------------------

INDEXED_QUERIES = [
    "claim",
    "claim_expired",
    "requeue_expired_leases",
    "queue_stats",
    "finish",
    "purge_finished",
]


@pytest.mark.parametrize("name", INDEXED_QUERIES)
async def test_queue_queries_seek_indexes(state: SQLiteState, name: str) -> None:
    params = {"endpoint_key": "ep", "worker": "w", "limit": 1, "lease_expires_at": T0}
    params |= {"now": T0, "job_id": "j", "status": "Completed", "reason": None, "before": T0}
    explain = f"EXPLAIN QUERY PLAN {sql.query(name)}"
    plan = await state.database.read(
        lambda connection: [row[3] for row in connection.execute(explain, params)]
    )
    assert not [
        step for step in plan if step.startswith("SCAN invocations") or "TEMP B-TREE" in step
    ]
    if name == "queue_stats":
        assert all("COVERING INDEX" in step for step in plan if "invocations" in step)


# -- group commit -------------------------------------------------------------------------------


async def test_concurrent_enqueues_share_commits(state: SQLiteState) -> None:
    jobs = [new_job() for _ in range(64)]
    before = state.database.commits
    await asyncio.gather(*(state.queue.enqueue(job) for job in jobs))
    assert state.database.commits - before < 16
    assert (await state.queue.stats("ep")).queued == 64


async def test_one_failing_write_leaves_the_rest_of_its_batch(state: SQLiteState) -> None:
    taken = new_job()
    await state.queue.enqueue(taken)
    jobs = [new_job() for _ in range(10)]
    before = state.database.commits
    outcomes = await asyncio.gather(
        *(state.queue.enqueue(job) for job in jobs[:5]),
        state.queue.enqueue(taken),
        *(state.queue.enqueue(job) for job in jobs[5:]),
        return_exceptions=True,
    )
    assert [type(outcome) for outcome in outcomes].count(errors.Conflict) == 1
    assert state.database.commits - before < 11
    for job in jobs:
        assert await state.queue.get(job.job_id) is not None


async def test_a_closed_state_refuses_work(db_path: Path) -> None:
    state = await SQLiteState.open(db_path)
    await state.close()
    await state.close()
    with pytest.raises(errors.BackendError):
        await state.queue.enqueue(new_job())
    with pytest.raises(errors.BackendError):
        await state.queue.get("anything")


async def test_database_errors_surface_as_backend_errors(state: SQLiteState) -> None:
    with pytest.raises(errors.BackendError, match="no such table"):
        await state.database.write(lambda connection: connection.execute("DELETE FROM nowhere"))
    await state.queue.enqueue(new_job())


async def test_two_states_on_one_file_never_share_a_job(state: SQLiteState, db_path: Path) -> None:
    other = await SQLiteState.open(db_path)
    jobs = [new_job() for _ in range(60)]
    await asyncio.gather(*(state.queue.enqueue(job) for job in jobs))

    async def drain(instance: SQLiteState, worker: str) -> list[str]:
        got: list[str] = []
        while batch := await instance.queue.claim("ep", worker, 2, 30, T0):
            got += [job.job_id for job in batch]
        return got

    drained = await asyncio.gather(*(drain(s, f"w{n}") for n, s in enumerate([state, other] * 4)))
    await other.close()
    assert sorted(job_id for got in drained for job_id in got) == sorted(j.job_id for j in jobs)


# -- files that outlive processes ---------------------------------------------------------------


async def test_reopening_finds_everything(db_path: Path) -> None:
    state = await SQLiteState.open(db_path)
    done, waiting = new_job(body=bytes(range(256)) * 500, priority=3), new_job()
    await state.queue.enqueue(done)
    await state.queue.enqueue(waiting)
    [claimed] = await state.queue.claim("ep", "w", 1, 30, T0)
    await state.queue.finish(claimed.job_id, "w", Status.FAILED, "boom", T0 + 1)
    resource = await state.catalog.create(Kind.MODEL, "Model", {"Image": "x"}, T0)
    before = [await state.queue.get(job.job_id) for job in (done, waiting)]
    await state.close()

    reopened = await SQLiteState.open(db_path)
    assert [await reopened.queue.get(job.job_id) for job in (done, waiting)] == before
    assert await reopened.catalog.list(Kind.MODEL) == [resource]
    await reopened.close()


def run_child(db_path: Path, body: str) -> subprocess.Popen[str]:
    """A separate Python process with ``state`` open on ``db_path`` and ``new_job`` at hand."""
    preamble = textwrap.dedent(
        """
        import asyncio, os, signal, sys, uuid
        from inferq.domain.invocations import NewInvocation
        from inferq.state.sqlite import SQLiteState

        def new_job():
            job_id = str(uuid.uuid4())
            return NewInvocation(
                job_id=job_id, inference_id=job_id, endpoint_name="ep", input_location=None,
                body=b"x", content_type=None, accept=None, custom_attributes=None,
                output_location="s3://o/" + job_id, failure_location=None,
                request_ttl_seconds=60, invocation_timeout_seconds=60, received_at=1.0,
            )

        async def main(opening):
            state = await opening
        """
    )
    main = textwrap.indent(textwrap.dedent(body), "    ")
    launch = f"asyncio.run(main(SQLiteState.open({str(db_path)!r})))\n"
    return subprocess.Popen(
        [sys.executable, "-c", preamble + main + launch], stdout=subprocess.PIPE, text=True
    )


@pytest.mark.slow
async def test_every_acknowledged_enqueue_survives_a_kill(db_path: Path) -> None:
    child = run_child(
        db_path,
        """
        async def enqueue_and_say():
            job = new_job()
            await state.queue.enqueue(job)
            print(job.job_id, flush=True)

        while True:
            await asyncio.gather(*(enqueue_and_say() for _ in range(16)))
        """,
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline() for _ in range(300)]
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    acknowledged += rest.splitlines(keepends=True)
    job_ids = [line.strip() for line in acknowledged if line.endswith("\n")]

    state = await SQLiteState.open(db_path)
    missing = [job_id for job_id in job_ids if await state.queue.get(job_id) is None]
    await state.close()
    assert len(job_ids) >= 300
    assert missing == []


@pytest.mark.slow
async def test_jobs_of_a_dead_worker_come_back(db_path: Path) -> None:
    child = run_child(
        db_path,
        """
        for _ in range(3):
            await state.queue.enqueue(new_job())
        claimed = await state.queue.claim("ep", "doomed", 2, 30, 100.0)
        print(" ".join(job.job_id for job in claimed), flush=True)
        os._exit(0)
        """,
    )
    output, _ = child.communicate(timeout=60)
    claimed = output.split()
    assert len(claimed) == 2

    state = await SQLiteState.open(db_path)
    assert (await state.queue.stats("ep")).running == 2
    assert await state.queue.requeue_expired_leases(129.0) == 0
    assert await state.queue.requeue_expired_leases(130.0) == 2
    assert (await state.queue.stats("ep")).queued == 3
    rescued = await state.queue.claim("ep", "heir", 3, 30, 131.0)
    assert {job.job_id for job in rescued} >= set(claimed)
    assert not await state.queue.finish(claimed[0], "doomed", Status.COMPLETED, None, 132.0)
    await state.close()


# -- URLs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/inferq/state.db", "/var/lib/inferq/state.db"),
        ("sqlite://state.db", "state.db"),
        ("sqlite://data/state.db", "data/state.db"),
        ("sqlite:///tmp/with%20space.db", "/tmp/with space.db"),
    ],
)
def test_sqlite_urls_name_files(url: str, path: str) -> None:
    assert path_from_url(url) == path


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///dir/", "memory://x"])
def test_urls_without_a_file_are_refused(url: str) -> None:
    with pytest.raises(errors.ConfigError):
        path_from_url(url)


async def test_an_unopenable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError):
        await SQLiteState.open(tmp_path / "no" / "such" / "dir" / "state.db")
    (tmp_path / "garbage.db").write_bytes(b"not a database, not at all" * 100)
    with pytest.raises(errors.ConfigError, match="not a database"):
        await SQLiteState.open(tmp_path / "garbage.db")


async def test_opening_from_a_url_uses_that_file(db_path: Path) -> None:
    state = await SQLiteState.from_url(f"sqlite://{db_path}")
    await state.queue.enqueue(new_job())
    await state.close()
    assert os.path.getsize(db_path) > 0
