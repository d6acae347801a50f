"""``memory://``: the reference semantics of the state seams, in dicts.

The backend for ``inferq dev`` and unit tests, and the yardstick the contract suite holds every
other backend to. Nothing survives the process. All methods run on the event loop without
awaiting in between, so each one is atomic.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from typing import Any

from inferq import errors
from inferq.domain.invocations import Invocation, NewInvocation, Status
from inferq.state.base import Kind, QueueStats, Resource
from inferq.state.embedded import Wakeup, check_final

#: what returning a job to the queue resets (attempts stay: they count claims)
_BACK_IN_QUEUE: dict[str, Any] = {
    "status": Status.QUEUED,
    "lease_owner": None,
    "lease_expires_at": None,
    "started_at": None,
}


class MemoryJobQueue:
    def __init__(self) -> None:
        self._jobs: dict[str, Invocation] = {}
        self._wakeup = Wakeup()

    @property
    def jobs(self) -> dict[str, Invocation]:
        """Every stored invocation by job id, in enqueue order (a copy, for inspection)."""
        return dict(self._jobs)

    def reset(self) -> None:
        self._jobs.clear()

    async def enqueue(self, job: NewInvocation) -> None:
        if job.job_id in self._jobs:
            raise errors.Conflict(f"job {job.job_id} exists already")
        fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(NewInvocation)}
        self._jobs[job.job_id] = Invocation(**fields, status=Status.QUEUED)
        self._wakeup.ring()

    async def claim(
        self, endpoint: str, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        key = endpoint.lower()
        ready = self._queued(lambda job: job.endpoint_name.lower() == key)
        ready.sort(key=lambda job: (-job.priority, job.received_at))
        return [self._lease(job, worker, lease_seconds, now) for job in ready[: max(limit, 0)]]

    async def claim_expired(
        self, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        ready = self._queued(lambda job: job.expires_at <= now and job.attempts == 0)
        ready.sort(key=lambda job: job.expires_at)
        return [self._lease(job, worker, lease_seconds, now) for job in ready[: max(limit, 0)]]

    async def extend(self, job_id: str, worker: str, lease_seconds: float, now: float) -> bool:
        return self._update_held(job_id, worker, lease_expires_at=now + lease_seconds)

    async def finish(
        self, job_id: str, worker: str, status: Status, reason: str | None, now: float
    ) -> bool:
        check_final(status)
        return self._update_held(
            job_id,
            worker,
            status=status,
            failure_reason=reason,
            finished_at=now,
            lease_expires_at=None,
            body=None,
        )

    async def release(self, job_id: str, worker: str, reason: str | None, now: float) -> bool:
        released = self._update_held(job_id, worker, failure_reason=reason, **_BACK_IN_QUEUE)
        if released:
            self._wakeup.ring()
        return released

    async def unclaim(self, job_id: str, worker: str) -> bool:
        job = self._jobs.get(job_id)
        attempts = max((job.attempts if job else 0) - 1, 0)
        undone = self._update_held(job_id, worker, attempts=attempts, **_BACK_IN_QUEUE)
        if undone:
            self._wakeup.ring()
        return undone

    async def requeue_expired_leases(self, now: float) -> int:
        expired = [job for job in self._jobs.values() if _lease_ran_out(job, now)]
        for job in expired:
            self._jobs[job.job_id] = dataclasses.replace(job, **_BACK_IN_QUEUE)
        if expired:
            self._wakeup.ring()
        return len(expired)

    async def purge_finished(self, before: float, limit: int) -> int:
        done = {
            job.job_id: job.finished_at
            for job in self._jobs.values()
            if job.status.is_final and job.finished_at is not None and job.finished_at < before
        }
        # sorted() is stable: equal finish times go in enqueue order, as SQLite's seq does
        oldest = sorted(done, key=done.__getitem__)[: max(limit, 0)]
        for job_id in oldest:
            del self._jobs[job_id]
        return len(oldest)

    async def get(self, job_id: str) -> Invocation | None:
        return self._jobs.get(job_id)

    async def stats(self, endpoint: str) -> QueueStats:
        key = endpoint.lower()
        pending = [
            job
            for job in self._jobs.values()
            if job.endpoint_name.lower() == key and not job.status.is_final
        ]
        return QueueStats(
            queued=sum(job.status is Status.QUEUED for job in pending),
            running=sum(job.status is Status.RUNNING for job in pending),
            oldest_received_at=min((job.received_at for job in pending), default=None),
        )

    async def wait(self, timeout: float) -> None:
        await self._wakeup.wait(timeout)

    def _queued(self, predicate: Callable[[Invocation], bool]) -> list[Invocation]:
        # dicts keep insertion order and sorts are stable, so equal keys stay in enqueue order
        return [j for j in self._jobs.values() if j.status is Status.QUEUED and predicate(j)]

    def _lease(self, job: Invocation, worker: str, lease_seconds: float, now: float) -> Invocation:
        leased = dataclasses.replace(
            job,
            status=Status.RUNNING,
            lease_owner=worker,
            lease_expires_at=now + lease_seconds,
            attempts=job.attempts + 1,
            started_at=now,
        )
        self._jobs[job.job_id] = leased
        return leased

    def _update_held(self, job_id: str, worker: str, **changes: Any) -> bool:
        """Apply ``changes`` if ``worker`` holds the lease on a RUNNING job (the fence)."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not Status.RUNNING or job.lease_owner != worker:
            return False
        self._jobs[job_id] = dataclasses.replace(job, **changes)
        return True


