"""Nothing acknowledged is lost: not to ``kill -9`` of the server, not to a dying model."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from tests.e2e.models import BEHAVING
from tests.helpers.inferq import InferqServer, deploy_async_endpoint, wait_for_object

ENDPOINT = "durable"


def submit(server: InferqServer, payload: dict[str, Any], count: int) -> list[dict[str, Any]]:
    server.client("s3").put_object(
        Bucket=ENDPOINT, Key="in/req.json", Body=json.dumps(payload).encode()
    )
    runtime = server.client("sagemaker-runtime")
    return [
        runtime.invoke_endpoint_async(
            EndpointName=ENDPOINT,
            InputLocation=f"s3://{ENDPOINT}/in/req.json",
            ContentType="application/json",
            InferenceId=f"req-{n}",
        )
        for n in range(count)
    ]


def test_kill_9_with_requests_queued_loses_none(tmp_path: Path) -> None:
    server = InferqServer(tmp_path).start()
    try:
        deploy_async_endpoint(server, ENDPOINT, BEHAVING, concurrency=1)
        accepted = submit(server, {"action": "sleep", "seconds": 0.3}, 12)
        server.kill()

        server.start()
        outputs = [wait_for_object(server, a["OutputLocation"], timeout=60) for a in accepted]
    finally:
        server.stop()

    assert [json.loads(o["Body"].read())["echo"]["seconds"] for o in outputs] == [0.3] * 12


def test_a_model_instance_that_dies_is_replaced_and_its_request_retried(tmp_path: Path) -> None:
    server = InferqServer(tmp_path).start()
    try:
        deploy_async_endpoint(server, ENDPOINT, BEHAVING, concurrency=1)
        first = submit(server, {"text": "who serves?"}, 1)[0]
        pid = json.loads(wait_for_object(server, first["OutputLocation"])["Body"].read())["pid"]
        slow = submit(server, {"action": "sleep", "seconds": 1.5}, 1)[0]
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)

        answer = json.loads(wait_for_object(server, slow["OutputLocation"], 60)["Body"].read())
    finally:
        server.stop()

    assert answer["pid"] != pid
    assert answer["echo"]["seconds"] == 1.5
