"""Light-load end-to-end latency: one request at a time, from sending it to its output file
appearing on disk (seen with inotify, so no polling interval is added)."""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench import signing
from bench.inotify import Watcher
from bench.rig import ENDPOINT, BenchServer


@dataclass(frozen=True)
class Answer:
    headers: http.client.HTTPMessage
    body: bytes


def connect(request: signing.Request) -> http.client.HTTPConnection:
    host, port = request.headers["Host"].split(":")
    return http.client.HTTPConnection(host, int(port))


def post(connection: http.client.HTTPConnection, request: signing.Request) -> Answer:
    connection.request(request.method, request.path, request.body, request.headers)
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 202:
        raise RuntimeError(f"expected 202, got {answer.status}: {body[:500]!r}")
    return Answer(answer.headers, body)


def sequential(send: Callable[[], str], watcher: Watcher, count: int) -> list[float]:
    """Seconds from sending each request to its output file appearing (``send`` returns the
    file's name), 10 ms apart."""
    samples = []
    for _ in range(count):
        sent = time.time()
        samples.append(watcher.wait_for(send()) - sent)
        time.sleep(0.01)
    return samples


def store_name(output_location: str) -> str:
    """The file inferq's local object store keeps a key in (``storage/local.py``)."""
    key = output_location.removeprefix(f"s3://{ENDPOINT}/")
    return hashlib.sha256(key.encode()).hexdigest()


def inferq_latencies(
    server: BenchServer, request: signing.Request, count: int, warm_up: int = 5
) -> list[float]:
    """Light-load latencies of ``request`` through ``server``'s endpoint, after ``warm_up``."""
    objects = server.data_dir / "objects" / "buckets" / ENDPOINT / "objects"
    connection = connect(request)

    def send() -> str:
        answer = post(connection, request)
        return store_name(str(answer.headers["x-amzn-sagemaker-outputlocation"]))

    with Watcher(objects) as watcher:
        sequential(send, watcher, warm_up)
        latencies = sequential(send, watcher, count)
    connection.close()
    return latencies
