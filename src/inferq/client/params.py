"""The parameters of ``Invoke-SMREndpointAsync``: their cmdlet names and aliases, the
InvokeEndpointAsync member each one sets, and requests built from options or pipeline lines.

A pipeline line is a bare endpoint name (the cmdlet's "by value" binding) or a JSON object whose
keys name parameters, case-insensitively, by cmdlet name, alias or API member ("by property
name"); keys that name no parameter are ignored, as PowerShell ignores unbound properties.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from inferq.client.errors import InvalidInput

#: SageMaker's EndpointName pattern and length
ENDPOINT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")


@dataclass(frozen=True, slots=True)
class Parameter:
    cmdlet_name: str
    api_name: str
    kind: type
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.cmdlet_name, self.api_name, *self.aliases)


PARAMETERS = (
    Parameter("EndpointName", "EndpointName", str),
    Parameter("InputLocation", "InputLocation", str),
    Parameter("ContentType", "ContentType", str),
    Parameter("Accept", "Accept", str),
    Parameter("CustomAttribute", "CustomAttributes", str),
    Parameter("InferenceId", "InferenceId", str),
    Parameter("InvocationTimeoutSecond", "InvocationTimeoutSeconds", int),
    Parameter("RequestTTLSecond", "RequestTTLSeconds", int),
    Parameter("S3OutputPathExtension", "S3OutputPathExtension", str),
    Parameter("Filename", "Filename", str),
    Parameter("Body", "Body", bytes),
)
_BY_NAME = {name.lower(): p for p in PARAMETERS for name in p.names}


def parameter_named(name: str) -> Parameter | None:
    """The parameter a cmdlet name, alias or API member names, ignoring case."""
    return _BY_NAME.get(name.lower())


def checked_value(parameter: Parameter, value: Any) -> Any:
    """``value`` as the API member wants it: text as bytes for a body, whole numbers as int."""
    if parameter.kind is bytes and isinstance(value, str):
        return value.encode()
    if parameter.kind is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # PowerShell binds numbers to string parameters as their text
    if parameter.kind is int and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if parameter.kind is int and isinstance(value, bool | float):
        raise InvalidInput(f"{parameter.cmdlet_name} must be a whole number, not {value!r}")
    if not isinstance(value, parameter.kind):
        kind = "a whole number" if parameter.kind is int else "a string"
        raise InvalidInput(f"{parameter.cmdlet_name} must be {kind}, not {value!r}")
    return value


def request_from_object(line: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """API parameters: the command line's as defaults, the line's keys over them."""
    request = dict(defaults)
    for key, value in line.items():
        parameter = parameter_named(key)
        if parameter is not None and value is not None:
            request[parameter.api_name] = checked_value(parameter, value)
    return request


def parse_line(text: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """One pipeline line -> InvokeEndpointAsync parameters; raises InvalidInput."""
    text = text.strip()
    if text.startswith("{"):
        request = request_from_object(_json_object(text), defaults)
    elif ENDPOINT_NAME.fullmatch(text):
        request = {**defaults, "EndpointName": text}
    else:
        raise InvalidInput(f"not an endpoint name or a JSON object: {text[:80]!r}")
    return complete(request)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput("a JSON line must be an object")
    return value


def complete(request: dict[str, Any]) -> dict[str, Any]:
    """Check what botocore would not: an endpoint, and an input (location or inline body)."""
    if not request.get("EndpointName"):
        raise InvalidInput("no EndpointName")
    if "InputLocation" not in request and "Body" not in request:
        raise InvalidInput("give an InputLocation or an inline Body")
    return request
