"""SigV4Middleware driven by requests that botocore itself signs, and by real boto3 clients."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import boto3
import pytest
import uvicorn
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.configloader import raw_config_parse
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum
from starlette.types import Message, Receive, Scope, Send

from inferq.auth import SigV4Middleware, StaticCredentials, credentials, payload
from inferq.aws import errors
from inferq.errors import ConfigError

ACCESS_KEY = "AKIAINFERQTESTKEY000"
SECRET = "inferq/test+secret/0123456789abcdefghijklm"
CREDENTIALS = Credentials(ACCESS_KEY, SECRET)
STORE = StaticCredentials({ACCESS_KEY: SECRET})
HOST = "http://localhost:8080"


# --- a tiny application and how to call it ---------------------------------------------------


async def read_all(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


async def respond(send: Send, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    raw = [(name.encode(), value.encode()) for name, value in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the body, then describes what it saw; renders body errors as the lead's handler."""
    try:
        body = await read_all(receive)
    except errors.AwsError as error:
        await respond(send, *errors.render_xml(error, scope["inferq.request_id"]))
        return
    seen = {
        "body": body.decode("latin-1"),
        "request_id": scope.get("inferq.request_id"),
        "access_key": scope.get("inferq.access_key"),
        "service": scope.get("inferq.service"),
        "region": scope.get("inferq.region"),
        "checksums": scope.get(payload.CHECKSUMS_KEY),
        "length": scope.get(payload.DECODED_LENGTH_KEY),
        "headers": {name.decode(): value.decode() for name, value in scope["headers"]},
    }
    await respond(send, 200, [("content-type", "application/json")], json.dumps(seen).encode())


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        if self.headers["content-type"] == "application/xml":
            return self.body.split(b"<Code>")[1].split(b"</Code>")[0].decode()
        return str(self.json["__type"])


def to_scope(request: AWSRequest) -> tuple[Scope, bytes]:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    headers = [(name.lower().encode(), value.encode()) for name, value in prepared.headers.items()]
    if not any(name == b"host" for name, _ in headers):
        headers.append((b"host", url.netloc.encode()))
    body = prepared.body or b""
    body = body.encode() if isinstance(body, str) else body
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": prepared.method,
        "scheme": url.scheme,
        "path": unquote(url.path),
        "raw_path": url.path.encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "headers": headers,
    }
    return scope, body


def call(
    scope: Scope,
    body: bytes = b"",
    *,
    split: int | None = None,
    middleware: SigV4Middleware | None = None,
) -> Response:
    size = split or max(len(body), 1)
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    queue: list[Message] = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    app = middleware or SigV4Middleware(echo, STORE)
    asyncio.run(app(scope, receive, send))
    start, *bodies = sent
    headers = {name.decode(): value.decode() for name, value in start["headers"]}
    return Response(start["status"], headers, b"".join(m.get("body", b"") for m in bodies))


def sign(request: AWSRequest, signer: Any) -> tuple[Scope, bytes]:
    signer.add_auth(request)
    return to_scope(request)


def s3_request(method: str, path: str, data: bytes = b"", **headers: str) -> AWSRequest:
    return AWSRequest(method=method, url=HOST + path, data=data, headers=headers)


def s3(request: AWSRequest) -> tuple[Scope, bytes]:
    return sign(request, S3SigV4Auth(CREDENTIALS, "s3", "us-east-1"))


def sagemaker(request: AWSRequest, credentials: Credentials = CREDENTIALS) -> tuple[Scope, bytes]:
    return sign(request, SigV4Auth(credentials, "sagemaker", "us-east-1"))


def control_plane(operation: str, body: dict[str, Any]) -> AWSRequest:
    headers = {
        "X-Amz-Target": f"SageMaker.{operation}",
        "Content-Type": "application/x-amz-json-1.1",
    }
    return AWSRequest(method="POST", url=HOST + "/", data=json.dumps(body), headers=headers)


# --- accepted requests -----------------------------------------------------------------------


