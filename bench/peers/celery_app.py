"""Peer (a): the async-inference job as a Python team builds it without inferq. The worker
side: a Celery task that calls the same model server (``POST /invocations``) and writes the
answer to the output file (written aside, then renamed into place).

Configured by the environment: ``BENCH_REDIS_URL`` (broker), ``BENCH_MODEL_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path

import requests
from celery import Celery

app = Celery("bench_peer", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)

_session = requests.Session()


@app.task(name="invoke")  # type: ignore[untyped-decorator]  # celery ships no types
def invoke(body: str, content_type: str, output: str) -> None:
    answer = _session.post(
        os.environ["BENCH_MODEL_URL"] + "/invocations",
        data=body.encode(),
        headers={"Content-Type": content_type},
        timeout=900,
    )
    answer.raise_for_status()
    target = Path(output)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(answer.content)
    partial.replace(target)
