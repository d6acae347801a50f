"""Reading a request's input, wherever its ``InputLocation`` points.

* ``s3://bucket/key`` of a bucket in inferq's own object store: streamed from there.
* ``s3://bucket/key`` of any other bucket: read from S3 (or the store that
  ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL`` name) the way every AWS SDK does, with botocore's
  own credential chain (environment, profiles, instance roles) and endpoint resolution.
* ``https://`` URLs of Amazon S3 objects (virtual-hosted or path style, unsigned) are the same
  S3 locations; any other URL, a presigned one included, is fetched as it is.

Bodies stream in chunks of about 1 MiB and keep their length, which the model is sent as
``Content-Length``. Every failure to read raises ``InputUnavailable`` naming the location and
why; the executor writes that to the request's failure location.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from inferq import errors
from inferq.aws import errors as aws_errors
from inferq.domain.locations import S3Location
from inferq.storage.base import ObjectStore

CHUNK = 1 << 20
#: connecting and each read may take this long; the whole download is not limited (it is
#: streamed into the model call, which the invocation timeout bounds)
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=60)
#: a body sent without Content-Length is read whole first (the model needs its length), up to
#: SageMaker's own limit for an asynchronous payload
MAX_UNSIZED_BYTES = 1 << 30
ERROR_BODY_LIMIT = 300
#: downloads from S3 outside inferq that may block in botocore at once
EXTERNAL_THREADS = 16
#: Amazon S3 hosts: ``[bucket.]s3[.-<region>|.dualstack...|-accelerate].amazonaws.com[.cn]``
_S3_HOST = re.compile(r"(?:(?P<bucket>.+)\.)?s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com(?:\.cn)?")


class InputUnavailable(errors.InferqError):
    """The request's input could not be read."""


class _Unreadable(Exception):
    """Why one way of reading failed; ``InputReader.open`` adds the location."""


@dataclass(frozen=True, slots=True)
class Payload:
    body: bytes | AsyncIterator[bytes]
    length: int
    content_type: str | None


S3ClientFactory = Callable[[], Any]
T = TypeVar("T")


def botocore_s3_client() -> Any:
    """An S3 client configured as any AWS SDK's would be: by the environment and the AWS config
    files, never by inferq."""
    # imported here: 0.3 s, spent only once a request reads from S3 itself
    import botocore.session

    return botocore.session.get_session().create_client("s3")


