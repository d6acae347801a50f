"""A tiny HTTP server that records every request exactly as it arrived and answers like
SageMaker Runtime's InvokeEndpointAsync (202), or as a test tells it to; and a SigV4 check."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

OUTPUT_LOCATION = "s3://bucket/output/0b1c2d3e.out"
FAILURE_LOCATION = "s3://bucket/failure/0b1c2d3e-error.out"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def sagemaker_headers(self) -> dict[str, str]:
        return {k: v for k, v in self.headers if k.lower().startswith("x-amzn-sagemaker-")}

    @property
    def authorization(self) -> dict[str, str]:
        """``Credential``, ``SignedHeaders`` and ``Signature`` of the Authorization header."""
        scheme, _, fields = (self.header("Authorization") or "").partition(" ")
        parsed = dict(part.strip().split("=", 1) for part in fields.split(","))
        return {"Algorithm": scheme, **parsed}

    @property
    def credential_scope(self) -> list[str]:
        """``[access key, date, region, service, "aws4_request"]``."""
        return self.authorization["Credential"].split("/")


@dataclass(frozen=True)
class Reply:
    status: int = 202
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0


def accepted(recorded: Recorded) -> Reply:
    """InvokeEndpointAsync's answer: 202, the InferenceId, the locations in headers."""
    inference_id = recorded.header("X-Amzn-SageMaker-Inference-Id") or "generated-id"
    return Reply(
        body=json.dumps({"InferenceId": inference_id}).encode(),
        headers=(
            ("Content-Type", "application/json"),
            ("X-Amzn-SageMaker-OutputLocation", OUTPUT_LOCATION),
            ("X-Amzn-SageMaker-FailureLocation", FAILURE_LOCATION),
            ("x-amzn-RequestId", "request-0001"),
        ),
    )


def validation_error(message: str) -> Reply:
    return Reply(
        status=400,
        body=json.dumps({"message": message}).encode(),
        headers=(
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", "ValidationError"),
            ("x-amzn-RequestId", "request-0002"),
        ),
    )


@dataclass
class RecordingServer:
    """Answers with ``respond(recorded)`` and keeps every request in ``requests``."""

    respond: Callable[[Recorded], Reply] = accepted
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorded = Recorded(self.command, self.path, list(self.headers.items()), body)
                server.requests.append(recorded)
                self.reply(server.respond(recorded))

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST

            def reply(self, reply: Reply) -> None:
                time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@contextmanager
def recording_server(respond: Callable[[Recorded], Reply] = accepted) -> Iterator[RecordingServer]:
    server = RecordingServer(respond)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), server.handler())
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


def signature_is_valid(recorded: Recorded, secret_key: str, base_url: str) -> bool:
    """Recompute the SigV4 signature with botocore's SigV4Auth at the recorded X-Amz-Date,
    over exactly the headers the request says it signed."""
    access_key, _, region, service, _ = recorded.credential_scope
    signed = recorded.authorization["SignedHeaders"].split(";")
    request = AWSRequest(
        method=recorded.method,
        url=base_url + recorded.path,
        headers={k: v for k, v in recorded.headers if k.lower() in signed},
        data=recorded.body,
    )
    request.context["timestamp"] = recorded.header("X-Amz-Date")
    token = recorded.header("X-Amz-Security-Token")
    auth = SigV4Auth(Credentials(access_key, secret_key, token), service, region)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    return bool(expected == recorded.authorization["Signature"])