def test_a_control_plane_call_is_accepted_and_its_body_replayed() -> None:
    scope, body = sagemaker(control_plane("ListEndpoints", {"MaxResults": 10}))
    response = call(scope, body, split=5)
    assert response.status == 200
    seen = response.json
    assert json.loads(seen["body"]) == {"MaxResults": 10}
    assert (seen["access_key"], seen["service"], seen["region"]) == (
        ACCESS_KEY,
        "sagemaker",
        "us-east-1",
    )
    assert uuid.UUID(seen["request_id"])


def test_a_runtime_call_with_an_encoded_path_is_accepted() -> None:
    request = AWSRequest(
        method="POST",
        url=HOST + "/endpoints/my%20endpoint/async-invocations",
        headers={"X-Amzn-SageMaker-InputLocation": "s3://bucket/in.json"},
    )
    scope, body = sagemaker(request)
    assert call(scope, body).status == 200


def test_an_s3_put_with_a_signed_body_is_accepted() -> None:
    scope, body = s3(s3_request("PUT", "/bucket/key", b"hello world"))
    response = call(scope, body, split=3)
    assert response.status == 200
    assert response.json["body"] == "hello world"
    assert response.json["length"] == 11


def test_an_s3_key_with_reserved_and_unicode_characters_is_accepted() -> None:
    key = quote("dir/a b+c~é(1)!*'.txt", safe="/~")
    scope, body = s3(s3_request("GET", f"/bucket/{key}?prefix=a%20b&list-type=2"))
    assert call(scope, body).status == 200


def test_an_unsigned_payload_and_a_checksum_header_are_accepted() -> None:
    data = b"x" * 5000
    request = s3_request("PUT", "/bucket/key", data, **{"x-amz-checksum-crc32": crc32(data)})
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    request.url = request.url.replace("http://", "https://")
    scope, body = s3(request)
    assert dict(scope["headers"])[b"x-amz-content-sha256"] == b"UNSIGNED-PAYLOAD"
    response = call(scope, body, split=1000)
    assert response.json["checksums"] == {"CRC32": crc32(data)}


def test_botocores_aws_chunked_trailer_upload_is_decoded() -> None:
    data = bytes(range(256)) * 5000
    encoded = AwsChunkedWrapper(BytesIO(data), Crc32Checksum, "x-amz-checksum-crc32").read()
    request = s3_request(
        "PUT",
        "/bucket/key",
        encoded,
        **{
            "Content-Encoding": "aws-chunked",
            "X-Amz-Trailer": "x-amz-checksum-crc32",
            "X-Amz-Decoded-Content-Length": str(len(data)),
        },
    )
    request.context["checksum"] = {"request_algorithm": {"in": "trailer", "algorithm": "crc32"}}
    scope, body = s3(request)
    assert dict(scope["headers"])[b"x-amz-content-sha256"] == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    response = call(scope, body, split=65536)
    assert response.status == 200
    assert response.json["body"].encode("latin-1") == data
    assert response.json["checksums"] == {"CRC32": crc32(data)}
    assert "content-encoding" not in response.json["headers"]
    assert response.json["headers"]["content-length"] == str(len(data))


def test_presigned_urls_are_accepted() -> None:
    for signer in (
        S3SigV4QueryAuth(CREDENTIALS, "s3", "us-east-1", expires=60),
        SigV4QueryAuth(CREDENTIALS, "sagemaker", "us-east-1", expires=60),
    ):
        scope, body = sign(s3_request("GET", "/bucket/some%20key?versionId=3"), signer)
        response = call(scope, body)
        assert response.status == 200, response.body
        assert response.json["service"] == signer._service_name


def test_public_paths_and_lifespan_skip_authentication() -> None:
    scope, _ = to_scope(AWSRequest(method="GET", url=HOST + "/ping"))
    assert call(scope).status == 200
    calls: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["type"])

    asyncio.run(SigV4Middleware(app, STORE)({"type": "lifespan"}, read_nothing, ignore))
    assert calls == ["lifespan"]


async def read_nothing() -> Message:
    return {"type": "http.disconnect"}


async def ignore(message: Message) -> None:
    return None


def test_websockets_are_refused() -> None:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(
        SigV4Middleware(echo, STORE)({"type": "websocket", "path": "/"}, read_nothing, send)
    )
    assert sent == [{"type": "websocket.close", "code": 1008}]


# --- rejected requests -------------------------------------------------------------------------


