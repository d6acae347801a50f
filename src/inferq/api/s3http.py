"""The HTTP side of the S3 API: requests parsed from ASGI, responses and errors sent back.

Object headers, ranges and preconditions live in ``inferq.api.s3objects``; this module only knows
paths, queries, bodies and how a response (a byte string or a stream) goes out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import parse_qsl, unquote_to_bytes

from inferq import errors
from inferq.api import asgi
from inferq.aws import errors as aws_errors
from inferq.aws import s3xml
from inferq.storage.base import Body, PutOptions

log = logging.getLogger("inferq.api.s3")

T = TypeVar("T")
XML_HEADERS: asgi.Headers = [("content-type", "application/xml")]
#: after this long a slow CompleteMultipartUpload/CopyObject answers 200 and keeps the
#: connection alive with whitespace, as S3 does; errors then arrive in the 200's body
PATIENCE_SECONDS = 2.0
KEEPALIVE_SECONDS = 5.0


@dataclass(frozen=True, kw_only=True, slots=True)
class S3Request:
    scope: asgi.Scope
    receive: asgi.Receive
    request_id: str
    method: str
    bucket: str
    #: None for the service (``/``) and bucket (``/bucket`` or ``/bucket/``) level
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def resource(self) -> str:
        return f"/{self.bucket}/{self.key}" if self.key is not None else f"/{self.bucket}"


@dataclass(kw_only=True, slots=True)
class Response:
    status: int = 200
    headers: asgi.Headers = field(default_factory=list)
    body: bytes | Body = b""


def parse_request(scope: asgi.Scope, receive: asgi.Receive, request_id: str) -> S3Request:
    bucket, key = split_path(scope)
    return S3Request(
        scope=scope,
        receive=receive,
        request_id=request_id,
        method=scope["method"],
        bucket=bucket,
        key=key,
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), True)),
        headers=asgi.headers_of(scope),
    )


def split_path(scope: asgi.Scope) -> tuple[str, str | None]:
    """Bucket and key from the raw path, percent-decoded once: ``%2F``, ``//`` and a trailing
    ``/`` are all part of the key."""
    raw: bytes | None = scope.get("raw_path")
    try:
        path = unquote_to_bytes(raw).decode("utf-8") if raw else scope["path"]
    except UnicodeDecodeError:
        raise aws_errors.InvalidURI() from None
    bucket, _, key = path[1:].partition("/")
    return bucket, key or None


def int_param(request: S3Request, name: str, default: int | None = None) -> int:
    value = request.query.get(name)
    if value is None and default is not None:
        return default
    if value is None or not value.isdigit():
        raise aws_errors.InvalidArgument(
            f"Provided {name} not an integer or within integer range",
            ArgumentName=name,
            ArgumentValue=value or "",
        )
    return int(value)


# --- request bodies --------------------------------------------------------------------------


async def request_body(request: S3Request, options: PutOptions | None) -> AsyncIterator[bytes]:
    """The (already decoded and verified) body as it arrives; at its end, the checksums the
    SigV4 layer verified are added to ``options``, which the store reads only then."""
    received = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise aws_errors.IncompleteBody()
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            break
    expected = declared_length(request.headers)
    if expected is not None and received != expected:
        raise aws_errors.IncompleteBody()
    if options is not None:
        options.checksums.update(verified_checksums(request.scope))


def declared_length(headers: dict[str, str]) -> int | None:
    """The body's length once decoded; None when the request does not say."""
    value = headers.get("x-amz-decoded-content-length")
    if value is None and "aws-chunked" not in headers.get("content-encoding", ""):
        value = headers.get("content-length")
    return int(value) if value is not None and value.isdigit() else None


def verified_checksums(scope: asgi.Scope) -> dict[str, str]:
    return dict(scope.get("inferq.checksums") or {})


async def read_document(request: S3Request, limit: int) -> bytes:
    try:
        return await asgi.read_body(request.receive, limit)
    except asgi.BodyTooLarge:
        raise aws_errors.MaxMessageLengthExceeded() from None


