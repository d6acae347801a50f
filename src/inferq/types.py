"""Identifiers and small aliases shared by every floor."""

from __future__ import annotations

from typing import NewType

InferenceId = NewType("InferenceId", str)
JobId = NewType("JobId", str)
EndpointName = NewType("EndpointName", str)
WorkerId = NewType("WorkerId", str)

JSON = dict[str, "JSONValue"]
JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