def test_missing_authentication() -> None:
    for url, headers, code, content_type in (
        ("/bucket/key", {}, "AccessDenied", "application/xml"),
        (
            "/",
            {"X-Amz-Target": "SageMaker.ListEndpoints"},
            "MissingAuthenticationTokenException",
            "application/x-amz-json-1.1",
        ),
        ("/endpoints/e/invocations", {}, "MissingAuthenticationTokenException", "application/json"),
    ):
        scope, _ = to_scope(AWSRequest(method="POST", url=HOST + url, headers=headers))
        response = call(scope)
        assert (response.status, response.code) == (403, code)
        assert response.headers["content-type"] == content_type
        assert uuid.UUID(response.headers["x-amzn-requestid"])


def test_an_unknown_access_key() -> None:
    stranger = Credentials("AKIASTRANGER00000000", SECRET)
    scope, body = sign(s3_request("GET", "/bucket"), S3SigV4Auth(stranger, "s3", "us-east-1"))
    response = call(scope, body)
    assert (response.status, response.code) == (403, "InvalidAccessKeyId")
    assert b"<AWSAccessKeyId>AKIASTRANGER00000000</AWSAccessKeyId>" in response.body
    scope, body = sagemaker(control_plane("ListModels", {}), stranger)
    response = call(scope, body)
    assert (response.status, response.code) == (403, "UnrecognizedClientException")
    assert response.headers["content-type"] == "application/x-amz-json-1.1"


def test_a_wrong_secret() -> None:
    wrong = Credentials(ACCESS_KEY, SECRET + "x")
    scope, body = sign(s3_request("GET", "/bucket"), S3SigV4Auth(wrong, "s3", "us-east-1"))
    response = call(scope, body)
    assert (response.status, response.code) == (403, "SignatureDoesNotMatch")
    assert b"<CanonicalRequest>GET\n/bucket\n" in response.body
    scope, body = sagemaker(control_plane("ListModels", {}), wrong)
    response = call(scope, body)
    assert (response.status, response.code) == (403, "InvalidSignatureException")
    assert "The Canonical String for this request should have been" in response.json["message"]


def test_a_tampered_request_fails() -> None:
    scope, body = sagemaker(control_plane("ListModels", {}))
    assert call(scope, body + b" ").code == "InvalidSignatureException"
    scope, body = s3(s3_request("GET", "/bucket/key"))
    scope["raw_path"] = b"/bucket/other"
    assert call(scope, body).code == "SignatureDoesNotMatch"


def test_a_tampered_s3_body_fails_inside_the_application() -> None:
    scope, _ = s3(s3_request("PUT", "/bucket/key", b"hello world"))
    response = call(scope, b"hello World", split=4)
    assert (response.status, response.code) == (400, "XAmzContentSHA256Mismatch")


def test_a_skewed_clock() -> None:
    later = SigV4Middleware(echo, STORE, clock=lambda: time.time() + 3600)
    scope, body = s3(s3_request("GET", "/bucket"))
    response = call(scope, body, middleware=later)
    assert (response.status, response.code) == (403, "RequestTimeTooSkewed")
    assert b"<ServerTime>" in response.body and b"<RequestTime>" in response.body
    scope, body = sagemaker(control_plane("ListModels", {}))
    response = call(scope, body, middleware=later)
    assert response.code == "InvalidSignatureException"
    assert response.json["message"].startswith("Signature expired: ")


def test_an_expired_presigned_url() -> None:
    later = SigV4Middleware(echo, STORE, clock=lambda: time.time() + 61)
    scope, body = sign(
        s3_request("GET", "/bucket/key"), S3SigV4QueryAuth(CREDENTIALS, "s3", "us-east-1", 60)
    )
    response = call(scope, body, middleware=later)
    assert (response.status, response.code) == (403, "AccessDenied")
    assert b"Request has expired" in response.body


def test_a_wrong_region() -> None:
    scope, body = s3(s3_request("GET", "/bucket"))
    response = call(scope, body, middleware=SigV4Middleware(echo, STORE, region="eu-west-1"))
    assert (response.status, response.code) == (400, "AuthorizationHeaderMalformed")
    assert b"<Region>eu-west-1</Region>" in response.body


