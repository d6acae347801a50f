"""The SageMaker control-plane use cases: models, endpoint configurations and endpoints.

Requests arrive already checked against botocore's model (``inferq.aws.validate``); this module
adds the rules the model cannot state (references exist, names are unique in any case, state
transitions) and drives a ``Deployer``. Errors are ``inferq.errors`` with AWS's texts; the API
maps them to ``ValidationException``.

Endpoint lifecycle (deployments run as background tasks; the requests return at once):

* CreateEndpoint: ``Creating`` -> ``InService``, or ``Failed`` with ``FailureReason``.
* UpdateEndpoint and UpdateEndpointWeightsAndCapacities: ``InService`` -> ``Updating`` ->
  ``InService``. A failed update rolls back as AWS does: the previous deployment keeps serving,
  the status returns to ``InService`` and ``FailureReason`` says what went wrong.
* DeleteEndpoint: ``Deleting``, then undeployed and removed; DescribeEndpoint then raises
  ``Could not find endpoint`` (boto3's ``endpoint_deleted`` waiter waits for exactly that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, cast

from inferq import errors
from inferq.domain.endpoints import EndpointSpec, EndpointStatus
from inferq.services import endpoint_docs as docs
from inferq.services import listing
from inferq.services import resources as res
from inferq.state.base import Catalog, Kind, Resource

if TYPE_CHECKING:
    from inferq.aws._shapes import control

log = logging.getLogger("inferq.services")

Doc = dict[str, Any]
_BUSY = (EndpointStatus.CREATING, EndpointStatus.UPDATING, EndpointStatus.DELETING)


class Deployer(Protocol):
    """Runs endpoints' model instances; the control plane's only way to touch them."""

    async def deploy(self, spec: EndpointSpec) -> None:
        """Bring ``spec`` into service, replacing any running deployment of ``spec.name`` only
        once the new one is healthy. Raise ``errors.ModelLoadError`` with an actionable message
        (it becomes the endpoint's FailureReason) when instances do not become healthy; the
        previous deployment, if any, must then still be serving and nothing new left running.
        Cancellation (the endpoint was deleted meanwhile) must leave nothing new running."""
        ...

    async def undeploy(self, name: str) -> None:
        """Stop everything serving endpoint ``name``; nothing to stop is fine."""
        ...

    async def scale(self, name: str, variant: str, instances: int) -> None:
        """Run ``instances`` (0 or more) instances of ``variant``; raise
        ``errors.ModelLoadError`` when new instances do not become healthy."""
        ...


class EndpointService:
    def __init__(
        self,
        catalog: Catalog,
        deployer: Deployer,
        *,
        region: str,
        account_id: str,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._catalog = catalog
        self._deployer = deployer
        self._region = region
        self._account_id = account_id
        self._clock = clock
        #: told the name of an endpoint whose status changed (lookup caches drop it)
        self._on_change = on_change
        # one read-check-write at a time, so two requests cannot both see InService and proceed
        self._lock = asyncio.Lock()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # --- models ----------------------------------------------------------------------------

    async def create_model(self, request: control.CreateModelInput) -> control.CreateModelOutput:
        name = request["ModelName"]
        if not request.get("PrimaryContainer") and not request.get("Containers"):
            raise res.null_member("primaryContainer")
        model_arn = await self._create(Kind.MODEL, name, dict(request))
        return {"ModelArn": model_arn}

    async def describe_model(self, name: str) -> control.DescribeModelOutput:
        found = await self._get(Kind.MODEL, name)
        return cast("control.DescribeModelOutput", {**found.doc, "CreationTime": found.created})

    async def list_models(self, request: control.ListModelsInput) -> control.ListModelsOutput:
        found, token = listing.page(await self._catalog.list(Kind.MODEL), request)
        summaries = [listing.summary(r, "ModelName", "ModelArn") for r in found]
        return cast("control.ListModelsOutput", listing.with_token({"Models": summaries}, token))

    async def delete_model(self, name: str) -> None:
        await self._delete(Kind.MODEL, name)

    # --- endpoint configurations -----------------------------------------------------------

    async def create_endpoint_config(
        self, request: control.CreateEndpointConfigInput
    ) -> control.CreateEndpointConfigOutput:
        doc = cast(Doc, request)
        res.check_variants(doc)
        res.check_async_config(doc)
        await self._models_of(doc)
        config_arn = await self._create(Kind.ENDPOINT_CONFIG, doc["EndpointConfigName"], dict(doc))
        return {"EndpointConfigArn": config_arn}

    async def describe_endpoint_config(self, name: str) -> control.DescribeEndpointConfigOutput:
        found = await self._get(Kind.ENDPOINT_CONFIG, name)
        described = {**found.doc, "CreationTime": found.created}
        return cast("control.DescribeEndpointConfigOutput", described)

    async def list_endpoint_configs(
        self, request: control.ListEndpointConfigsInput
    ) -> control.ListEndpointConfigsOutput:
        found, token = listing.page(await self._catalog.list(Kind.ENDPOINT_CONFIG), request)
        summaries = [listing.summary(r, "EndpointConfigName", "EndpointConfigArn") for r in found]
        listed = listing.with_token({"EndpointConfigs": summaries}, token)
        return cast("control.ListEndpointConfigsOutput", listed)

    async def delete_endpoint_config(self, name: str) -> None:
        await self._delete(Kind.ENDPOINT_CONFIG, name)

    # --- endpoints -------------------------------------------------------------------------

    async def create_endpoint(
        self, request: control.CreateEndpointInput
    ) -> control.CreateEndpointOutput:
        name = request["EndpointName"]
        config = await self._get(Kind.ENDPOINT_CONFIG, request["EndpointConfigName"])
        models = await self._models_of(config.doc)
        doc = docs.endpoint_doc(cast(Doc, request), config.doc, models)
        endpoint_arn = await self._create(Kind.ENDPOINT, name, doc)
        self._run(name, self._finish_deploy(name, docs.pending_spec(name, doc)))
        return {"EndpointArn": endpoint_arn}

    async def describe_endpoint(self, name: str) -> control.DescribeEndpointOutput:
        found = await self._get(Kind.ENDPOINT, name)
        described = {
            **docs.public(found.doc),
            "CreationTime": found.created,
            "LastModifiedTime": found.modified,
        }
        return cast("control.DescribeEndpointOutput", described)

    async def list_endpoints(
        self, request: control.ListEndpointsInput
    ) -> control.ListEndpointsOutput:
        found, token = listing.page(await self._catalog.list(Kind.ENDPOINT), request)
        summaries = [listing.endpoint_summary(r) for r in found]
        return cast(
            "control.ListEndpointsOutput", listing.with_token({"Endpoints": summaries}, token)
        )

    async def update_endpoint(
        self, request: control.UpdateEndpointInput
    ) -> control.UpdateEndpointOutput:
        name = request["EndpointName"]
        config = await self._get(Kind.ENDPOINT_CONFIG, request["EndpointConfigName"])
        models = await self._models_of(config.doc)
        async with self._lock:
            endpoint = await self._get(Kind.ENDPOINT, name)
            self._require_in_service(endpoint, "update")
            doc = docs.updating_doc(
                endpoint.doc, cast(Doc, request), config.doc, models, self._clock()
            )
            await self._catalog.update(Kind.ENDPOINT, name, doc, self._clock())
        self._run(name, self._finish_deploy(name, docs.pending_spec(endpoint.name, doc)))
        return {"EndpointArn": doc["EndpointArn"]}

    async def update_endpoint_weights_and_capacities(
        self, request: control.UpdateEndpointWeightsAndCapacitiesInput
    ) -> control.UpdateEndpointWeightsAndCapacitiesOutput:
        name = request["EndpointName"]
        wanted = cast(list[Doc], request["DesiredWeightsAndCapacities"])
        async with self._lock:
            endpoint = await self._get(Kind.ENDPOINT, name)
            self._require_in_service(endpoint, "update")
            res.check_capacities(endpoint.doc, wanted)
            doc = docs.scaling_doc(endpoint.doc, wanted)
            await self._catalog.update(Kind.ENDPOINT, name, doc, self._clock())
        self._run(name, self._finish_scale(endpoint.name, wanted))
        return {"EndpointArn": doc["EndpointArn"]}

    async def delete_endpoint(self, name: str) -> None:
        async with self._lock:
            endpoint = await self._get(Kind.ENDPOINT, name)
            if endpoint.doc["EndpointStatus"] == EndpointStatus.DELETING:
                return
            await self._cancel(name)
            doc = {**endpoint.doc, "EndpointStatus": EndpointStatus.DELETING.value}
            await self._catalog.update(Kind.ENDPOINT, name, doc, self._clock())
        self._on_change(endpoint.name)
        self._run(name, self._finish_delete(endpoint.name))

    # --- for the rest of inferq ------------------------------------------------------------

    async def lookup(self, name: str) -> tuple[EndpointStatus, EndpointSpec]:
        """The endpoint's status and what serves it (``InvocationService``'s EndpointLookup)."""
        found = await self._get(Kind.ENDPOINT, name)
        return EndpointStatus(found.doc["EndpointStatus"]), docs.spec_of(found.name, found.doc)

    async def resume(self) -> None:
        """After a restart, bring every stored endpoint back to what its status promises."""
        for endpoint in await self._catalog.list(Kind.ENDPOINT):
            self._run(endpoint.name, self._resume_one(endpoint))

    async def join(self) -> None:
        """Wait until every deployment started so far has settled."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def close(self) -> None:
        """Cancel deployments in flight (their endpoints stay Creating/Updating until resumed)."""
        for name in list(self._tasks):
            await self._cancel(name)

    # --- background work -------------------------------------------------------------------

    async def _finish_deploy(self, name: str, spec: EndpointSpec) -> None:
        reason = await self._attempt(self._deployer.deploy(spec), name)
        await self._patch(name, lambda doc: docs.deployed(doc, reason, self._clock()))

    async def _finish_scale(self, name: str, wanted: list[Doc]) -> None:
        reason = await self._attempt(self._scale_all(name, wanted), name)
        await self._patch(name, lambda doc: docs.scaled(doc, reason))

    async def _scale_all(self, name: str, wanted: list[Doc]) -> None:
        for variant in wanted:
            if variant.get("DesiredInstanceCount") is not None:
                await self._deployer.scale(
                    name, variant["VariantName"], variant["DesiredInstanceCount"]
                )

    async def _finish_delete(self, name: str) -> None:
        await self._attempt(self._deployer.undeploy(name), name)
        with contextlib.suppress(errors.NotFound):  # another process finished first
            await self._catalog.delete(Kind.ENDPOINT, name)

    async def _resume_one(self, endpoint: Resource) -> None:
        status = endpoint.doc["EndpointStatus"]
        if status == EndpointStatus.DELETING:
            await self._finish_delete(endpoint.name)
        elif status in (EndpointStatus.CREATING, EndpointStatus.UPDATING):
            await self._finish_deploy(endpoint.name, docs.pending_spec(endpoint.name, endpoint.doc))
        elif status == EndpointStatus.IN_SERVICE:
            spec = docs.spec_of(endpoint.name, endpoint.doc)
            reason = await self._attempt(self._deployer.deploy(spec), endpoint.name)
            if reason is not None:
                await self._patch(endpoint.name, lambda doc: docs.failed(doc, reason))

    async def _attempt(self, work: Awaitable[None], name: str) -> str | None:
        """Run deployer work; the failure reason to record, or None on success."""
        try:
            await work
        except errors.InferqError as exc:
            log.warning("endpoint_deployment_failed", extra={"endpoint": name, "reason": exc})
            return exc.message
        except Exception:
            log.exception("endpoint_deployment_crashed", extra={"endpoint": name})
            return "An internal error occurred while deploying; see the inferq server log."
        return None

    async def _patch(self, name: str, change: Callable[[Doc], Doc]) -> None:
        async with self._lock:
            try:
                endpoint = await self._catalog.get(Kind.ENDPOINT, name)
                await self._catalog.update(Kind.ENDPOINT, name, change(endpoint.doc), self._clock())
            except errors.NotFound:
                return  # deleted meanwhile
        self._on_change(name)
        log.info("endpoint_settled", extra={"endpoint": name})

    def _run(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        key = name.lower()
        task = asyncio.get_running_loop().create_task(work, name=f"endpoint:{name}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]

    async def _cancel(self, name: str) -> None:
        task = self._tasks.pop(name.lower(), None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- catalog with AWS's messages -------------------------------------------------------

    def _arn(self, kind: Kind, name: str) -> str:
        return res.arn(kind, name, region=self._region, account_id=self._account_id)

    async def _create(self, kind: Kind, name: str, doc: Doc) -> str:
        resource_arn = self._arn(kind, name)
        try:
            await self._catalog.create(
                kind, name, {**doc, res.arn_member(kind): resource_arn}, self._clock()
            )
        except errors.Conflict:
            raise res.already_exists(kind, resource_arn) from None
        return resource_arn

    async def _get(self, kind: Kind, name: str) -> Resource:
        try:
            return await self._catalog.get(kind, name)
        except errors.NotFound:
            raise res.not_found(kind, self._arn(kind, name)) from None

    async def _delete(self, kind: Kind, name: str) -> None:
        try:
            await self._catalog.delete(kind, name)
        except errors.NotFound:
            raise res.not_found(kind, self._arn(kind, name)) from None

    async def _models_of(self, config: Doc) -> dict[str, Doc]:
        """The models a configuration's variants name, keyed as the variants spell them."""
        names = {v["ModelName"] for v in config["ProductionVariants"]}
        return {name: (await self._get(Kind.MODEL, name)).doc for name in sorted(names)}

    def _require_in_service(self, endpoint: Resource, action: str) -> None:
        status = endpoint.doc["EndpointStatus"]
        if status in _BUSY:
            adjective = "in-progress"
        elif status == EndpointStatus.FAILED:
            adjective = "failed"
        else:
            return
        endpoint_arn = endpoint.doc["EndpointArn"]
        raise errors.Conflict(f'Cannot {action} {adjective} endpoint "{endpoint_arn}".')
