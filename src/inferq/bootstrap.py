"""The composition root: settings in, a running inferq out.

``running(settings)`` opens the state and the object store, builds the services, the worker
side (instances, dispatchers, sweeper) and the gateway app, resumes every stored endpoint, and
tears it all down in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import uvicorn

from inferq import demo
from inferq.api.app import Gateway
from inferq.api.asgi import ASGIApp
from inferq.api.control import ControlApi
from inferq.api.metrics import MetricsApi
from inferq.api.runtime import RuntimeApi
from inferq.api.s3 import S3Api
from inferq.auth.credentials import load_or_create
from inferq.auth.middleware import SigV4Middleware
from inferq.runners.calls import Calls
from inferq.services.endpoints import EndpointService
from inferq.services.invocations import InvocationService
from inferq.settings import Settings
from inferq.state.base import State
from inferq.state.registry import open_state
from inferq.storage.base import ObjectStore
from inferq.storage.registry import open_store
from inferq.worker.artifacts import ArtifactFetcher
from inferq.worker.execute import Executor
from inferq.worker.inputs import InputReader
from inferq.worker.instances import InstanceManager
from inferq.worker.sweeper import Sweeper

log = logging.getLogger("inferq")


@dataclass(frozen=True, kw_only=True)
class Running:
    app: ASGIApp
    settings: Settings
    state: State
    store: ObjectStore
    endpoints: EndpointService
    access_key_id: str
    secret_access_key: str
    credentials_created: bool


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _session() -> aiohttp.ClientSession:
    # no pool limit: the dispatcher bounds concurrency itself, per instance
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Running]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        state = await open_state(settings.resolved_state_url)
        stack.push_async_callback(state.close)
        store = open_store(settings.resolved_storage_url)
        stack.push_async_callback(store.close)
        session = _session()
        stack.push_async_callback(session.close)
        me = worker_id()
        inputs = InputReader(store, session)
        stack.push_async_callback(inputs.close)
        calls = Calls()
        stack.callback(calls.close)
        executor = Executor(
            state.queue, store, calls, inputs=inputs, worker_id=me, settings=settings.worker
        )
        instances = InstanceManager(
            queue=state.queue,
            executor=executor,
            session=session,
            settings=settings.worker,
            fetcher=ArtifactFetcher(store, session, settings.data_dir / "models"),
            worker_id=me,
            log_dir=settings.data_dir / "logs",
            deps_dir=settings.data_dir / "model-deps",
        )
        stack.push_async_callback(instances.close)
        endpoints = EndpointService(
            state.catalog,
            instances,
            region=settings.region,
            account_id=settings.account_id,
            # the accept path's cached lookups forget an endpoint as soon as it changes here
            on_change=lambda name: invocations.forget(name),
        )
        stack.push_async_callback(endpoints.close)
        invocations = InvocationService(state.queue, endpoints, account_id=settings.account_id)
        gateway = Gateway(
            runtime_api=RuntimeApi(
                invocations, instances.pool_for, calls, account_id=settings.account_id
            ),
            control_api=ControlApi(endpoints),
            s3_api=S3Api(store),
            metrics_api=MetricsApi(state.queue, state.catalog, instances.instance_total),
        )
        credentials, key, secret, created = load_or_create(
            settings.data_dir, settings.auth.access_key_id, settings.auth.secret_access_key
        )
        app = SigV4Middleware(gateway, credentials, max_skew_seconds=settings.auth.max_skew_seconds)
        sweeper = Sweeper(state.queue, executor, worker_id=me, settings=settings.worker)
        sweeping = asyncio.create_task(sweeper.run_forever(), name="sweeper")
        stack.callback(sweeping.cancel)
        await endpoints.resume()
        yield Running(
            app=app,
            settings=settings,
            state=state,
            store=store,
            endpoints=endpoints,
            access_key_id=key,
            secret_access_key=secret,
            credentials_created=created,
        )


async def serve(settings: Settings) -> None:
    """Serve until interrupted (SIGINT/SIGTERM), then stop everything cleanly."""
    raise_open_file_limit()
    async with running(settings) as server:
        config = uvicorn.Config(
            server.app,
            host=settings.host,
            port=settings.port,
            lifespan="off",
            log_level="warning",
            access_log=False,
            loop="none",
            http="httptools",
            timeout_keep_alive=75,
            # no X-Forwarded-* rewriting of the client address: inferq never uses it (SigV4
            # signs the Host header), and it costs a pass over every request's headers
            proxy_headers=False,
            # AWS answers carry no Server header
            server_header=False,
        )
        http = _HttpServer(config)
        _stop_on_signals(http)
        serving = asyncio.create_task(http.serve(), name="http")
        # uvicorn exposes readiness only as a flag
        while not http.started and not serving.done():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if http.started:
            _announce(server)
            if settings.demo:
                await _deploy_demo(server)
            _tune_gc()
        await serving


#: the most open files that ``serve`` asks for, whatever the hard limit
OPEN_FILES_CAP = 65_536


def raise_open_file_limit(cap: int = OPEN_FILES_CAP) -> None:
    """Raise the soft limit on open files to the hard one (at most ``cap``), as servers do:
    every connection, spool, object being read and model instance holds descriptors, and the
    common default soft limit (1,024) is soon reached under load."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = cap if hard == resource.RLIM_INFINITY else min(hard, cap)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):  # e.g. macOS caps it below the hard limit
            log.warning("open_file_limit_kept", extra={"soft": soft, "wanted": wanted})


#: collector thresholds while serving: every request allocates many short-lived containers,
#: which with the default (700, 10, 10) start a generation-0 collection every few requests
SERVING_GC_THRESHOLDS = (50_000, 20, 20)


def _tune_gc() -> None:
    """Once started: move the long-lived start-up objects out of the collector's way
    (``gc.freeze``) and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


class _HttpServer(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM once it has stopped, which would kill the process before
    model instances are stopped; inferq handles those signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _stop_on_signals(http: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(http, "should_exit", True))


async def _deploy_demo(server: Running) -> None:
    await demo.deploy(server.store, server.endpoints)
    await server.endpoints.join()
    status, _ = await server.endpoints.lookup(demo.NAME)
    print(f"demo endpoint '{demo.NAME}': {status.value}", flush=True)


def _announce(server: Running) -> None:
    settings = server.settings
    url = f"http://{settings.host}:{settings.port}"
    lines = [
        f"inferq serving SageMaker Runtime, SageMaker and S3 APIs on {url}",
        f"  data directory:     {settings.data_dir.resolve()}",
        f"  AccessKeyId:        {server.access_key_id}",
        f"  SecretAccessKey:    {server.secret_access_key}"
        + ("   (generated now, kept in the data directory)" if server.credentials_created else ""),
        f"  region:             {settings.region}",
    ]
    if settings.demo:
        lines.append(f"  demo endpoint:      '{demo.NAME}' (s3://{demo.BUCKET}/...)")
    print("\n".join(lines), flush=True)
