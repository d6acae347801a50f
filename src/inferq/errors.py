"""The one exception root of inferq and its families.

    InferqError
    ├── ConfigError               bad settings or an unknown backend URL
    ├── NotFound                  a catalog resource, bucket, object or job does not exist
    ├── Conflict                  it exists already, or its state forbids the change
    ├── InvalidRequest            the caller's input breaks a rule (maps to a ValidationError)
    ├── BackendError              the state backend failed
    │   └── LeaseLost             a worker no longer owns the job it is working on
    ├── StorageError              the object store failed
    │   └── IntegrityError        a body did not match its declared digest or checksum
    └── RunnerError               a model instance could not be started or reached
        ├── ModelLoadError        the model failed to load or never became healthy
        └── InvocationTimeout     the model did not answer within the invocation timeout

AWS wire errors live in ``inferq.aws.errors`` and derive from ``InferqError`` too.
"""

from __future__ import annotations


class InferqError(Exception):
    """Something went wrong in inferq."""

    def __init__(self, message: str | None = None) -> None:
        # a docstring default may span lines: fold it into one sentence
        super().__init__(message or " ".join((self.__doc__ or "").split()))

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ConfigError(InferqError):
    """The configuration is invalid."""


class NotFound(InferqError):
    """The resource does not exist."""


class Conflict(InferqError):
    """The resource exists already or is in a state that forbids this change."""


class InvalidRequest(InferqError):
    """The request is invalid."""


class BackendError(InferqError):
    """The state backend failed."""


class LeaseLost(BackendError):
    """The worker no longer holds the lease on this job."""


class StorageError(InferqError):
    """The object store failed."""


class IntegrityError(StorageError):
    """The body does not match its declared digest or checksum."""


class RunnerError(InferqError):
    """The model instance could not be started or reached."""


class ModelLoadError(RunnerError):
    """The model failed to load or never became healthy."""


class InvocationTimeout(RunnerError):
    """The model did not answer within the invocation timeout."""
