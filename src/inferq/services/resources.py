"""Naming and request rules of the control-plane resources: ARNs, AWS's messages about them,
and the checks botocore's model cannot express."""

from __future__ import annotations

from typing import Any

from inferq import errors
from inferq.state.base import Kind

_NOUNS = {
    Kind.MODEL: "model",
    Kind.ENDPOINT_CONFIG: "endpoint configuration",
    Kind.ENDPOINT: "endpoint",
}
_ARN_MEMBERS = {
    Kind.MODEL: "ModelArn",
    Kind.ENDPOINT_CONFIG: "EndpointConfigArn",
    Kind.ENDPOINT: "EndpointArn",
}


def arn(kind: Kind, name: str, *, region: str, account_id: str) -> str:
    """SageMaker lower-cases resource names in ARNs (names are unique in any case)."""
    return f"arn:{partition(region)}:sagemaker:{region}:{account_id}:{kind.value}/{name.lower()}"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def arn_member(kind: Kind) -> str:
    return _ARN_MEMBERS[kind]


def not_found(kind: Kind, resource_arn: str) -> errors.NotFound:
    return errors.NotFound(f'Could not find {_NOUNS[kind]} "{resource_arn}".')


def already_exists(kind: Kind, resource_arn: str) -> errors.Conflict:
    return errors.Conflict(f'Cannot create already existing {_NOUNS[kind]} "{resource_arn}".')


def null_member(path: str) -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"1 validation error detected: Value null at '{path}' failed to satisfy constraint: "
        "Member must not be null"
    )


# --- request rules the model cannot state -------------------------------------------------


def check_variants(config: dict[str, Any]) -> None:
    seen: set[str] = set()
    for index, variant in enumerate(config["ProductionVariants"], 1):
        if not variant.get("ModelName"):
            raise null_member(f"productionVariants.{index}.member.modelName")
        if variant["VariantName"].lower() in seen:
            raise errors.InvalidRequest(
                f'Variant names must be unique; "{variant["VariantName"]}" is used twice.'
            )
        seen.add(variant["VariantName"].lower())


def check_async_config(config: dict[str, Any]) -> None:
    # The model leaves S3OutputPath optional, but every result needs a place to go.
    async_config = config.get("AsyncInferenceConfig")
    if async_config is not None and not async_config["OutputConfig"].get("S3OutputPath"):
        raise null_member("asyncInferenceConfig.outputConfig.s3OutputPath")


def check_capacities(endpoint: dict[str, Any], wanted: list[dict[str, Any]]) -> None:
    known = {v["VariantName"] for v in endpoint["ProductionVariants"]}
    names = [w["VariantName"] for w in wanted]
    unknown = sorted(set(names) - known)
    if unknown:
        raise errors.InvalidRequest(
            f'The variant(s) {unknown} are not part of endpoint "{endpoint["EndpointArn"]}".'
        )
    if len(set(names)) != len(names):
        raise errors.InvalidRequest("Each variant may appear only once in the request.")
    if "AsyncInferenceConfig" not in endpoint and any(
        w.get("DesiredInstanceCount") == 0 for w in wanted
    ):
        raise errors.InvalidRequest(
            "DesiredInstanceCount 0 is only supported for asynchronous inference endpoints; "
            "real-time endpoints need at least 1 instance."
        )
