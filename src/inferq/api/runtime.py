"""SageMaker Runtime (rest-json): ``InvokeEndpointAsync`` and ``InvokeEndpoint``.

Handlers are thin: bind the wire request to the operation's input members, validate them
against botocore's model, call a service, write the output shape.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote

from inferq import errors
from inferq.api import asgi
from inferq.aws import errors as aws_errors
from inferq.aws import validate
from inferq.aws._shapes import runtime as shapes
from inferq.runners.calls import Calls
from inferq.services.invocations import AsyncRequest, InvocationService
from inferq.worker import realtime
from inferq.worker.pool import InstancePool

log = logging.getLogger("inferq.api")

INLINE_BODY_LIMIT = 128_000
REALTIME_BODY_LIMIT = 6_291_456
_ROUTE = re.compile(r"^/endpoints/([^/]+)/(async-invocations|invocations)$")


def _header_bindings(operation: str) -> dict[str, tuple[str, bool]]:
    """Lower-case header name -> (input member, is an integer), from botocore's model."""
    shape = shapes.SHAPES[shapes.OPERATIONS[operation]["input"]]
    return {
        member["locationName"].lower(): (name, shapes.SHAPES[member["shape"]]["type"] == "integer")
        for name, member in shape["members"].items()
        if member.get("location") == "header"
    }


ASYNC_HEADERS = _header_bindings("InvokeEndpointAsync")
REALTIME_HEADERS = _header_bindings("InvokeEndpoint")
#: raw (bytes) header name -> its key in ASYNC_HEADERS
_ASYNC_RAW_NAMES = {name.encode("latin-1"): name for name in ASYNC_HEADERS}


def matches(path: str) -> bool:
    return _ROUTE.match(path) is not None


class RuntimeApi:
    def __init__(
        self,
        invocations: InvocationService,
        pools: Callable[[str], InstancePool | None],
        calls: Calls,
        *,
        account_id: str,
    ) -> None:
        self._invocations = invocations
        self._pools = pools
        self._calls = calls
        self._account_id = account_id

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        rid = asgi.request_id(scope)
        try:
            status, headers, body = await self._route(scope, receive)
        except aws_errors.AwsError as exc:
            status, headers, body = aws_errors.render_json(exc, rid)
        except errors.InferqError as exc:
            status, headers, body = aws_errors.render_json(_as_aws(exc), rid)
        except Exception:
            log.exception("runtime_request_failed", extra={"request_id": rid})
            status, headers, body = aws_errors.render_json(aws_errors.InternalFailure(), rid)
        headers.append(("x-amzn-requestid", rid))
        await asgi.respond(send, status, headers, body)

    async def _route(self, scope: asgi.Scope, receive: asgi.Receive) -> _Response:
        match = _ROUTE.match(scope["path"])
        if match is None or scope["method"] != "POST":
            raise aws_errors.UnknownOperationException(
                f"No SageMaker Runtime operation is {scope['method']} {scope['path']}."
            )
        name = unquote(match.group(1))
        if match.group(2) == "async-invocations":
            return await self.invoke_endpoint_async(name, scope, receive)
        return await self.invoke_endpoint(name, scope, receive)

    async def invoke_endpoint_async(
        self, name: str, scope: asgi.Scope, receive: asgi.Receive
    ) -> _Response:
        params = _bind(_bound_headers(scope["headers"], _ASYNC_RAW_NAMES), ASYNC_HEADERS)
        params["EndpointName"] = name
        body = await _inline_body(receive, params)
        if body is not None:
            params["Body"] = body
        validate.validate_input(
            "runtime", "InvokeEndpointAsync", params, aws_errors.ValidationError
        )
        _check_one_input(params)
        accepted = await self._invocations.submit(_async_request(params))
        headers = [
            ("content-type", "application/json"),
            ("x-amzn-sagemaker-outputlocation", accepted.output_location),
        ]
        if accepted.failure_location is not None:
            headers.append(("x-amzn-sagemaker-failurelocation", accepted.failure_location))
        return 202, headers, json.dumps({"InferenceId": accepted.inference_id}).encode()

    async def invoke_endpoint(
        self, name: str, scope: asgi.Scope, receive: asgi.Receive
    ) -> _Response:
        raw_headers = asgi.headers_of(scope)
        params = _bind(raw_headers, REALTIME_HEADERS)
        params["EndpointName"] = name
        try:
            params["Body"] = await asgi.read_body(receive, REALTIME_BODY_LIMIT)
        except asgi.BodyTooLarge:
            raise _too_large("body", REALTIME_BODY_LIMIT) from None
        validate.validate_input("runtime", "InvokeEndpoint", params, aws_errors.ValidationError)
        pool = await self._realtime_pool(name)
        answer = await realtime.invoke(pool, self._calls, params["Body"], raw_headers)
        if not 200 <= answer.status < 300:
            raise _model_error(answer, name)
        headers = [
            ("content-type", answer.content_type),
            ("x-amzn-invoked-production-variant", answer.variant),
        ]
        if answer.custom_attributes:
            headers.append(("x-amzn-sagemaker-custom-attributes", answer.custom_attributes))
        return 200, headers, answer.body

    async def _realtime_pool(self, name: str) -> InstancePool:
        spec = await self._invocations.realtime_endpoint(name)
        pool = self._pools(spec.name)
        if pool is None:
            raise aws_errors.ServiceUnavailable(f"Endpoint {name} has no running instance.")
        return pool


