"""The stored endpoint document and its transitions (pure functions, no I/O).

The document is the DescribeEndpoint output shape (minus the times, which the catalog keeps)
plus one internal member, ``Inferq``, that the wire never sees (output is shaped by the model)::

    {"EndpointName", "EndpointArn", "EndpointConfigName", "EndpointStatus", "FailureReason"?,
     "ProductionVariants": [...], "AsyncInferenceConfig"?, "PendingDeploymentSummary"?, "Tags"?,
     "Inferq": {"Deployed"?: Snapshot, "Pending"?: Snapshot}}

A snapshot (``{"EndpointConfig": doc, "Models": {name: doc}}``) copies the configuration and
models at deploy time: on AWS, deleting either leaves a running endpoint untouched.
"""

from __future__ import annotations

import copy
from typing import Any

from inferq.domain.endpoints import EndpointSpec, EndpointStatus

Doc = dict[str, Any]
INTERNAL = "Inferq"


def snapshot(config: Doc, models: dict[str, Doc]) -> Doc:
    return {"EndpointConfig": copy.deepcopy(config), "Models": copy.deepcopy(models)}


def spec_of(name: str, doc: Doc) -> EndpointSpec:
    """What is (or, before the first deployment, will be) serving the endpoint, with each
    variant's instance count as last requested."""
    internal = doc.get(INTERNAL, {})
    chosen = internal.get("Deployed") or internal["Pending"]
    config = copy.deepcopy(chosen["EndpointConfig"])
    desired = {v["VariantName"]: v.get("DesiredInstanceCount") for v in doc["ProductionVariants"]}
    for variant in config["ProductionVariants"]:
        count = desired.get(variant["VariantName"])
        if count is not None:
            variant["InitialInstanceCount"] = count
    return EndpointSpec.from_docs(name, config, chosen["Models"])


def pending_spec(name: str, doc: Doc) -> EndpointSpec:
    pending = doc[INTERNAL]["Pending"]
    return EndpointSpec.from_docs(name, pending["EndpointConfig"], pending["Models"])


def variant_summaries(
    config: Doc, models: dict[str, Doc], *, deployed_at: float | None
) -> list[Doc]:
    """ProductionVariantSummary per variant: desired from the config, current once deployed."""
    return [_summary(v, models[v["ModelName"]], deployed_at) for v in config["ProductionVariants"]]


def _summary(variant: Doc, model: Doc, deployed_at: float | None) -> Doc:
    weight = variant.get("InitialVariantWeight", 1.0)
    count = variant.get("InitialInstanceCount", 1)
    summary: Doc = {
        "VariantName": variant["VariantName"],
        "DesiredWeight": weight,
        "DesiredInstanceCount": count,
        "CurrentWeight": weight if deployed_at is not None else 0.0,
        "CurrentInstanceCount": count if deployed_at is not None else 0,
    }
    images = [c["Image"] for c in _containers(model) if c.get("Image")]
    if deployed_at is not None and images:
        summary["DeployedImages"] = [
            {"SpecifiedImage": image, "ResolvedImage": image, "ResolutionTime": deployed_at}
            for image in images
        ]
    return summary


def _containers(model: Doc) -> list[Doc]:
    primary = model.get("PrimaryContainer")
    return [primary] if primary else list(model.get("Containers") or [])


def retained(config: Doc, current: list[Doc], excluded: list[Doc]) -> Doc:
    """``config`` with the running variants' instance counts and weights carried over
    (UpdateEndpoint with RetainAllVariantProperties), except the excluded properties."""
    skip = {e["VariantPropertyType"] for e in excluded}
    by_name = {v["VariantName"]: v for v in current}
    result = copy.deepcopy(config)
    for variant in result["ProductionVariants"]:
        running = by_name.get(variant["VariantName"])
        if running is None:
            continue
        if "DesiredInstanceCount" not in skip:
            variant["InitialInstanceCount"] = running["DesiredInstanceCount"]
        if "DesiredWeight" not in skip:
            variant["InitialVariantWeight"] = running["DesiredWeight"]
    return result


def public(doc: Doc) -> Doc:
    """The document without inferq's internal member."""
    return {key: value for key, value in doc.items() if key != INTERNAL}


