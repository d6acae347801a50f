"""``--select``, as the cmdlet's ``-Select``: ``*`` for the whole response, a property name for
one of its values, ``^ParameterName`` for the value of a parameter of the call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from inferq.client.params import parameter_named

#: property -> its path in the record; RequestId and HttpStatusCode as the .NET response names them
PROPERTIES = {
    "InferenceId": ("InferenceId",),
    "OutputLocation": ("OutputLocation",),
    "FailureLocation": ("FailureLocation",),
    "ResponseMetadata": ("ResponseMetadata",),
    "ResponseMetadata.RequestId": ("ResponseMetadata", "RequestId"),
    "ResponseMetadata.HTTPStatusCode": ("ResponseMetadata", "HTTPStatusCode"),
    "RequestId": ("ResponseMetadata", "RequestId"),
    "HttpStatusCode": ("ResponseMetadata", "HTTPStatusCode"),
}
_PROPERTY_BY_LOWER = {name.lower(): path for name, path in PROPERTIES.items()}


@dataclass(frozen=True, slots=True)
class Selection:
    """What to print of each call: ``path`` into the response, or a ``parameter``'s value."""

    path: tuple[str, ...] = ()
    parameter: str | None = None

    def pick(self, record: dict[str, Any], request: dict[str, Any]) -> Any:
        if self.parameter is not None:
            value = request.get(self.parameter)
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        picked: Any = record
        for key in self.path:
            picked = picked.get(key)
        return picked


WHOLE_RESPONSE = Selection()


def parse_selection(text: str) -> Selection:
    """``*``, ``^EndpointName`` or ``OutputLocation`` (names ignore case, as in PowerShell)."""
    if text == "*":
        return WHOLE_RESPONSE
    if text.startswith("^"):
        parameter = parameter_named(text[1:])
        if parameter is None:
            raise click.BadParameter(f"{text[1:]!r} is not a parameter of the command")
        return Selection(parameter=parameter.api_name)
    path = _PROPERTY_BY_LOWER.get(text.lower())
    if path is None:
        known = ", ".join(["*", "^ParameterName", *PROPERTIES])
        raise click.BadParameter(f"{text!r} is not a response property; use one of {known}")
    return Selection(path=path)


def response_record(response: dict[str, Any]) -> dict[str, Any]:
    """The InvokeEndpointAsync response without botocore's raw headers."""
    metadata = response.get("ResponseMetadata", {})
    return {
        "InferenceId": response.get("InferenceId"),
        "OutputLocation": response.get("OutputLocation"),
        "FailureLocation": response.get("FailureLocation"),
        "ResponseMetadata": {
            "RequestId": metadata.get("RequestId"),
            "HTTPStatusCode": metadata.get("HTTPStatusCode"),
        },
    }
