"""The state seams: the invocation queue and the control-plane catalog.

Backends store and fence; they decide nothing. TTL expiry, retry limits, lease renewal and what
to write where are policy, written once in ``inferq.worker`` and ``inferq.services``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from inferq.domain.invocations import Invocation, NewInvocation, Status


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueStats:
    queued: int
    running: int
    #: receive time (epoch seconds) of the oldest queued or running invocation, if any
    oldest_received_at: float | None


class JobQueue(Protocol):
    async def enqueue(self, job: NewInvocation) -> None:
        """Store a new invocation as QUEUED. Durable (committed to disk) when this returns."""
        ...

    async def claim(
        self, endpoint: str, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        """Lease up to ``limit`` QUEUED invocations of ``endpoint`` (endpoint names compare
        case-insensitively): highest priority first, then oldest. They become RUNNING, owned by
        ``worker`` until ``now + lease_seconds``, with ``attempts`` incremented."""
        ...

    async def extend(self, job_id: str, worker: str, lease_seconds: float, now: float) -> bool:
        """Renew a lease. False when ``worker`` no longer holds it (it must stop publishing)."""
        ...

    async def finish(
        self, job_id: str, worker: str, status: Status, reason: str | None, now: float
    ) -> bool:
        """Settle a RUNNING invocation held by ``worker`` as COMPLETED, FAILED or EXPIRED, and
        drop its inline body (up to 128 KB that no one reads again, kept otherwise for the whole
        retention period). False (and no change) when the lease is not held."""
        ...

    async def release(self, job_id: str, worker: str, reason: str | None, now: float) -> bool:
        """Give a held invocation back to the queue (an infrastructure fault: retry elsewhere)."""
        ...

    async def unclaim(self, job_id: str, worker: str) -> bool:
        """Undo the claim of a held invocation that never started: QUEUED again with
        ``attempts`` back as before the claim, so its TTL and retry budget stand untouched."""
        ...

    async def requeue_expired_leases(self, now: float) -> int:
        """Return RUNNING invocations whose lease ran out to QUEUED; the count."""
        ...

    async def claim_expired(
        self, worker: str, limit: int, lease_seconds: float, now: float
    ) -> list[Invocation]:
        """Lease never-claimed QUEUED invocations whose request TTL has passed (any endpoint),
        so that policy can fail them without calling a model. A request requeued after a run
        (its instance died) is not expired: the TTL bounds the wait for a first run."""
        ...

    async def purge_finished(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` finished (COMPLETED, FAILED, EXPIRED) invocations whose
        ``finished_at`` is earlier than ``before``, oldest first; the count. Live invocations
        are never touched, and ``get`` of a deleted one returns None."""
        ...

    async def get(self, job_id: str) -> Invocation | None: ...

    async def stats(self, endpoint: str) -> QueueStats: ...

    async def wait(self, timeout: float) -> None:
        """Sleep until work may be available (something was enqueued or released) or timeout."""
        ...


class Kind(StrEnum):
    MODEL = "model"
    ENDPOINT_CONFIG = "endpoint-config"
    ENDPOINT = "endpoint"


@dataclass(frozen=True, kw_only=True, slots=True)
class Resource:
    kind: Kind
    #: as created (case preserved); uniqueness is case-insensitive
    name: str
    #: the resource's stored description (the AWS request shape plus derived fields)
    doc: dict[str, Any]
    created: float
    modified: float


class Catalog(Protocol):
    async def create(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        """Raise ``errors.Conflict`` if a resource of this kind has the name (any case)."""
        ...

    async def get(self, kind: Kind, name: str) -> Resource:
        """Raise ``errors.NotFound`` when absent."""
        ...

    async def list(self, kind: Kind) -> list[Resource]:
        """All resources of a kind, oldest first."""
        ...

    async def update(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        """Replace the doc; raise ``errors.NotFound`` when absent."""
        ...

    async def delete(self, kind: Kind, name: str) -> None:
        """Raise ``errors.NotFound`` when absent."""
        ...


class State(Protocol):
    """One backend's queue and catalog, opened together from one URL."""

    @property
    def queue(self) -> JobQueue: ...

    @property
    def catalog(self) -> Catalog: ...

    async def close(self) -> None: ...
