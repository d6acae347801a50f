"""One invocation: decode, predict, encode through the resolved handlers.

Runs on a worker thread. Mirrors the toolkit's ``Transformer.transform``: JSON and CSV bodies
reach the handlers as ``str``; a missing or ``*/*`` Accept becomes the default accept; a tuple
result is ``(body, content_type)``; an exception becomes its toolkit status (500 by default).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from inferq.modelserver import codecs, content_types, errors
from inferq.modelserver.context import Context, RequestHeaders
from inferq.modelserver.handlers import HandlerSet

logger = logging.getLogger(__name__)

TEXT_PLAIN = "text/plain; charset=utf-8"
#: response headers a handler may not set through the context: the server owns them
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def response_body(value: Any) -> bytes:
    """What a handler returned, as bytes: str is UTF-8, other objects become JSON."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    try:
        return json.dumps(value, default=codecs.json_default).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"the handler returned a {type(value).__name__}, which is neither bytes nor str "
            "and cannot be written as JSON: return the encoded body from output_fn"
        ) from exc


class Transformer:
    """The loaded model and its handlers, ready to serve invocations."""

    def __init__(
        self, handlers: HandlerSet, model: Any, context: Context, default_accept: str
    ) -> None:
        self._handlers = handlers
        self._model = model
        self._context = context
        self._default_accept = default_accept

    @property
    def model(self) -> Any:
        return self._model

    def invoke(self, body: bytes, raw_headers: Iterable[tuple[bytes, bytes]]) -> Response:
        """Serve one request; never raises."""
        context = self._context.for_request(RequestHeaders.from_raw(raw_headers))
        try:
            result, content_type = self._transform(body, context)
            return self._success(result, content_type, context)
        except BaseException as exc:  # user code may even raise SystemExit: answer, don't die
            return _failure(exc)

    def _transform(self, body: bytes, context: Context) -> tuple[Any, str]:
        headers = context.get_all_request_header(0)
        content_type = headers.get("content-type")
        accept = headers.get("accept")
        if not accept or accept == content_types.ANY:
            accept = self._default_accept
        data: bytes | str = body
        if content_type in content_types.UTF8_TYPES:
            data = _utf8(body, content_type)
        result = self._run(data, content_type, accept, context)
        if isinstance(result, tuple):
            return result[0], str(result[1] or accept)
        return result, accept

    def _run(
        self, data: bytes | str, content_type: str | None, accept: str, context: Context
    ) -> Any:
        handlers, model = self._handlers, self._model
        if handlers.transform_fn is not None:
            return handlers.transform_fn.call(model, data, content_type, accept, context=context)
        decoded = handlers.input_fn.call(data, content_type, context=context)
        prediction = handlers.predict_fn.call(decoded, model, context=context)
        return handlers.output_fn.call(prediction, accept, context=context)

    @staticmethod
    def _success(result: Any, content_type: str, context: Context) -> Response:
        status, _ = context.get_response_status(0)
        extra = tuple(
            (name, value)
            for name, value in context.get_response_headers(0).items()
            if name.lower() not in _RESERVED_HEADERS
        )
        return Response(status, response_body(result), content_type, extra)


def _utf8(body: bytes, content_type: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise errors.GenericInferenceToolkitError(
            int(HTTPStatus.BAD_REQUEST), f"The {content_type} request body is not UTF-8: {exc}"
        ) from exc


def _failure(exc: BaseException) -> Response:
    status, message = errors.status_and_message(exc)
    if status >= 500:
        logger.error("event=invocation_failed status=%d error=%r", status, message, exc_info=exc)
    else:
        logger.warning("event=invocation_rejected status=%d error=%r", status, message)
    return Response(status, message.encode("utf-8", "replace"), TEXT_PLAIN)
