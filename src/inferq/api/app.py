"""The gateway: one port, three AWS APIs, told apart as LocalStack's edge port does.

1. ``X-Amz-Target: SageMaker.*``                       -> control plane (json 1.1)
0. ``GET /metrics`` (unsigned)                         -> Prometheus text
2. ``POST /endpoints/{name}/(async-)invocations`` signed for the ``sagemaker`` service
                                                       -> SageMaker Runtime (rest-json)
3. everything else                                     -> S3 (path-style)

Routing by the credential scope's service keeps a bucket named ``endpoints`` reachable over S3.
"""

from __future__ import annotations

from inferq.api import asgi, runtime

PUBLIC_PATHS = ("/ping", "/healthz")


class Gateway:
    def __init__(
        self,
        *,
        runtime_api: asgi.ASGIApp,
        control_api: asgi.ASGIApp,
        s3_api: asgi.ASGIApp,
        metrics_api: asgi.ASGIApp,
    ) -> None:
        self._runtime = runtime_api
        self._control = control_api
        self._s3 = s3_api
        self._metrics = metrics_api

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] in PUBLIC_PATHS:
            await asgi.respond(
                send, 200, [("content-type", "application/json")], b'{"status": "healthy"}'
            )
            return
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            await self._metrics(scope, receive, send)
            return
        await self._pick(scope)(scope, receive, send)

    def _pick(self, scope: asgi.Scope) -> asgi.ASGIApp:
        service = scope.get("inferq.service")
        for name, _ in scope["headers"]:
            if name == b"x-amz-target":
                return self._control
        if service != "s3" and runtime.matches(scope["path"]):
            return self._runtime
        return self._s3