def _lease_ran_out(job: Invocation, now: float) -> bool:
    expiry = job.lease_expires_at
    return job.status is Status.RUNNING and expiry is not None and expiry <= now


class MemoryCatalog:
    def __init__(self) -> None:
        self._resources: dict[tuple[Kind, str], Resource] = {}

    @property
    def resources(self) -> list[Resource]:
        """Every stored resource, oldest first (for inspection)."""
        return list(self._resources.values())

    def reset(self) -> None:
        self._resources.clear()

    async def create(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        if (kind, name.lower()) in self._resources:
            raise errors.Conflict(f"{kind} {name!r} exists already")
        resource = Resource(kind=kind, name=name, doc=_json_copy(doc), created=now, modified=now)
        self._resources[kind, name.lower()] = resource
        return _copied(resource)

    async def get(self, kind: Kind, name: str) -> Resource:
        return _copied(self._existing(kind, name))

    async def list(self, kind: Kind) -> list[Resource]:
        return _ordered(r for r in self._resources.values() if r.kind is kind)

    async def update(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        updated = dataclasses.replace(self._existing(kind, name), doc=_json_copy(doc), modified=now)
        self._resources[kind, name.lower()] = updated
        return _copied(updated)

    async def delete(self, kind: Kind, name: str) -> None:
        self._existing(kind, name)
        del self._resources[kind, name.lower()]

    def _existing(self, kind: Kind, name: str) -> Resource:
        try:
            return self._resources[kind, name.lower()]
        except KeyError:
            raise errors.NotFound(f"{kind} {name!r} does not exist") from None


def _json_copy(doc: dict[str, Any]) -> dict[str, Any]:
    """Store what a database would: a JSON round trip, so no caller shares our dicts."""
    copied: dict[str, Any] = json.loads(json.dumps(doc))
    return copied


def _copied(resource: Resource) -> Resource:
    return dataclasses.replace(resource, doc=_json_copy(resource.doc))


def _ordered(resources: Iterable[Resource]) -> list[Resource]:
    # sorted() is stable: equal creation times stay in insertion order
    return sorted((_copied(r) for r in resources), key=lambda r: r.created)


class MemoryState:
    """The queue and catalog of ``memory://``; each open gets a fresh, empty state."""

    def __init__(self) -> None:
        self._queue = MemoryJobQueue()
        self._catalog = MemoryCatalog()

    @classmethod
    async def from_url(cls, url: str) -> MemoryState:
        return cls()

    @property
    def queue(self) -> MemoryJobQueue:
        return self._queue

    @property
    def catalog(self) -> MemoryCatalog:
        return self._catalog

    def reset(self) -> None:
        self._queue.reset()
        self._catalog.reset()

    async def close(self) -> None:
        pass