_Response = tuple[int, asgi.Headers, bytes]


def _bind(headers: dict[str, str], table: dict[str, tuple[str, bool]]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for header, (member, integer) in table.items():
        value = headers.get(header)
        if value is not None:
            params[member] = _integer(member, value) if integer else value
    return params


def _bound_headers(
    raw_headers: Iterable[tuple[bytes, bytes]], names: dict[bytes, str]
) -> dict[str, str]:
    """``asgi.headers_of`` restricted to ``names``: only the headers an operation binds are
    decoded (a repeated header keeps its last value)."""
    found: dict[str, str] = {}
    for raw_name, value in raw_headers:
        name = names.get(raw_name)
        if name is not None:
            found[name] = value.decode("latin-1")
    return found


def _integer(member: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise aws_errors.ValidationError(
            f"1 validation error detected: Value '{value}' at '{member[0].lower()}{member[1:]}' "
            "failed to satisfy constraint: Member must be an integer"
        ) from None


async def _inline_body(receive: asgi.Receive, params: dict[str, Any]) -> bytes | None:
    try:
        body = await asgi.read_body(receive, INLINE_BODY_LIMIT)
    except asgi.BodyTooLarge:
        raise _too_large("body", INLINE_BODY_LIMIT) from None
    # The JavaScript SDK v2 sends "{}" as the body of every rest-json call: with an
    # InputLocation it means "no body", not a two-byte payload.
    if not body or (body == b"{}" and "InputLocation" in params):
        return None
    return body


def _check_one_input(params: dict[str, Any]) -> None:
    has_location, has_body = "InputLocation" in params, "Body" in params
    if has_location and has_body:
        raise aws_errors.ValidationError(
            "InputLocation and Body are mutually exclusive: send the payload inline (Body, up to "
            "128,000 bytes) or by reference (InputLocation), not both."
        )
    if not has_location and not has_body:
        raise aws_errors.ValidationError(
            "Either InputLocation or Body must be provided: upload the payload to S3 and pass "
            "its s3:// URI as InputLocation, or send it inline as Body (up to 128,000 bytes)."
        )


def _async_request(params: dict[str, Any]) -> AsyncRequest:
    return AsyncRequest(
        endpoint_name=params["EndpointName"],
        input_location=params.get("InputLocation"),
        body=params.get("Body"),
        content_type=params.get("ContentType"),
        accept=params.get("Accept"),
        custom_attributes=params.get("CustomAttributes"),
        inference_id=params.get("InferenceId"),
        request_ttl_seconds=params.get("RequestTTLSeconds"),
        invocation_timeout_seconds=params.get("InvocationTimeoutSeconds"),
        s3_output_path_extension=params.get("S3OutputPathExtension"),
        filename=params.get("Filename"),
    )


def _too_large(member: str, limit: int) -> aws_errors.ValidationError:
    return aws_errors.ValidationError(
        f"1 validation error detected: Value at '{member}' failed to satisfy constraint: "
        f"Member must have length less than or equal to {limit}"
    )


def _model_error(answer: realtime.ModelAnswer, name: str) -> aws_errors.ModelError:
    kind = "client" if answer.status < 500 else "server"
    text = answer.body.decode(errors="replace")
    return aws_errors.ModelError(
        f'Received {kind} error ({answer.status}) from primary with message "{text}". '
        f"See the model log of endpoint {name} in the inferq data directory.",
        OriginalStatusCode=answer.status,
        OriginalMessage=text,
        LogStreamArn=f"arn:aws:logs:local:log-group:/aws/sagemaker/Endpoints/{name}",
    )


_AS_AWS: dict[type[errors.InferqError], type[aws_errors.AwsError]] = {
    errors.NotFound: aws_errors.ValidationError,
    errors.InvalidRequest: aws_errors.ValidationError,
    errors.InvocationTimeout: aws_errors.ModelError,
    errors.RunnerError: aws_errors.ServiceUnavailable,
    errors.BackendError: aws_errors.ServiceUnavailable,
}


def _as_aws(exc: errors.InferqError) -> aws_errors.AwsError:
    for family, aws_class in _AS_AWS.items():
        if isinstance(exc, family):
            return aws_class(exc.message)
    return aws_errors.InternalFailure()
