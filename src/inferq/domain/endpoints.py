"""What a deployed endpoint is made of, as the dispatcher and the instance manager see it.

The control plane stores AWS request shapes; ``EndpointSpec.from_docs`` turns the stored Model
and EndpointConfig documents into this typed view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EndpointStatus(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ContainerSpec:
    image: str | None
    model_data_url: str | None
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class VariantSpec:
    name: str
    model_name: str
    container: ContainerSpec
    instance_count: int


@dataclass(frozen=True, kw_only=True, slots=True)
class AsyncSpec:
    s3_output_path: str
    s3_failure_path: str | None
    #: MaxConcurrentInvocationsPerInstance; None lets the server choose
    max_concurrency: int | None
    success_topic: str | None = None
    error_topic: str | None = None
    include_response_in: tuple[str, ...] = ()
    kms_key_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointSpec:
    name: str
    config_name: str
    variants: tuple[VariantSpec, ...]
    async_config: AsyncSpec | None

    @classmethod
    def from_docs(
        cls, name: str, config: dict[str, Any], models: dict[str, dict[str, Any]]
    ) -> EndpointSpec:
        """Build from an EndpointConfig document and the Model documents it names."""
        variants = tuple(
            _variant(v, models[v["ModelName"]]) for v in config.get("ProductionVariants", [])
        )
        return cls(
            name=name,
            config_name=config["EndpointConfigName"],
            variants=variants,
            async_config=_async(config.get("AsyncInferenceConfig")),
        )


def _variant(doc: dict[str, Any], model: dict[str, Any]) -> VariantSpec:
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return VariantSpec(
        name=doc["VariantName"],
        model_name=doc["ModelName"],
        container=ContainerSpec(
            image=container.get("Image"),
            model_data_url=container.get("ModelDataUrl")
            or container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri"),
            environment=dict(container.get("Environment") or {}),
        ),
        instance_count=int(doc.get("InitialInstanceCount", 1)),
    )


def _async(doc: dict[str, Any] | None) -> AsyncSpec | None:
    if doc is None:
        return None
    output = doc.get("OutputConfig", {})
    notify = output.get("NotificationConfig") or {}
    client = doc.get("ClientConfig") or {}
    return AsyncSpec(
        s3_output_path=output.get("S3OutputPath", ""),
        s3_failure_path=output.get("S3FailurePath"),
        max_concurrency=client.get("MaxConcurrentInvocationsPerInstance"),
        success_topic=notify.get("SuccessTopic"),
        error_topic=notify.get("ErrorTopic"),
        include_response_in=tuple(notify.get("IncludeInferenceResponseIn") or ()),
        kms_key_id=output.get("KmsKeyId"),
    )