def endpoint_doc(request: Doc, config: Doc, models: dict[str, Doc]) -> Doc:
    doc: Doc = {
        "EndpointName": request["EndpointName"],
        "EndpointConfigName": request["EndpointConfigName"],
        "EndpointStatus": EndpointStatus.CREATING.value,
        "ProductionVariants": variant_summaries(config, models, deployed_at=None),
        INTERNAL: {"Pending": snapshot(config, models)},
    }
    for optional in ("Tags", "DeploymentConfig"):
        if optional in request:
            doc[optional] = request[optional]
    if "AsyncInferenceConfig" in config:
        doc["AsyncInferenceConfig"] = config["AsyncInferenceConfig"]
    return doc


def updating_doc(
    endpoint: Doc, request: Doc, config: Doc, models: dict[str, Doc], now: float
) -> Doc:
    if request.get("RetainAllVariantProperties"):
        excluded = request.get("ExcludeRetainedVariantProperties") or []
        config = retained(config, endpoint["ProductionVariants"], excluded)
    doc = {key: value for key, value in endpoint.items() if key != "FailureReason"}
    doc["EndpointStatus"] = EndpointStatus.UPDATING.value
    doc["PendingDeploymentSummary"] = {
        "EndpointConfigName": request["EndpointConfigName"],
        "StartTime": now,
    }
    doc[INTERNAL] = {**endpoint.get(INTERNAL, {}), "Pending": snapshot(config, models)}
    return doc


def deployed(endpoint: Doc, reason: str | None, now: float) -> Doc:
    """Settle a create or update: the pending snapshot goes live, or is dropped on failure."""
    settled = ("FailureReason", "PendingDeploymentSummary")
    doc = {key: value for key, value in endpoint.items() if key not in settled}
    internal = doc[INTERNAL]
    if reason is None:
        return went_live(doc, internal["Pending"], now)
    if "Deployed" not in internal:
        return failed(doc, reason)  # a failed create: keep the pending snapshot for Describe
    # a failed update rolls back: the previous deployment is still serving
    doc[INTERNAL] = {"Deployed": internal["Deployed"]}
    return {**doc, "EndpointStatus": EndpointStatus.IN_SERVICE.value, "FailureReason": reason}


def failed(endpoint: Doc, reason: str) -> Doc:
    return {**endpoint, "EndpointStatus": EndpointStatus.FAILED.value, "FailureReason": reason}


def went_live(doc: Doc, pending: Doc, now: float) -> Doc:
    config, models = pending["EndpointConfig"], pending["Models"]
    doc["EndpointConfigName"] = config["EndpointConfigName"]
    doc["ProductionVariants"] = variant_summaries(config, models, deployed_at=now)
    doc.pop("AsyncInferenceConfig", None)
    if "AsyncInferenceConfig" in config:
        doc["AsyncInferenceConfig"] = config["AsyncInferenceConfig"]
    doc["EndpointStatus"] = EndpointStatus.IN_SERVICE.value
    doc[INTERNAL] = {"Deployed": pending}
    return doc


def scaling_doc(endpoint: Doc, wanted: list[Doc]) -> Doc:
    by_name = {w["VariantName"]: w for w in wanted}
    variants = []
    for variant in endpoint["ProductionVariants"]:
        change = by_name.get(variant["VariantName"], {})
        variants.append(
            {
                **variant,
                "DesiredWeight": change.get("DesiredWeight", variant["DesiredWeight"]),
                "DesiredInstanceCount": change.get(
                    "DesiredInstanceCount", variant["DesiredInstanceCount"]
                ),
            }
        )
    doc = {k: v for k, v in endpoint.items() if k != "FailureReason"}
    return {**doc, "ProductionVariants": variants, "EndpointStatus": EndpointStatus.UPDATING.value}


def scaled(endpoint: Doc, reason: str | None) -> Doc:
    """Settle UpdateEndpointWeightsAndCapacities: current catches up with desired, or desired
    falls back to current on failure."""
    variants = []
    for variant in endpoint["ProductionVariants"]:
        if reason is None:
            settled = {
                "CurrentWeight": variant["DesiredWeight"],
                "CurrentInstanceCount": variant["DesiredInstanceCount"],
            }
        else:
            settled = {
                "DesiredWeight": variant["CurrentWeight"],
                "DesiredInstanceCount": variant["CurrentInstanceCount"],
            }
        variants.append({**variant, **settled})
    doc = {
        **endpoint,
        "ProductionVariants": variants,
        "EndpointStatus": EndpointStatus.IN_SERVICE.value,
    }
    if reason is not None:
        doc["FailureReason"] = reason
    return doc
