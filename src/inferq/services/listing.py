"""ListModels, ListEndpointConfigs and ListEndpoints: filters, sorting, pages, summaries."""

from __future__ import annotations

import base64
import binascii
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

from inferq import errors
from inferq.state.base import Resource

#: the AWS default for MaxResults
DEFAULT_MAX_RESULTS = 10

_SORT_KEYS: dict[str, Callable[[Resource], Any]] = {
    "Name": lambda r: r.name.lower(),
    "CreationTime": lambda r: r.created,
    "Status": lambda r: r.doc.get("EndpointStatus", ""),
}


def page(
    resources: list[Resource], request: Mapping[str, Any]
) -> tuple[list[Resource], str | None]:
    """The requested slice (AWS defaults: newest first, 10 per page) and the next page's token."""
    chosen = [r for r in resources if _selected(r, request)]
    primary = _SORT_KEYS[request.get("SortBy", "CreationTime")]
    chosen.sort(
        key=lambda r: (primary(r), r.name.lower()),
        reverse=request.get("SortOrder", "Descending") == "Descending",
    )
    start = _offset(request.get("NextToken"))
    end = start + int(request.get("MaxResults", DEFAULT_MAX_RESULTS))
    return chosen[start:end], (_token(end) if end < len(chosen) else None)


def _selected(resource: Resource, request: Mapping[str, Any]) -> bool:
    contains = request.get("NameContains")
    if contains is not None and contains.lower() not in resource.name.lower():
        return False
    status = request.get("StatusEquals")
    if status is not None and resource.doc.get("EndpointStatus") != status:
        return False
    return _within(resource.created, request, "CreationTime") and _within(
        resource.modified, request, "LastModifiedTime"
    )


def _within(moment: float, request: Mapping[str, Any], field: str) -> bool:
    before, after = request.get(f"{field}Before"), request.get(f"{field}After")
    if before is not None and not moment < _epoch(before):
        return False
    return after is None or moment >= _epoch(after)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise errors.InvalidRequest(
            "The NextToken is not one this service issued; repeat the first request without it."
        ) from None
    if not isinstance(offset, int) or offset < 0:
        raise errors.InvalidRequest("The NextToken is not one this service issued.")
    return offset


def summary(resource: Resource, name_member: str, arn_member: str) -> dict[str, Any]:
    return {
        name_member: resource.name,
        arn_member: resource.doc[arn_member],
        "CreationTime": resource.created,
    }


def endpoint_summary(resource: Resource) -> dict[str, Any]:
    described = summary(resource, "EndpointName", "EndpointArn")
    described["LastModifiedTime"] = resource.modified
    described["EndpointStatus"] = resource.doc["EndpointStatus"]
    return described


def with_token(listed: dict[str, Any], token: str | None) -> dict[str, Any]:
    return {**listed, "NextToken": token} if token is not None else listed
