"""Inputs that live outside inferq: https:// URLs, and S3 buckets of another store.

"Another store" is a second ``inferq serve``; the first reaches it the way a user would reach
S3 or MinIO, through botocore's own configuration (``AWS_ENDPOINT_URL_S3`` and an access key in
the environment). The https server's certificate is made here and trusted via ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.models import BEHAVING
from tests.helpers.inferq import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    InferqServer,
    deploy_async_endpoint,
    inferq_server,
    object_exists,
    wait_for_object,
)

ENDPOINT = "ext"
FILES = {"/inputs/data.json": (b'{"text": "over https"}', "application/json")}

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def make_certificate(folder: Path) -> Certificate:
    """A self-signed certificate for 127.0.0.1 (its own CA, so a trust store can hold it)."""
    folder.mkdir(parents=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run([*command.split(), *subject, *files], check=True, capture_output=True)
    return Certificate(cert, key)


class FileHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, content_type = FILES.get(self.path, (b"no such file", "text/plain"))
        self.send_response(200 if self.path in FILES else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def https_files(certificate: Certificate) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FileHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate.cert, certificate.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class World:
    server: InferqServer
    external: InferqServer
    trusted: str
    untrusted: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    trusted = make_certificate(tmp_path_factory.mktemp("certs") / "trusted")
    stranger = make_certificate(tmp_path_factory.mktemp("certs") / "stranger")
    with (
        https_files(trusted) as trusted_url,
        https_files(stranger) as untrusted_url,
        inferq_server(tmp_path_factory.mktemp("external")) as external,
        inferq_server(
            tmp_path_factory.mktemp("inferq"),
            SSL_CERT_FILE=str(trusted.cert),
            AWS_ENDPOINT_URL_S3=external.url,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
        ) as server,
    ):
        deploy_async_endpoint(server, ENDPOINT, BEHAVING)
        s3 = external.client("s3")
        s3.create_bucket(Bucket="elsewhere")
        s3.put_object(
            Bucket="elsewhere",
            Key="in/req.json",
            Body=b'{"text": "from another store"}',
            ContentType="application/json",
        )
        yield World(server, external, trusted_url, untrusted_url)


def invoke(world: World, location: str) -> dict[str, Any]:
    runtime = world.server.client("sagemaker-runtime")
    accepted: dict[str, Any] = runtime.invoke_endpoint_async(
        EndpointName=ENDPOINT, InputLocation=location
    )
    return accepted


def answer(world: World, accepted: dict[str, Any]) -> dict[str, Any]:
    output = wait_for_object(world.server, accepted["OutputLocation"])
    parsed: dict[str, Any] = json.loads(output["Body"].read())
    return parsed


def failure(world: World, accepted: dict[str, Any]) -> str:
    text: str = wait_for_object(world.server, accepted["FailureLocation"])["Body"].read().decode()
    assert not object_exists(world.server, accepted["OutputLocation"])
    return text


def test_an_https_input_is_downloaded_with_its_content_type(world: World) -> None:
    result = answer(world, invoke(world, f"{world.trusted}/inputs/data.json"))

    assert result["echo"] == {"text": "over https"}
    assert result["content_type"] == "application/json"


def test_an_https_input_that_is_not_there_fails_with_the_servers_answer(world: World) -> None:
    url = f"{world.trusted}/inputs/gone.json"

    reason = failure(world, invoke(world, url))

    assert f"Failed to download the input from {url}" in reason
    assert "HTTP 404 Not Found: no such file" in reason


def test_an_https_server_with_an_untrusted_certificate_is_refused(world: World) -> None:
    reason = failure(world, invoke(world, f"{world.untrusted}/inputs/data.json"))

    assert "certificate verify failed" in reason


def test_a_bucket_of_another_store_is_read_through_botocore(world: World) -> None:
    result = answer(world, invoke(world, "s3://elsewhere/in/req.json"))

    assert result["echo"] == {"text": "from another store"}
    assert result["content_type"] == "application/json", "the object's type is the fallback"
    buckets = [b["Name"] for b in world.server.client("s3").list_buckets()["Buckets"]]
    assert "elsewhere" not in buckets


def test_a_missing_object_of_another_store_fails_saying_why(world: World) -> None:
    reason = failure(world, invoke(world, "s3://elsewhere/in/nope.json"))

    assert "Failed to download the input from s3://elsewhere/in/nope.json" in reason
    assert "(NoSuchKey)" in reason
