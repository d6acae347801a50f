"""Deploying endpoints: model instances per variant, their dispatchers, and their upkeep.

``InstanceManager`` is the ``Deployer`` the control plane drives. It starts each instance as a
process of inferq's model server (or connects to a running container by URL), restarts an
instance that dies, and serves synchronous ``InvokeEndpoint`` calls from the same pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from inferq import errors
from inferq.domain.endpoints import EndpointSpec, VariantSpec
from inferq.runners.base import ModelInstance
from inferq.runners.images import Runtime, runtime_for
from inferq.runners.process import ModelServerProcess
from inferq.runners.remote import RemoteContainer
from inferq.settings import WorkerSettings
from inferq.state.base import JobQueue
from inferq.worker.artifacts import ArtifactFetcher
from inferq.worker.dispatcher import EndpointDispatcher
from inferq.worker.execute import Executor
from inferq.worker.pool import InstancePool, Slot

log = logging.getLogger("inferq.worker")
SUPERVISE_INTERVAL_SECONDS = 1.0


@dataclass(eq=False)
class Deployment:
    spec: EndpointSpec
    pool: InstancePool
    dispatcher: EndpointDispatcher | None
    #: per variant: where its instances come from
    prepared: dict[str, tuple[Path, dict[str, str]]]
    #: instances wanted per variant; the supervisor restores this count when instances die
    desired: dict[str, int]
    started: int = 0


class InstanceManager:
    def __init__(
        self,
        *,
        queue: JobQueue,
        executor: Executor,
        fetcher: ArtifactFetcher,
        session: aiohttp.ClientSession,
        settings: WorkerSettings,
        worker_id: str,
        log_dir: Path,
        deps_dir: Path,
    ) -> None:
        self._queue = queue
        self._executor = executor
        self._fetcher = fetcher
        self._session = session
        self._settings = settings
        self._worker_id = worker_id
        self._log_dir = log_dir
        self._deps_dir = deps_dir
        self._deployments: dict[str, Deployment] = {}
        self._supervisor: asyncio.Task[None] | None = None

    # --- Deployer ---------------------------------------------------------------------------

    async def deploy(self, spec: EndpointSpec) -> None:
        """Start every variant's instances; replace a running deployment only once the new one
        is healthy (so UpdateEndpoint keeps serving)."""
        deployment = await self._start(spec)
        old = self._deployments.get(spec.name.lower())
        self._deployments[spec.name.lower()] = deployment
        if deployment.dispatcher is not None:
            deployment.dispatcher.start()
        if old is not None:
            await self._stop(old)
        self._ensure_supervisor()

    async def undeploy(self, name: str) -> None:
        """The endpoint is gone: stop its instances and fail what still waits for it, so that
        callers find a failure object instead of waiting out their TTL."""
        deployment = self._deployments.pop(name.lower(), None)
        if deployment is not None:
            await self._stop(deployment)
        await self._abandon_queued(name)

    async def scale(self, name: str, variant: str, instances: int) -> None:
        deployment = self._deployments.get(name.lower())
        if deployment is None:
            raise errors.NotFound(f"Endpoint {name} is not deployed.")
        spec = next(v for v in deployment.spec.variants if v.name == variant)
        deployment.desired[variant] = instances
        while deployment.pool.count(variant) < instances:
            deployment.pool.add(await self._start_slot(deployment, spec))
        for slot in [s for s in deployment.pool.slots if s.variant == variant][instances:]:
            await self._retire(deployment, slot)

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        # stopping the server is not deleting endpoints: their queued requests stay queued
        while self._deployments:
            await self._stop(self._deployments.popitem()[1])

    async def _abandon_queued(self, name: str) -> None:
        lease = self._settings.lease_seconds
        while True:
            now = time.time()
            jobs = await self._queue.claim(name, self._worker_id, 100, lease, now)
            if not jobs:
                return
            self._executor.claimed(jobs, now)
            await asyncio.gather(*(self._executor.abandon(job) for job in jobs))

    # --- synchronous invocations ------------------------------------------------------------

    def pool_for(self, name: str) -> InstancePool | None:
        deployment = self._deployments.get(name.lower())
        return deployment.pool if deployment is not None else None

    def instance_total(self, name: str) -> int:
        pool = self.pool_for(name)
        return len(pool.slots) if pool is not None else 0

    # --- internals --------------------------------------------------------------------------

    async def _start(self, spec: EndpointSpec) -> Deployment:
        desired = {variant.name: variant.instance_count for variant in spec.variants}
        deployment = Deployment(
            spec=spec, pool=InstancePool(), dispatcher=None, prepared={}, desired=desired
        )
        try:
            for variant in spec.variants:
                deployment.prepared[variant.name] = await self._prepare(variant)
                slots = await asyncio.gather(
                    *(self._start_slot(deployment, variant) for _ in range(variant.instance_count))
                )
                for slot in slots:
                    deployment.pool.add(slot)
        except BaseException:
            await self._stop(deployment)
            raise
        if spec.async_config is not None:
            deployment.dispatcher = EndpointDispatcher(
                spec.name,
                deployment.pool,
                self._queue,
                self._executor,
                worker_id=self._worker_id,
                settings=self._settings,
            )
        return deployment

    async def _prepare(self, variant: VariantSpec) -> tuple[Path, dict[str, str]]:
        if runtime_for(variant.container.image) is Runtime.URL:
            return Path(), {}
        return await self._fetcher.prepare(variant.container)

    async def _start_slot(self, deployment: Deployment, variant: VariantSpec) -> Slot:
        instance = self._instance(deployment, variant)
        await instance.start()
        capacity = self._capacity(deployment.spec)
        log.info("instance_started", extra={"endpoint": deployment.spec.name, "url": instance.url})
        return Slot(instance=instance, variant=variant.name, capacity=capacity)

    def _instance(self, deployment: Deployment, variant: VariantSpec) -> ModelInstance:
        image = variant.container.image
        if image is not None and runtime_for(image) is Runtime.URL:
            return RemoteContainer(image, self._session, self._settings.startup_timeout_seconds)
        model_dir, env = deployment.prepared[variant.name]
        env = {**env, "INFERQ_MODEL_DEPS_DIR": str(self._deps_dir)}
        if image is not None and "pytorch" in image:
            env["INFERQ_MODEL_FRAMEWORK"] = "pytorch"
        deployment.started += 1
        log_path = self._log_dir / deployment.spec.name / f"{variant.name}-{deployment.started}.log"
        return ModelServerProcess(
            model_dir=model_dir,
            environment=env,
            session=self._session,
            log_path=log_path,
            startup_timeout=self._settings.startup_timeout_seconds,
        )

    def _capacity(self, spec: EndpointSpec) -> int:
        configured = spec.async_config.max_concurrency if spec.async_config else None
        return configured or self._settings.default_concurrency

    async def _retire(self, deployment: Deployment, slot: Slot) -> None:
        deployment.pool.retire(slot)
        await slot.instance.stop()

    async def _stop(self, deployment: Deployment) -> None:
        if deployment.dispatcher is not None:
            await deployment.dispatcher.stop()
        for slot in list(deployment.pool.slots):
            await self._retire(deployment, slot)

    def _ensure_supervisor(self) -> None:
        if self._supervisor is None or self._supervisor.done():
            self._supervisor = asyncio.create_task(self._supervise(), name="supervisor")

    async def _supervise(self) -> None:
        """Replace instances whose process died; their in-flight jobs fail over by themselves."""
        while True:
            await asyncio.sleep(SUPERVISE_INTERVAL_SECONDS)
            for deployment in list(self._deployments.values()):
                await self._reconcile(deployment)

    async def _reconcile(self, deployment: Deployment) -> None:
        for slot in [s for s in deployment.pool.slots if not s.instance.alive]:
            log.warning(
                "instance_died", extra={"endpoint": deployment.spec.name, "url": slot.instance.url}
            )
            await self._retire(deployment, slot)
        for variant in deployment.spec.variants:
            if deployment.pool.count(variant.name) >= deployment.desired[variant.name]:
                continue
            try:
                deployment.pool.add(await self._start_slot(deployment, variant))
            except errors.InferqError:
                log.exception("instance_restart_failed", extra={"endpoint": deployment.spec.name})