def test_an_unsigned_amz_header_is_refused_by_s3() -> None:
    scope, body = s3(s3_request("GET", "/bucket"))
    scope["headers"].append((b"x-amz-copy-source", b"/other/key"))
    response = call(scope, body)
    assert (response.status, response.code) == (403, "AccessDenied")


def test_s3_header_authentication_needs_a_content_sha256() -> None:
    scope, body = s3(s3_request("GET", "/bucket"))
    scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"x-amz-content-sha256"]
    assert call(scope, body).code == "InvalidRequest"


def test_a_large_unhashed_body_is_refused() -> None:
    small = SigV4Middleware(echo, STORE, max_buffered_body=100)
    scope, body = sagemaker(control_plane("ListModels", {"NameContains": "x" * 200}))
    response = call(scope, body, split=50, middleware=small)
    assert (response.status, response.code) == (400, "ValidationError")


def test_head_errors_have_no_body() -> None:
    scope, _ = to_scope(AWSRequest(method="HEAD", url=HOST + "/bucket/key"))
    response = call(scope)
    assert (response.status, response.body) == (403, b"")


# --- end to end: boto3 against uvicorn ---------------------------------------------------------


def crc32(data: bytes) -> str:
    return b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@dataclass
class Server:
    url: str
    seen: list[dict[str, Any]]


async def s3ish(scope: Scope, receive: Receive, send: Send) -> None:
    """Consumes the body and answers like S3 PutObject, or like SageMaker ListEndpoints."""
    seen = scope["inferq.seen"]
    try:
        body = await read_all(receive)
    except errors.AwsError as error:
        await respond(send, *errors.render_xml(error, scope["inferq.request_id"]))
        return
    headers = {name.decode(): value.decode() for name, value in scope["headers"]}
    seen.append({"headers": headers, "body": body, "checksums": scope.get(payload.CHECKSUMS_KEY)})
    if "x-amz-target" in headers:
        await respond(
            send, 200, [("content-type", "application/x-amz-json-1.1")], b'{"Endpoints": []}'
        )
        return
    await respond(send, 200, [("etag", '"0"'), ("content-length", "0")], b"")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    seen: list[dict[str, Any]] = []
    inner = SigV4Middleware(s3ish, STORE)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["inferq.seen"] = seen
        await inner(scope, receive, send)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    port = uvicorn_server.servers[0].sockets[0].getsockname()[1]
    yield Server(f"http://127.0.0.1:{port}", seen)
    uvicorn_server.should_exit = True
    thread.join(timeout=10)


def boto3_client(server: Server, service: str, secret: str, **config: Any) -> Any:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config),
    )


def with_client(
    server: Server, service: str, use: Callable[[Any], Any], secret: str = SECRET, **config: Any
) -> Any:
    client = boto3_client(server, service, secret, **config)
    try:
        return use(client)
    finally:
        client.close()


def test_boto3_put_object_with_a_crc32_checksum(server: Server) -> None:
    data = b"inferq " * 10000
    server.seen.clear()
    with_client(
        server,
        "s3",
        lambda c: c.put_object(
            Bucket="bucket", Key="dir/a key.bin", Body=data, ChecksumAlgorithm="CRC32"
        ),
    )
    [request] = server.seen
    assert request["body"] == data
    assert request["checksums"] == {"CRC32": crc32(data)}
    headers = request["headers"]
    assert headers["x-amz-checksum-crc32"] == crc32(data)
    assert headers["x-amz-content-sha256"] != "UNSIGNED-PAYLOAD"


def test_boto3_put_object_with_a_wrong_checksum_is_a_bad_digest(server: Server) -> None:
    with pytest.raises(ClientError) as failure:
        with_client(
            server,
            "s3",
            lambda c: c.put_object(
                Bucket="bucket", Key="key", Body=b"data", ChecksumCRC32="AAAAAA=="
            ),
        )
    assert failure.value.response["Error"]["Code"] == "BadDigest"


