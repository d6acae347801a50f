"""InputReader: inputs from the embedded store, from URLs, and from S3 outside inferq."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.helpers.web import breaking_server, serving

from inferq.domain.locations import S3Location
from inferq.storage.base import Body, ObjectInfo, PutOptions
from inferq.storage.memory import MemoryObjectStore
from inferq.worker.inputs import InputReader, InputUnavailable, Payload, s3_location

BIG = bytes(range(256)) * 8192  # 2 MiB: more than one chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def read(payload: Payload) -> bytes:
    if isinstance(payload.body, bytes):
        return payload.body
    return b"".join([chunk async for chunk in payload.body])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def store() -> MemoryObjectStore:
    memory = MemoryObjectStore()
    await memory.create_bucket("local")
    options = PutOptions(content_type="application/json")
    await memory.put_object("local", "in/a.json", _once(b'{"a": 1}'), options)
    return memory


@pytest.fixture
async def reader(
    store: MemoryObjectStore, session: aiohttp.ClientSession
) -> AsyncIterator[InputReader]:
    opened = InputReader(store, session)
    yield opened
    await opened.close()


async def unavailable(reader: InputReader, location: str) -> str:
    with pytest.raises(InputUnavailable) as raised:
        await reader.open(location)
    message = raised.value.message
    assert message.startswith(f"Failed to download the input from {location}: ")
    return message


# --- the embedded store --------------------------------------------------------------------


async def test_an_embedded_object_streams_with_its_length_and_content_type(
    reader: InputReader,
) -> None:
    payload = await reader.open("s3://local/in/a.json")

    assert (payload.length, payload.content_type) == (8, "application/json")
    assert await read(payload) == b'{"a": 1}'


async def test_a_missing_key_of_an_embedded_bucket_is_not_looked_for_elsewhere(
    store: MemoryObjectStore, session: aiohttp.ClientSession
) -> None:
    def no_s3() -> Any:
        raise AssertionError("S3 itself must not be asked for a bucket inferq has")

    reader = InputReader(store, session, s3_client=no_s3)

    assert "does not exist" in await unavailable(reader, "s3://local/in/nope.json")


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3://b/k/x.json", S3Location("b", "k/x.json")),
        ("https://b.s3.amazonaws.com/k/x.json", S3Location("b", "k/x.json")),
        ("https://my.b.s3.eu-west-1.amazonaws.com/k%20x", S3Location("my.b", "k x")),
        ("https://b.s3-us-west-2.amazonaws.com/k", S3Location("b", "k")),
        ("https://b.s3.dualstack.us-east-1.amazonaws.com/k", S3Location("b", "k")),
        ("https://s3.us-east-1.amazonaws.com/b/k/x", S3Location("b", "k/x")),
        ("https://s3.amazonaws.com/b/k", S3Location("b", "k")),
        ("https://b.s3.cn-north-1.amazonaws.com.cn/k", S3Location("b", "k")),
        # a presigned URL carries its own authorization: fetched as it is
        ("https://b.s3.amazonaws.com/k?X-Amz-Signature=abc", None),
        ("https://example.com/b/k", None),
        ("https://s3.example.com/b/k", None),
        ("http://b.s3.amazonaws.com/k", None),
    ],
)
def test_which_locations_are_s3_objects(location: str, expected: S3Location | None) -> None:
    assert s3_location(location) == expected


# --- URLs ----------------------------------------------------------------------------------


def file_server() -> web.Application:
    async def sized(request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/x-npy")

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/csv"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for row in (b"1,2\n", b"3,4\n"):
            await response.write(row)
        await response.write_eof()
        return response

    async def gzipped(request: web.Request) -> web.Response:
        assert request.headers["Accept-Encoding"] == "identity"
        headers = {"Content-Encoding": "gzip"}
        return web.Response(body=b"\x1f\x8b raw", headers=headers, content_type="text/plain")

    async def forbidden(request: web.Request) -> web.Response:
        return web.Response(status=403, text="<Error><Code>AccessDenied</Code></Error>")

    app = web.Application()
    app.router.add_get("/sized", sized)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/gzipped", gzipped)
    app.router.add_get("/forbidden", forbidden)
    return app


@pytest.fixture
async def files() -> AsyncIterator[str]:
    async with serving(file_server()) as url:
        yield url


async def test_a_url_streams_with_its_content_length_and_type(
    reader: InputReader, files: str
) -> None:
    payload = await reader.open(f"{files}/sized")

    assert not isinstance(payload.body, bytes), "a sized body is streamed, not buffered"
    assert (payload.length, payload.content_type) == (len(BIG), "application/x-npy")
    assert await read(payload) == BIG


async def test_a_body_without_content_length_is_read_whole_to_learn_it(
    reader: InputReader, files: str
) -> None:
    payload = await reader.open(f"{files}/chunked")

    assert (payload.body, payload.length, payload.content_type) == (b"1,2\n3,4\n", 8, "text/csv")


async def test_bytes_are_passed_as_served_not_decompressed(reader: InputReader, files: str) -> None:
    payload = await reader.open(f"{files}/gzipped")

    assert await read(payload) == b"\x1f\x8b raw"
    assert payload.length == len(b"\x1f\x8b raw")


async def test_a_url_that_is_not_200_fails_with_the_answer(reader: InputReader, files: str) -> None:
    message = await unavailable(reader, f"{files}/forbidden")
    assert "HTTP 403 Forbidden: <Error><Code>AccessDenied</Code></Error>" in message

    assert "HTTP 404 Not Found" in await unavailable(reader, f"{files}/nothing-here")


async def test_unreachable_hosts_fail_with_the_cause(reader: InputReader) -> None:
    assert "Cannot connect to host" in await unavailable(reader, "https://inferq-test.invalid/x")

    with_no_server = f"http://127.0.0.1:{_closed_port()}/x"
    assert "Cannot connect to host" in await unavailable(reader, with_no_server)


async def test_an_unread_url_body_gives_its_connection_back(store: MemoryObjectStore) -> None:
    """The model call may fail before reading the input: the download must not hold on."""
    async with (
        serving(file_server()) as url,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as one_connection,
    ):
        reader = InputReader(store, one_connection)
        payload = await reader.open(f"{url}/sized")
        del payload
        gc.collect()

        again = await asyncio.wait_for(reader.open(f"{url}/sized"), 5)
        assert await read(again) == BIG


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- S3 outside inferq ---------------------------------------------------------------------


def fake_s3(objects: dict[str, tuple[bytes, str]], seen: list[web.Request]) -> web.Application:
    """GetObject, path style; bucket ``locked`` denies access."""

    async def get_object(request: web.Request) -> web.Response:
        seen.append(request)
        bucket, key = request.match_info["bucket"], request.match_info["key"]
        if bucket == "locked":
            return s3_error(403, "AccessDenied", "Access Denied")
        if (found := objects.get(f"{bucket}/{key}")) is None:
            return s3_error(404, "NoSuchKey", "The specified key does not exist.")
        body, content_type = found
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/{bucket}/{key:.+}", get_object)
    return app


def s3_error(status: int, code: str, message: str) -> web.Response:
    xml = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    return web.Response(status=status, text=xml, content_type="application/xml")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No AWS configuration but what a test sets."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXTERNAL")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "external-secret")
    return monkeypatch


@pytest.fixture
async def external(aws_env: pytest.MonkeyPatch) -> AsyncIterator[list[web.Request]]:
    """S3 outside inferq, named by ``AWS_ENDPOINT_URL_S3`` as a user would name MinIO."""
    seen: list[web.Request] = []
    objects = {"remote/in/data.npy": (BIG, "application/x-npy")}
    async with serving(fake_s3(objects, seen)) as url:
        aws_env.setenv("AWS_ENDPOINT_URL_S3", url)
        yield seen


async def test_a_bucket_inferq_lacks_is_read_from_s3_with_botocores_configuration(
    reader: InputReader, external: list[web.Request]
) -> None:
    payload = await reader.open("s3://remote/in/data.npy")

    assert (payload.length, payload.content_type) == (len(BIG), "application/x-npy")
    assert await read(payload) == BIG
    authorization = external[0].headers["Authorization"]
    assert "Credential=AKIAEXTERNAL/" in authorization
    assert "/eu-west-1/s3/aws4_request" in authorization


async def test_s3_errors_say_which_bucket_and_why(
    reader: InputReader, external: list[web.Request]
) -> None:
    missing = await unavailable(reader, "s3://remote/in/nope.npy")
    assert "bucket remote is not in inferq's object store" in missing
    assert "(NoSuchKey)" in missing and "The specified key does not exist." in missing

    denied = await unavailable(reader, "s3://locked/in/data.npy")
    assert "(AccessDenied)" in denied and "Access Denied" in denied


async def test_without_credentials_s3_is_not_called(
    reader: InputReader, external: list[web.Request], aws_env: pytest.MonkeyPatch
) -> None:
    aws_env.delenv("AWS_ACCESS_KEY_ID")
    aws_env.delenv("AWS_SECRET_ACCESS_KEY")

    assert "Unable to locate credentials" in await unavailable(reader, "s3://remote/in/data.npy")
    assert external == []


async def test_a_url_that_breaks_part_way_is_the_inputs_failure(reader: InputReader) -> None:
    async with breaking_server() as url:
        payload = await reader.open(url)
        with pytest.raises(InputUnavailable, match=f"Reading the input from {url} failed part-way"):
            await read(payload)


class Overstated(MemoryObjectStore):
    """States every object 5 bytes longer than it is, as a truncated file would."""

    async def get_object(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, Body]:
        info, body = await super().get_object(bucket, key, start, end)
        return dataclasses.replace(info, size=info.size + 5), body


async def test_an_object_shorter_than_its_stated_length_is_caught(
    session: aiohttp.ClientSession,
) -> None:
    store = Overstated()
    await store.create_bucket("inputs")
    await store.put_object("inputs", "x", _once(b"abc"), PutOptions())
    payload = await InputReader(store, session).open("s3://inputs/x")
    with pytest.raises(InputUnavailable, match="ended after 3 of 8 bytes"):
        await read(payload)