class InputReader:
    """Opens a request's ``InputLocation`` for the executor (see the module's docstring)."""

    def __init__(
        self,
        store: ObjectStore,
        session: aiohttp.ClientSession,
        *,
        s3_client: S3ClientFactory = botocore_s3_client,
    ) -> None:
        self._store = store
        self._session = session
        self._external = ExternalS3(s3_client)

    async def open(self, location: str) -> Payload:
        """Start reading ``location``; the payload's content type is the object's, if known.
        A streamed payload raises ``InputUnavailable`` from its iteration when reading fails
        part-way or the bytes do not match the stated length."""
        s3 = s3_location(location)
        try:
            payload = await (self._fetch(location) if s3 is None else self._read_s3(s3))
        except _Unreadable as exc:
            raise InputUnavailable(f"Failed to download the input from {location}: {exc}") from exc
        if isinstance(payload.body, bytes):
            return payload
        checked = _Checked(location, payload.body, payload.length)
        return Payload(checked, payload.length, payload.content_type)

    async def close(self) -> None:
        await self._external.close()

    async def _read_s3(self, location: S3Location) -> Payload:
        try:
            info, chunks = await self._store.get_object(location.bucket, location.key)
        except aws_errors.NoSuchBucket:
            return await self._external.open(location)
        except errors.InferqError as exc:
            raise _Unreadable(exc.message) from exc
        return Payload(chunks, info.size, info.content_type)

    async def _fetch(self, url: str) -> Payload:
        try:
            response = await self._session.get(
                url,
                headers={"Accept-Encoding": "identity"},
                auto_decompress=False,  # the model gets the bytes as served, of the stated length
                timeout=HTTP_TIMEOUT,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Unreadable(_describe(exc)) from exc
        content_type = response.headers.get("Content-Type")
        if response.status == 200 and response.content_length is not None:
            stream = _Stream(lambda: response.content.read(CHUNK), response.release)
            return Payload(stream, response.content_length, content_type)
        try:
            if response.status != 200:
                raise _Unreadable(await _http_failure(response))
            body = await _read_whole(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Unreadable(_describe(exc)) from exc
        finally:
            response.release()
        return Payload(body, len(body), content_type)


class ExternalS3:
    """Buckets that are not in inferq's store, read through one lazily created botocore client.

    botocore is synchronous, so every call and every read runs in threads of this reader's own,
    which slow networks can keep busy without holding up the threads the embedded store's disk
    I/O runs in.
    """

    def __init__(self, factory: S3ClientFactory) -> None:
        self._factory = factory
        self._client: Any = None
        self._creating = asyncio.Lock()
        self._threads = ThreadPoolExecutor(EXTERNAL_THREADS, thread_name_prefix="inferq-s3-input")

    async def open(self, location: S3Location) -> Payload:
        try:
            client = await self._client_once()
            response = await self._in_thread(
                partial(client.get_object, Bucket=location.bucket, Key=location.key)
            )
        except (BotoCoreError, ClientError) as exc:
            raise _Unreadable(
                f"bucket {location.bucket} is not in inferq's object store, and reading the "
                f"object from S3 failed: {exc}"
            ) from exc
        body = response["Body"]
        stream = _Stream(lambda: self._in_thread(partial(body.read, CHUNK)), body.close)
        return Payload(stream, int(response["ContentLength"]), response.get("ContentType"))

    async def close(self) -> None:
        if self._client is not None:
            await self._in_thread(self._client.close)
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _client_once(self) -> Any:
        async with self._creating:
            if self._client is None:
                self._client = await self._in_thread(self._factory)
            return self._client

    async def _in_thread(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._threads, call)


class _Checked:
    """The chunks of an input as the model call sends them. A failure while reading is the
    input's (``InputUnavailable``: the request fails with the reason, the model instance is not
    blamed), and so is a source that ends short of its stated length, for which the model
    server would otherwise wait until the invocation timeout."""

    def __init__(self, location: str, body: AsyncIterator[bytes], length: int) -> None:
        self._location = location
        self._body = body
        self._length = length
        self._seen = 0

    def __aiter__(self) -> _Checked:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await anext(self._body)
        except StopAsyncIteration:
            if self._seen != self._length:
                raise self._failed(f"it ended after {self._seen} of {self._length} bytes") from None
            raise
        except InputUnavailable:
            await self.aclose()
            raise
        except Exception as exc:  # whatever the source: the store, HTTP, botocore
            await self.aclose()  # give its connection or file back now
            raise self._failed(f"{type(exc).__name__}: {exc}") from exc
        self._seen += len(chunk)
        if self._seen > self._length:
            await self.aclose()
            raise self._failed(f"it sent more than its stated {self._length} bytes")
        return chunk

    async def aclose(self) -> None:
        close = getattr(self._body, "aclose", None)
        if close is not None:
            await close()

    def _failed(self, why: str) -> InputUnavailable:
        return InputUnavailable(f"Reading the input from {self._location} failed part-way: {why}")


class _Stream:
    """Chunks from ``read`` until it returns ``b""``. ``close`` runs when the stream ends, on
    ``aclose`` and, as a last resort, when the stream is collected without having been read
    (the model call failed first), so no connection is left open."""

    def __init__(self, read: Callable[[], Awaitable[bytes]], close: Callable[[], object]) -> None:
        self._read = read
        self._close: Callable[[], object] | None = close

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._read() if self._close is not None else b""
        if not chunk:
            self._closed()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._closed()

    def _closed(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # the event loop may be gone already
            self._closed()


def s3_location(location: str) -> S3Location | None:
    """The S3 object ``location`` names, or None for a URL to fetch as it is."""
    if location.startswith("s3://"):
        return S3Location.parse(location)
    parts = urlsplit(location)
    host = _S3_HOST.fullmatch(parts.hostname or "")
    if parts.scheme != "https" or host is None or parts.query:
        return None
    path = unquote(parts.path.removeprefix("/"))
    if host["bucket"]:
        return S3Location(host["bucket"], path)
    bucket, _, key = path.partition("/")
    return S3Location(bucket, key)


async def _http_failure(response: aiohttp.ClientResponse) -> str:
    head = await response.content.read(ERROR_BODY_LIMIT)
    text = " ".join(head.decode(errors="replace").split())
    answer = f"the server answered HTTP {response.status} {response.reason or ''}".rstrip()
    return f"{answer}: {text}" if text else answer


async def _read_whole(response: aiohttp.ClientResponse) -> bytes:
    body = bytearray()
    while chunk := await response.content.read(CHUNK):
        body += chunk
        if len(body) > MAX_UNSIZED_BYTES:
            raise _Unreadable(
                f"the body, sent without Content-Length, is larger than {MAX_UNSIZED_BYTES} bytes"
            )
    return bytes(body)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