def test_boto3_with_a_wrong_secret_is_refused(server: Server) -> None:
    for use, code in (
        (lambda c: c.head_bucket(Bucket="bucket"), "403"),
        (lambda c: c.list_objects_v2(Bucket="bucket"), "SignatureDoesNotMatch"),
        (lambda c: c.put_object(Bucket="b", Key="k", Body=b"x" * 100_000), "SignatureDoesNotMatch"),
    ):
        with pytest.raises(ClientError) as failure:
            with_client(server, "s3", use, secret="wrong")
        assert failure.value.response["Error"]["Code"] == code


def test_boto3_control_plane_call(server: Server) -> None:
    result = with_client(server, "sagemaker", lambda c: c.list_endpoints(MaxResults=5))
    assert result["Endpoints"] == []
    with pytest.raises(ClientError) as failure:
        with_client(server, "sagemaker", lambda c: c.list_endpoints(), secret="wrong")
    assert failure.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_a_boto3_presigned_get(server: Server) -> None:
    params = {"Bucket": "bucket", "Key": "dir/a key~(1).txt"}
    url = with_client(
        server,
        "s3",
        lambda c: c.generate_presigned_url("get_object", Params=params, ExpiresIn=60),
        signature_version="s3v4",
    )
    with urllib.request.urlopen(url) as response:
        assert response.status == 200


def test_a_boto3_sigv2_presigned_get_is_refused_with_a_hint(server: Server) -> None:
    """Without signature_version="s3v4", boto3 presigns S3 URLs for a custom endpoint with
    SigV2 (AWSAccessKeyId, Signature, Expires)."""
    params = {"Bucket": "bucket", "Key": "key"}
    url = with_client(server, "s3", lambda c: c.generate_presigned_url("get_object", Params=params))
    assert "AWSAccessKeyId=" in url
    with pytest.raises(urllib.error.HTTPError) as failure:
        urllib.request.urlopen(url)
    assert failure.value.code == 400
    assert b"Please use AWS4-HMAC-SHA256" in failure.value.read()
    failure.value.close()


# --- credentials -------------------------------------------------------------------------------


def test_configured_credentials_are_used_as_they_are(tmp_path: Path) -> None:
    store, key, secret, created = credentials.load_or_create(tmp_path, ACCESS_KEY, SECRET)
    assert (key, secret, created) == (ACCESS_KEY, SECRET, False)
    assert store.secret_for(ACCESS_KEY) == SECRET
    assert store.secret_for("AKIAOTHER") is None
    assert list(tmp_path.iterdir()) == []


def test_half_configured_credentials_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        credentials.load_or_create(tmp_path, ACCESS_KEY, None)
    with pytest.raises(ConfigError):
        credentials.load_or_create(tmp_path, None, SECRET)


def test_credentials_are_generated_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store, key, secret, created = credentials.load_or_create(data_dir, None, None)
    assert created
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key)
    assert re.fullmatch(r"[A-Za-z0-9]{40}", secret)
    assert store.secret_for(key) == secret
    path = data_dir / credentials.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == [credentials.CREDENTIALS_FILE]
    assert credentials.load_or_create(data_dir, None, None)[1:] == (key, secret, False)
    profile = raw_config_parse(str(path))["default"]
    assert (profile["aws_access_key_id"], profile["aws_secret_access_key"]) == (key, secret)


def test_the_first_writer_of_the_credentials_wins(tmp_path: Path) -> None:
    path = tmp_path / credentials.CREDENTIALS_FILE
    assert credentials._create(path, "AKIAFIRST", "first-secret")
    assert not credentials._create(path, "AKIASECOND", "second-secret")
    assert credentials.load_or_create(tmp_path, None, None)[1:] == (
        "AKIAFIRST",
        "first-secret",
        False,
    )
    assert [p.name for p in tmp_path.iterdir()] == [credentials.CREDENTIALS_FILE]


def test_an_unreadable_credentials_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / credentials.CREDENTIALS_FILE).write_text("[other]\nkey = value\n")
    with pytest.raises(ConfigError):
        credentials.load_or_create(tmp_path, None, None)


def test_header_and_query_authentication_together_are_refused() -> None:
    scope, body = s3(s3_request("GET", "/bucket?X-Amz-Algorithm=AWS4-HMAC-SHA256"))
    response = call(scope, body)
    assert (response.status, response.code) == (400, "AuthorizationHeaderMalformed")
