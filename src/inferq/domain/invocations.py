"""An asynchronous invocation: what was accepted, and where it stands."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from inferq.types import InferenceId, JobId


class Status(StrEnum):
    QUEUED = "Queued"
    RUNNING = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    EXPIRED = "Expired"

    @property
    def is_final(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED, Status.EXPIRED)


FINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.EXPIRED)


@dataclass(frozen=True, kw_only=True, slots=True)
class NewInvocation:
    """Everything decided when the request is accepted (returned in the 202)."""

    #: service-generated UUID4, names the output object; distinct from the InferenceId (as on AWS)
    job_id: JobId
    inference_id: InferenceId
    #: as the caller spelled it
    endpoint_name: str
    input_location: str | None
    #: the inline payload (<= 128,000 bytes), when no InputLocation was given
    body: bytes | None
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    output_location: str
    failure_location: str | None
    request_ttl_seconds: int
    invocation_timeout_seconds: int
    #: epoch seconds
    received_at: float
    priority: int = 0

    @property
    def expires_at(self) -> float:
        """When a request still waiting in the queue is expired instead of run."""
        return self.received_at + self.request_ttl_seconds


@dataclass(frozen=True, kw_only=True, slots=True)
class Invocation(NewInvocation):
    """A stored invocation with its processing state."""

    status: Status
    #: how many times a worker claimed it
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    failure_reason: str | None = None
