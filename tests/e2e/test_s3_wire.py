"""Wire details of the S3 API that boto3 hides: raw requests, disconnects, error paths."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tests.helpers.s3 import ASGIApp, s3_client, serve_s3
from tests.helpers.server import serve_in_thread

from inferq.api.s3 import S3Api
from inferq.storage.memory import MemoryObjectStore

MiB = 1024 * 1024


def raw_request(url: str, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """An unsigned request, for wire details boto3 hides."""
    connection = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
    try:
        connection.request(method, path, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def bare_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Never wrapped: for unsigned requests that check wire details boto3 hides."""
    with serve_s3(tmp_path_factory.mktemp("bare"), None) as url:
        assert raw_request(url, "PUT", "/raw")[0] == 200
        yield url


def test_head_of_a_missing_key_has_no_body(bare_endpoint: str) -> None:
    assert raw_request(bare_endpoint, "HEAD", "/raw/missing") == (404, b"")
    status, body = raw_request(bare_endpoint, "GET", "/raw/missing")
    assert status == 404
    assert b"<Code>NoSuchKey</Code>" in body


# --- errors and disconnects ------------------------------------------------------------------


def test_rejected_documents_and_routes(bare_endpoint: str) -> None:
    doctype = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY e "x">]><Delete>&e;</Delete>'
    status, body = raw_request(bare_endpoint, "POST", "/raw?delete", doctype)
    assert (status, b"<Code>MalformedXML</Code>" in body) == (400, True)
    status, body = raw_request(bare_endpoint, "GET", "/raw?acl")
    assert (status, b"<Code>NotImplemented</Code>" in body) == (501, True)
    status, _ = raw_request(bare_endpoint, "PATCH", "/raw/k")
    assert status == 405


class BrokenStore(MemoryObjectStore):
    async def list_buckets(self) -> list[Any]:
        raise RuntimeError("disk on fire")


def test_unexpected_errors_are_internal_errors(tmp_path: Path) -> None:
    with serve_in_thread(S3Api(BrokenStore())) as url:
        status, body = raw_request(url, "GET", "/")
        assert status == 500
        assert b"<Code>InternalError</Code>" in body
        assert b"disk on fire" not in body
        assert raw_request(url, "HEAD", "/no-such-bucket") == (404, b"")


def test_a_client_that_goes_away_leaves_nothing(tmp_path: Path) -> None:
    spools = tmp_path / "tmp"
    with serve_s3(tmp_path, None) as url:
        s3_client(url).create_bucket(Bucket="half")
        address = urlsplit(url)
        connection = socket.create_connection((address.hostname, address.port))
        connection.sendall(b"PUT /half/k HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n")
        connection.sendall(os.urandom(3 * MiB))
        assert wait_for(lambda: any(spools.iterdir())), "the upload never reached the store"
        connection.close()
        assert wait_for(lambda: not any(spools.iterdir())), "a spool was left behind"
        assert s3_client(url).list_objects_v2(Bucket="half")["KeyCount"] == 0


def test_an_abandoned_download_leaves_no_open_file(tmp_path: Path) -> None:
    def open_objects() -> int:
        fds = Path("/proc/self/fd").iterdir()
        return sum("/objects/" in os.readlink(fd) for fd in fds if fd.exists())

    with serve_s3(tmp_path, None) as url:
        s3 = s3_client(url)
        s3.create_bucket(Bucket="away")
        s3.put_object(Bucket="away", Key="big", Body=os.urandom(64 * MiB))
        address = urlsplit(url)
        connection = socket.create_connection((address.hostname, address.port))
        connection.sendall(b"GET /away/big HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.recv(65536)
        assert open_objects() == 1
        connection.close()
        assert wait_for(lambda: open_objects() == 0), "the object file was left open"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def crc32_middleware(app: ASGIApp) -> ASGIApp:
    """Stands in for the SigV4 layer: leaves a verified CRC32 once the body has been read."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        crc = 0

        async def counting_receive() -> Any:
            nonlocal crc
            message = await receive()
            crc = zlib.crc32(message.get("body", b""), crc)
            if not message.get("more_body"):
                scope["inferq.checksums"] = {
                    "CRC32": base64.b64encode(crc.to_bytes(4, "big")).decode()
                }
            return message

        await app(scope, counting_receive, send)

    return wrapped


def test_checksums_are_stored_and_returned(tmp_path: Path) -> None:
    with serve_s3(tmp_path, crc32_middleware) as url:
        s3 = s3_client(url)
        s3.create_bucket(Bucket="sums")
        s3.put_object(Bucket="sums", Key="k", Body=b"checked")
        expected = base64.b64encode(zlib.crc32(b"checked").to_bytes(4, "big")).decode()
        head = s3.head_object(Bucket="sums", Key="k", ChecksumMode="ENABLED")
        assert head["ChecksumCRC32"] == expected
        assert "ChecksumCRC32" not in s3.head_object(Bucket="sums", Key="k")
        got = s3.get_object(Bucket="sums", Key="k", ChecksumMode="ENABLED")
        assert (got["ChecksumCRC32"], got["Body"].read()) == (expected, b"checked")
        ranged = s3.get_object(Bucket="sums", Key="k", ChecksumMode="ENABLED", Range="bytes=0-1")
        assert "ChecksumCRC32" not in ranged
