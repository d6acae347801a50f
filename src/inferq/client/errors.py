"""What went wrong, as the AWS error code and message, and how a command reports it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError


@dataclass(frozen=True, slots=True)
class Problem:
    """An AWS error code (or a local one, such as ``InvalidInput``) and its message."""

    code: str
    message: str

    def as_record(self) -> dict[str, Any]:
        return {"Error": {"Code": self.code, "Message": self.message}}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class ClientFailure(click.ClickException):
    """A failure the command reports on stderr as ``Error: <Code>: <message>``, exit status 1."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class InvalidInput(ValueError):
    """A request the command could not even build (a bad pipeline line, a bad location)."""


def problem_of(exc: Exception) -> Problem:
    """The code and message of a botocore error, of a bad input, or of anything else."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or str(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        return Problem(code, error.get("Message") or str(exc))
    if isinstance(exc, InvalidInput):
        return Problem("InvalidInput", str(exc))
    if isinstance(exc, BotoCoreError):
        return Problem(type(exc).__name__, str(exc))
    return Problem(type(exc).__name__, str(exc) or repr(exc))


def is_not_found(exc: ClientError) -> bool:
    """404s of S3 (HeadObject has no body, so only the status says it)."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or error.get("Code") in {"404", "NoSuchKey", "NoSuchBucket"}


@contextmanager
def reported() -> Iterator[None]:
    """Turn botocore errors and bad inputs into ``Error: <Code>: <message>`` and exit 1."""
    try:
        yield
    except (BotoCoreError, ClientError, ResponseParserError, InvalidInput) as exc:
        raise ClientFailure(problem_of(exc)) from exc
