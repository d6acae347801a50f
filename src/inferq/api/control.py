"""SageMaker control plane (json 1.1): ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``.

Every operation goes the same way: parse the JSON body, validate it against the operation's
input shape in botocore's model, call ``EndpointService`` through a thin handler named after the
operation, and serialize the output shape. Errors always carry a JSON body whose ``__type``
names the code: botocore's json protocol reads nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from inferq import errors
from inferq.api import asgi
from inferq.aws import errors as aws_errors
from inferq.aws import jsonproto, validate
from inferq.aws._shapes import control
from inferq.services.endpoints import EndpointService

log = logging.getLogger("inferq.api")

TARGET_PREFIX = control.METADATA["targetPrefix"]
#: far above any real control-plane request (a model's environment is at most 32 KB per container)
MAX_BODY_BYTES = 4 * 1024 * 1024

Params = dict[str, Any]
Output = Mapping[str, Any] | None
Handler = Callable[[EndpointService, Params], Awaitable[Output]]

#: domain errors as the control plane reports them; anything unlisted is an InternalFailure
_AS_AWS: dict[type[errors.InferqError], type[aws_errors.AwsError]] = {
    errors.NotFound: aws_errors.ValidationException,
    errors.Conflict: aws_errors.ValidationException,
    errors.InvalidRequest: aws_errors.ValidationException,
    errors.BackendError: aws_errors.ServiceUnavailable,
}


# --- handlers, one per operation -----------------------------------------------------------


async def create_model(svc: EndpointService, params: Params) -> Output:
    return await svc.create_model(cast("control.CreateModelInput", params))


async def describe_model(svc: EndpointService, params: Params) -> Output:
    return await svc.describe_model(params["ModelName"])


async def list_models(svc: EndpointService, params: Params) -> Output:
    return await svc.list_models(cast("control.ListModelsInput", params))


async def delete_model(svc: EndpointService, params: Params) -> Output:
    await svc.delete_model(params["ModelName"])
    return None


async def create_endpoint_config(svc: EndpointService, params: Params) -> Output:
    return await svc.create_endpoint_config(cast("control.CreateEndpointConfigInput", params))


async def describe_endpoint_config(svc: EndpointService, params: Params) -> Output:
    return await svc.describe_endpoint_config(params["EndpointConfigName"])


async def list_endpoint_configs(svc: EndpointService, params: Params) -> Output:
    return await svc.list_endpoint_configs(cast("control.ListEndpointConfigsInput", params))


async def delete_endpoint_config(svc: EndpointService, params: Params) -> Output:
    await svc.delete_endpoint_config(params["EndpointConfigName"])
    return None


async def create_endpoint(svc: EndpointService, params: Params) -> Output:
    return await svc.create_endpoint(cast("control.CreateEndpointInput", params))


async def describe_endpoint(svc: EndpointService, params: Params) -> Output:
    return await svc.describe_endpoint(params["EndpointName"])


async def list_endpoints(svc: EndpointService, params: Params) -> Output:
    return await svc.list_endpoints(cast("control.ListEndpointsInput", params))


async def delete_endpoint(svc: EndpointService, params: Params) -> Output:
    await svc.delete_endpoint(params["EndpointName"])
    return None


async def update_endpoint(svc: EndpointService, params: Params) -> Output:
    return await svc.update_endpoint(cast("control.UpdateEndpointInput", params))


async def update_endpoint_weights_and_capacities(svc: EndpointService, params: Params) -> Output:
    request = cast("control.UpdateEndpointWeightsAndCapacitiesInput", params)
    return await svc.update_endpoint_weights_and_capacities(request)


HANDLERS: dict[str, Handler] = {
    "CreateModel": create_model,
    "DescribeModel": describe_model,
    "ListModels": list_models,
    "DeleteModel": delete_model,
    "CreateEndpointConfig": create_endpoint_config,
    "DescribeEndpointConfig": describe_endpoint_config,
    "ListEndpointConfigs": list_endpoint_configs,
    "DeleteEndpointConfig": delete_endpoint_config,
    "CreateEndpoint": create_endpoint,
    "DescribeEndpoint": describe_endpoint,
    "ListEndpoints": list_endpoints,
    "DeleteEndpoint": delete_endpoint,
    "UpdateEndpoint": update_endpoint,
    "UpdateEndpointWeightsAndCapacities": update_endpoint_weights_and_capacities,
}


# --- the app -------------------------------------------------------------------------------


class ControlApi:
    """Pure ASGI app answering the SageMaker control-plane subset inferq implements."""

    def __init__(self, service: EndpointService) -> None:
        self._service = service

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return
        rid = asgi.request_id(scope)
        try:
            body = await self._answer(scope, receive)
            status, headers = 200, jsonproto.response_headers(rid)
        except aws_errors.AwsError as exc:
            status, headers, body = _render(exc, rid)
        except errors.InferqError as exc:
            status, headers, body = _render(_as_aws(exc), rid)
        except Exception:
            log.exception("control_request_failed", extra={"request_id": rid})
            status, headers, body = _render(aws_errors.InternalFailure(), rid)
        await asgi.respond(send, status, headers, body)

    async def _answer(self, scope: asgi.Scope, receive: asgi.Receive) -> bytes:
        operation = _operation(scope)
        params = jsonproto.parse_body(await _body(receive))
        validate.validate_input(
            "control",
            operation,
            params,
            aws_errors.ValidationException,
            jsonproto.SerializationException,
        )
        output = await HANDLERS[operation](self._service, params)
        shape = control.OPERATIONS[operation].get("output")
        return jsonproto.dump_output(control.SHAPES, shape, output or {})


def _operation(scope: asgi.Scope) -> str:
    target = asgi.headers_of(scope).get("x-amz-target")
    operation = jsonproto.operation_name(target, TARGET_PREFIX)
    if operation not in HANDLERS or scope["method"] != "POST":
        raise aws_errors.UnknownOperationException(
            f"inferq does not implement {target or 'this operation'}; it serves "
            f"{', '.join(f'{TARGET_PREFIX}.{name}' for name in HANDLERS)}."
        )
    return operation


async def _body(receive: asgi.Receive) -> bytes:
    try:
        return await asgi.read_body(receive, MAX_BODY_BYTES)
    except asgi.BodyTooLarge:
        raise aws_errors.ValidationException(
            f"The request body is larger than {MAX_BODY_BYTES} bytes."
        ) from None


def _as_aws(exc: errors.InferqError) -> aws_errors.AwsError:
    for family, aws_class in _AS_AWS.items():
        if isinstance(exc, family):
            return aws_class(exc.message)
    log.error("control_unmapped_error", extra={"error": repr(exc)})
    return aws_errors.InternalFailure()


def _render(exc: aws_errors.AwsError, rid: str) -> tuple[int, asgi.Headers, bytes]:
    return aws_errors.render_json(exc, rid, content_type=jsonproto.CONTENT_TYPE)
