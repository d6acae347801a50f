"""Peer (a), the accepting side: a Starlette endpoint that enqueues the Celery task and answers
202 with where the output will be. Served by uvicorn on the stack inferq uses
(``bench.peers.bare.command``). ``BENCH_OUTPUT_DIR`` is where outputs go.
"""

from __future__ import annotations

import os
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.peers.celery_app import invoke

OUTPUT_DIR = os.environ.get("BENCH_OUTPUT_DIR", "/tmp/bench-peer-output")


async def invoke_async(request: Request) -> JSONResponse:
    body = await request.body()
    inference_id = str(uuid.uuid4())
    output = f"{OUTPUT_DIR}/{inference_id}.out"
    content_type = request.headers.get("content-type", "application/json")
    invoke.delay(body.decode(), content_type, output)
    return JSONResponse({"InferenceId": inference_id, "OutputLocation": output}, status_code=202)


app = Starlette(
    routes=[Route("/endpoints/{name}/async-invocations", invoke_async, methods=["POST"])]
)
