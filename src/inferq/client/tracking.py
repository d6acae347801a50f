"""What ``inferq wait`` waits for: one tracked inference per argument or stdin line.

An inference is given as the JSON object ``invoke-endpoint-async`` prints (its
OutputLocation and FailureLocation, other keys passed through), as a JSON string or a bare
``s3://`` output location, or as ``OUTPUT,FAILURE`` (two ``s3://`` locations). An ``{"Error":
...}`` line from a failed invocation, or anything unreadable, is tracked as already failed.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from inferq.client.errors import InvalidInput, Problem

#: keys of an input record that the answer keeps
PASSED_THROUGH = ("InferenceId", "InputLocation", "OutputLocation", "FailureLocation")


class Status(StrEnum):
    PENDING = "Pending"
    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(kw_only=True, slots=True)
class Tracked:
    """One inference: where its result will appear, and what became of it."""

    record: dict[str, Any] = field(default_factory=dict)
    output: str | None = None
    failure: str | None = None
    status: Status = Status.PENDING
    #: the failure object's body, or why the inference could not even be tracked
    reason: str | None = None
    #: file names under --download for the output and the failure object
    names: tuple[str, str] = ("", "")
    download: str | None = None

    def answer(self) -> dict[str, Any]:
        answer = {key: self.record[key] for key in PASSED_THROUGH if key in self.record}
        answer.update(OutputLocation=self.output, FailureLocation=self.failure)
        answer["Status"] = str(self.status)
        if self.download is not None:
            answer["Download"] = self.download
        if self.reason is not None:
            answer["FailureReason"] = self.reason
        return answer


def tracked_from(text: str) -> Tracked:
    """Read one argument or line; an unreadable one is tracked as failed, with the reason."""
    try:
        return _parse(text.strip())
    except InvalidInput as exc:
        return Tracked(status=Status.FAILED, reason=str(Problem("InvalidInput", str(exc))))


def _parse(text: str) -> Tracked:
    if text.startswith(("{", '"')):
        return _from_json(text)
    output, _, failure = text.partition(",s3://")
    return _located({}, output, f"s3://{failure}" if failure else None)


def _from_json(text: str) -> Tracked:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc}") from exc
    if isinstance(value, str):
        return _located({}, value, None)
    if not isinstance(value, dict):
        raise InvalidInput("expected an object with an OutputLocation")
    if isinstance(value.get("Error"), dict):
        error = value["Error"]
        problem = Problem(str(error.get("Code")), str(error.get("Message")))
        return Tracked(record=value, status=Status.FAILED, reason=str(problem))
    return _located(value, value.get("OutputLocation"), value.get("FailureLocation"))


def _located(record: dict[str, Any], output: Any, failure: Any) -> Tracked:
    for location in (output, failure):
        if location is not None and not (isinstance(location, str) and _is_s3(location)):
            raise InvalidInput(f"not an s3:// location: {location!r}")
    if output is None:
        raise InvalidInput("no OutputLocation")
    return Tracked(record=record, output=output, failure=failure)


def _is_s3(location: str) -> bool:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    return location.startswith("s3://") and bool(bucket) and bool(key)


def name_downloads(tracked: list[Tracked]) -> None:
    """Name result files after the input (``cat.json.out``) when the record says which input
    it was and no other has that name, else after the result object (``<uuid>.out``)."""
    stems = [_input_name(t) for t in tracked]
    taken = Counter(stems)
    for item, stem in zip(tracked, stems, strict=True):
        if stem is not None and taken[stem] == 1:
            item.names = (f"{stem}.out", f"{stem}-error.out")
        else:
            item.names = (_basename(item.output), _basename(item.failure))


def _input_name(item: Tracked) -> str | None:
    location = item.record.get("InputLocation")
    return PurePosixPath(location).name if isinstance(location, str) else None


def _basename(location: str | None) -> str:
    return PurePosixPath(location).name if location else ""
