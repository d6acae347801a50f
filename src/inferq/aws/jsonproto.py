"""The ``json`` (JSON 1.1 RPC) protocol of the SageMaker control plane.

A request is ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>`` and a JSON object body; the
response is the operation's output shape as JSON. Output is shaped by botocore's model: members
the shape does not declare are dropped (stored documents may carry internal fields), timestamps
become epoch seconds (JSON numbers) and blobs base64 text.
"""

from __future__ import annotations

import base64
import datetime
import json
from collections.abc import Mapping
from typing import Any

from inferq.aws.errors import AwsError

CONTENT_TYPE = "application/x-amz-json-1.1"

Shapes = Mapping[str, Mapping[str, Any]]


class SerializationException(AwsError):
    """The request body is not a JSON object of the expected shape."""

    code = "SerializationException"
    status = 400
    sender_fault = True


def operation_name(target: str | None, prefix: str) -> str | None:
    """``SageMaker.CreateModel`` -> ``CreateModel``; None when the target names another service."""
    if target is None or not target.startswith(prefix + "."):
        return None
    return target[len(prefix) + 1 :]


def parse_body(body: bytes) -> dict[str, Any]:
    """The request's members; an empty body is an empty input (botocore sends ``{}``)."""
    if not body.strip():
        return {}
    try:
        params = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise SerializationException("The request body is not valid JSON.") from None
    if not isinstance(params, dict):
        raise SerializationException("The request body must be a JSON object.")
    return params


def dump_output(shapes: Shapes, shape: str | None, value: Mapping[str, Any]) -> bytes:
    """Serialize ``value`` as ``shape``; an operation without output answers ``{}``."""
    shaped = shape_value(shapes, shape, value) if shape is not None else {}
    return json.dumps(shaped, separators=(",", ":")).encode()


def shape_value(shapes: Shapes, name: str, value: Any) -> Any:
    """``value`` reduced to what ``name`` declares, in JSON types."""
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        return _structure(shapes, shape, value)
    if kind == "list":
        return [shape_value(shapes, shape["member"], item) for item in value]
    if kind == "map":
        return {key: shape_value(shapes, shape["value"], item) for key, item in value.items()}
    if kind == "timestamp":
        return _epoch_seconds(value)
    if kind == "blob" and isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def _structure(shapes: Shapes, shape: Mapping[str, Any], value: Mapping[str, Any]) -> Any:
    members = shape.get("members", {})
    return {
        key: shape_value(shapes, members[key]["shape"], item)
        for key, item in value.items()
        if key in members and item is not None
    }


def _epoch_seconds(value: Any) -> float | int:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise TypeError(f"a timestamp must be epoch seconds or a datetime, not {value!r}")


def response_headers(request_id: str) -> list[tuple[str, str]]:
    """Headers of every json 1.1 answer; ``x-amzn-RequestId`` becomes botocore's RequestId."""
    return [("content-type", CONTENT_TYPE), ("x-amzn-requestid", request_id)]
