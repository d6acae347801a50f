"""``SQLiteJobQueue``: the invocation queue in the ``invocations`` table."""

from __future__ import annotations

import dataclasses
import operator
import re
import sqlite3
from collections.abc import Callable
from typing import Any

from inferq import errors
from inferq.domain.invocations import Invocation, NewInvocation, Status
from inferq.state.base import QueueStats
from inferq.state.embedded import Wakeup, check_final
from inferq.state.sqlite import sql
from inferq.state.sqlite.database import Database, changes, fetch_all, fetch_one

#: the accept path binds the enqueue query's parameters by position, from one C-level
#: attrgetter: cheaper than a dict of 16 names per request. The derived endpoint_key is last.
_ENQUEUE_SQL = re.sub(r"--[^\n]*", "", sql.query("enqueue"))
_ENQUEUE_NAMES = tuple(re.findall(r":(\w+)", _ENQUEUE_SQL))
_ENQUEUE = re.sub(r":\w+", "?", _ENQUEUE_SQL)
_ENQUEUE_VALUES = operator.attrgetter(*_ENQUEUE_NAMES[:-1])
if _ENQUEUE_NAMES[-1] != "endpoint_key":
    raise RuntimeError("queries.sql: enqueue must bind endpoint_key last")
_FIELDS = tuple(field.name for field in dataclasses.fields(Invocation))

_SortKey = Callable[[sqlite3.Row], tuple[Any, ...]]


class SQLiteJobQueue:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._wakeup = Wakeup()

    async def enqueue(self, job: NewInvocation) -> None:
        row = _new_row(job)
        await self._database.write(lambda connection: _insert(connection, row, job.job_id))
        self._wakeup.ring()

    async def claim(
        self, endpoint: str, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        params = {"endpoint_key": endpoint.lower(), **_lease(worker, limit, lease_seconds, now)}
        return await self._claim("claim", params, order=_claim_order)

    async def claim_expired(
        self, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        params = _lease(worker, limit, lease_seconds, now)
        return await self._claim("claim_expired", params, order=_expiry_order)

    async def extend(self, job_id: str, worker: str, lease_seconds: float, now: float) -> bool:
        params = {"job_id": job_id, "worker": worker, "lease_expires_at": now + lease_seconds}
        return await self._database.write(changes("extend", params)) == 1

    async def finish(
        self, job_id: str, worker: str, status: Status, reason: str | None, now: float
    ) -> bool:
        check_final(status)
        params = {"job_id": job_id, "worker": worker, "status": status.value, "reason": reason}
        return await self._database.write(changes("finish", {**params, "now": now})) == 1

    async def release(self, job_id: str, worker: str, reason: str | None, now: float) -> bool:
        params = {"job_id": job_id, "worker": worker, "reason": reason}
        released = await self._database.write(changes("release", params)) == 1
        if released:
            self._wakeup.ring()
        return released

    async def unclaim(self, job_id: str, worker: str) -> bool:
        params = {"job_id": job_id, "worker": worker}
        undone = await self._database.write(changes("unclaim", params)) == 1
        if undone:
            self._wakeup.ring()
        return undone

    async def requeue_expired_leases(self, now: float) -> int:
        requeued = await self._database.write(changes("requeue_expired_leases", {"now": now}))
        if requeued:
            self._wakeup.ring()
        return requeued

    async def purge_finished(self, before: float, limit: int) -> int:
        if limit <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return 0
        params = {"before": before, "limit": limit}
        return await self._database.write(changes("purge_finished", params))

    async def get(self, job_id: str) -> Invocation | None:
        row = await self._database.read(fetch_one("get_invocation", {"job_id": job_id}))
        return None if row is None else _invocation(row)

    async def stats(self, endpoint: str) -> QueueStats:
        query = fetch_one("queue_stats", {"endpoint_key": endpoint.lower()})
        row = await self._database.read(query)
        assert row is not None  # an aggregate query always yields its one row
        ages = [age for age in (row["oldest_queued"], row["oldest_running"]) if age is not None]
        return QueueStats(
            queued=row["queued"], running=row["running"], oldest_received_at=min(ages, default=None)
        )

    async def wait(self, timeout: float) -> None:
        await self._wakeup.wait(timeout)

    async def _claim(self, query: str, params: dict[str, Any], order: _SortKey) -> list[Invocation]:
        if params["limit"] <= 0:  # SQLite reads a negative LIMIT as "no limit"
            return []
        rows = await self._database.write(fetch_all(query, params))
        return [_invocation(row) for row in sorted(rows, key=order)]


def _insert(connection: sqlite3.Connection, row: tuple[Any, ...], job_id: str) -> None:
    try:
        connection.execute(_ENQUEUE, row)
    except sqlite3.IntegrityError as exc:
        # job_id is the table's only UNIQUE column
        if exc.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE":
            raise errors.Conflict(f"job {job_id} exists already") from None
        raise


def _new_row(job: NewInvocation) -> tuple[Any, ...]:
    return (*_ENQUEUE_VALUES(job), job.endpoint_name.lower())


def _lease(worker: str, limit: int, lease_seconds: float, now: float) -> dict[str, Any]:
    return {"worker": worker, "limit": limit, "lease_expires_at": now + lease_seconds, "now": now}


def _invocation(row: sqlite3.Row) -> Invocation:
    values = {name: row[name] for name in _FIELDS}
    values["status"] = Status(values["status"])
    return Invocation(**values)


# RETURNING yields rows in no promised order; these restore the order the queries picked them in


def _claim_order(row: sqlite3.Row) -> tuple[int, float, int]:
    return (-row["priority"], row["received_at"], row["seq"])


def _expiry_order(row: sqlite3.Row) -> tuple[float, int]:
    return (row["expires_at"], row["seq"])