# --- responses -------------------------------------------------------------------------------


def xml_response(document: bytes, status: int = 200) -> Response:
    return Response(status=status, headers=list(XML_HEADERS), body=document)


async def send_response(
    send: asgi.Send, receive: asgi.Receive, response: Response, *, request_id: str, head: bool
) -> None:
    headers = _with_standard_headers(response, request_id)
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    if isinstance(response.body, bytes):
        await send({"type": "http.response.body", "body": b"" if head else response.body})
        return
    try:
        await _stream(send, receive, response.body)
    except Exception:  # too late for an error document: the connection is cut instead
        log.exception("s3_response_aborted", extra={"request_id": request_id})
        raise
    finally:
        await close_body(response.body)


async def _stream(send: asgi.Send, receive: asgi.Receive, body: Body) -> None:
    """Send ``body``; stop reading it as soon as the client has gone (sends would be dropped)."""
    gone = asyncio.create_task(_client_gone(receive))
    try:
        async for chunk in body:
            if gone.done() and gone.result():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()


async def _client_gone(receive: asgi.Receive) -> bool:
    """Wait for ``http.disconnect``; False if ``receive`` fails, which says nothing about it."""
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:
        return False
    return True


async def close_body(body: Body) -> None:
    """Release a stream that may not have been read to its end (an open file, say)."""
    closer = getattr(body, "aclose", None)
    if closer is not None:
        await closer()


def _with_standard_headers(response: Response, request_id: str) -> list[tuple[bytes, bytes]]:
    names = {name for name, _ in response.headers}
    headers = list(response.headers)
    if "x-amz-request-id" not in names:
        headers.append(("x-amz-request-id", request_id))
    if isinstance(response.body, bytes) and "content-length" not in names:
        headers.append(("content-length", str(len(response.body))))
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def error_response(error: Exception, request_id: str, resource: str, *, head: bool) -> Response:
    """The S3 ``<Error>`` document; HEAD and 304 answers carry the status only."""
    aws_error = as_aws_error(error, request_id, resource)
    status, headers, body = aws_errors.render_xml(aws_error, request_id, resource)
    return Response(status=status, headers=headers, body=b"" if head or status == 304 else body)


def error_document(error: Exception, request: S3Request) -> bytes:
    aws_error = as_aws_error(error, request.request_id, request.resource)
    return aws_errors.render_xml(aws_error, request.request_id, request.resource)[2]


def as_aws_error(error: Exception, request_id: str, resource: str) -> aws_errors.AwsError:
    if isinstance(error, aws_errors.AwsError):
        return error
    if isinstance(error, errors.NotFound):
        return aws_errors.NoSuchKey(error.message)
    if isinstance(error, errors.IntegrityError):
        return aws_errors.BadDigest(error.message)
    if isinstance(error, errors.InvalidRequest):
        return aws_errors.InvalidArgument(error.message)
    log.error(
        "s3_internal_error", exc_info=error, extra={"request_id": request_id, "resource": resource}
    )
    return aws_errors.S3Error()


async def respond_when_done(
    task: asyncio.Task[T], render: Callable[[T], bytes], request: S3Request
) -> Response:
    """Answer normally if ``task`` ends soon; otherwise start a 200 and send whitespace until
    it does, then the result or the error document (clients check 200s for ``<Error>``)."""
    done, _ = await asyncio.wait({task}, timeout=PATIENCE_SECONDS)
    if done:
        return xml_response(render(task.result()))
    return Response(headers=list(XML_HEADERS), body=_keep_alive(task, render, request))


async def _keep_alive(
    task: asyncio.Task[T], render: Callable[[T], bytes], request: S3Request
) -> AsyncIterator[bytes]:
    yield s3xml.XML_DECLARATION
    while not (await asyncio.wait({task}, timeout=KEEPALIVE_SECONDS))[0]:
        yield b" "
    try:
        document = render(task.result())
    except Exception as error:
        document = error_document(error, request)
    yield document.removeprefix(s3xml.XML_DECLARATION)
