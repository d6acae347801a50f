from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from inferq import errors
from inferq.domain.endpoints import EndpointSpec, EndpointStatus
from inferq.services.endpoints import EndpointService
from inferq.state.memory import MemoryCatalog

ACCOUNT = "123456789012"
ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
IMAGE = "123.dkr.ecr.us-east-1.amazonaws.com/echo:1"
ASYNC_CONFIG = {"OutputConfig": {"S3OutputPath": "s3://bucket/out"}}


class FakeDeployer:
    """Succeeds, fails with ``fail_with``, or waits for ``gate`` first."""

    def __init__(self) -> None:
        self.running: dict[str, EndpointSpec] = {}
        self.scaled: list[tuple[str, str, int]] = []
        self.undeployed: list[str] = []
        self.fail_with: str | None = None
        self.gate: asyncio.Event | None = None
        self.cancelled = False

    async def deploy(self, spec: EndpointSpec) -> None:
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.fail_with is not None:
            raise errors.ModelLoadError(self.fail_with)
        self.running[spec.name] = spec

    async def undeploy(self, name: str) -> None:
        self.undeployed.append(name)
        self.running.pop(name, None)

    async def scale(self, name: str, variant: str, instances: int) -> None:
        if self.fail_with is not None:
            raise errors.ModelLoadError(self.fail_with)
        self.scaled.append((name, variant, instances))


@pytest.fixture
def deployer() -> FakeDeployer:
    return FakeDeployer()


@pytest.fixture
def svc(deployer: FakeDeployer) -> EndpointService:
    ticks = itertools.count(1_700_000_000)
    return EndpointService(
        MemoryCatalog(),
        deployer,
        region="us-east-1",
        account_id=ACCOUNT,
        clock=lambda: float(next(ticks)),
    )


async def make_model(svc: EndpointService, name: str = "model-a") -> None:
    await svc.create_model({"ModelName": name, "PrimaryContainer": {"Image": IMAGE}})


async def make_config(
    svc: EndpointService, name: str = "config-a", model: str = "model-a", **extra: Any
) -> None:
    variant = {"VariantName": "AllTraffic", "ModelName": model, "InitialInstanceCount": 2}
    request: Any = {"EndpointConfigName": name, "ProductionVariants": [variant], **extra}
    await svc.create_endpoint_config(request)


async def make_endpoint(svc: EndpointService, name: str = "Demo-Endpoint", **config: Any) -> None:
    await make_model(svc)
    await make_config(svc, **config)
    await svc.create_endpoint({"EndpointName": name, "EndpointConfigName": "config-a"})
    await svc.join()


async def status_of(svc: EndpointService, name: str = "demo-endpoint") -> str:
    return (await svc.describe_endpoint(name))["EndpointStatus"]


# --- models and configurations -------------------------------------------------------------


async def test_model_crud(svc: EndpointService) -> None:
    created = await svc.create_model(
        {
            "ModelName": "My-Model",
            "PrimaryContainer": {"Image": IMAGE},
            "Tags": [{"Key": "k", "Value": "v"}],
        }
    )
    assert created == {"ModelArn": f"{ARN}:model/my-model"}
    described = await svc.describe_model("my-model")
    assert described["ModelName"] == "My-Model"
    assert described["PrimaryContainer"] == {"Image": IMAGE}
    assert described["CreationTime"] == 1_700_000_000
    await svc.delete_model("MY-MODEL")
    with pytest.raises(errors.NotFound) as missing:
        await svc.describe_model("My-Model")
    assert missing.value.message == f'Could not find model "{ARN}:model/my-model".'


async def test_duplicates_are_case_insensitive(svc: EndpointService) -> None:
    await make_model(svc, "model-a")
    with pytest.raises(errors.Conflict) as duplicate:
        await make_model(svc, "MODEL-A")
    assert duplicate.value.message == f'Cannot create already existing model "{ARN}:model/model-a".'
    await make_config(svc)
    with pytest.raises(errors.Conflict, match="already existing endpoint configuration"):
        await make_config(svc, name="Config-A")


async def test_a_model_needs_a_container(svc: EndpointService) -> None:
    with pytest.raises(errors.InvalidRequest, match="Value null at 'primaryContainer'"):
        await svc.create_model({"ModelName": "empty"})


async def test_unknown_names(svc: EndpointService) -> None:
    for call, text in [
        (svc.delete_model("nope"), f'Could not find model "{ARN}:model/nope".'),
        (
            svc.describe_endpoint_config("nope"),
            f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".',
        ),
        (
            svc.delete_endpoint_config("nope"),
            f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".',
        ),
        (svc.describe_endpoint("Nope"), f'Could not find endpoint "{ARN}:endpoint/nope".'),
        (svc.delete_endpoint("nope"), f'Could not find endpoint "{ARN}:endpoint/nope".'),
    ]:
        with pytest.raises(errors.NotFound) as raised:
            await call
        assert raised.value.message == text


async def test_config_checks_its_models(svc: EndpointService) -> None:
    with pytest.raises(errors.NotFound, match=f'Could not find model "{ARN}:model/ghost".'):
        await make_config(svc, model="ghost")
    await make_model(svc, "Model-A")
    await make_config(svc, model="model-a")  # any case finds the model


async def test_config_rules_the_model_cannot_state(svc: EndpointService) -> None:
    await make_model(svc)
    with pytest.raises(errors.InvalidRequest, match=r"productionVariants\.1\.member\.modelName"):
        await svc.create_endpoint_config(
            {"EndpointConfigName": "c", "ProductionVariants": [{"VariantName": "v"}]}
        )
    twice: Any = [
        {"VariantName": "v", "ModelName": "model-a"},
        {"VariantName": "V", "ModelName": "model-a"},
    ]
    with pytest.raises(errors.InvalidRequest, match="unique"):
        await svc.create_endpoint_config({"EndpointConfigName": "c", "ProductionVariants": twice})
    with pytest.raises(
        errors.InvalidRequest, match=r"asyncInferenceConfig\.outputConfig\.s3OutputPath"
    ):
        await make_config(svc, AsyncInferenceConfig={"OutputConfig": {"KmsKeyId": "k"}})


async def test_describe_endpoint_config_echoes_the_request(svc: EndpointService) -> None:
    await make_model(svc)
    await make_config(svc, AsyncInferenceConfig=ASYNC_CONFIG)
    described = await svc.describe_endpoint_config("CONFIG-A")
    assert described["EndpointConfigArn"] == f"{ARN}:endpoint-config/config-a"
    assert described["AsyncInferenceConfig"] == ASYNC_CONFIG
    assert described["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert "CreationTime" in described


# --- endpoints -----------------------------------------------------------------------------


async def test_create_returns_at_once_then_goes_in_service(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    deployer.gate = asyncio.Event()
    await make_model(svc)
    await make_config(svc, AsyncInferenceConfig=ASYNC_CONFIG)
    created = await svc.create_endpoint(
        {"EndpointName": "Demo-Endpoint", "EndpointConfigName": "config-a"}
    )
    assert created == {"EndpointArn": f"{ARN}:endpoint/demo-endpoint"}
    creating = await svc.describe_endpoint("demo-endpoint")
    assert creating["EndpointStatus"] == "Creating"
    assert creating["ProductionVariants"][0]["CurrentInstanceCount"] == 0
    deployer.gate.set()
    await svc.join()
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointName"] == "Demo-Endpoint"
    assert described["EndpointConfigName"] == "config-a"
    assert described["AsyncInferenceConfig"] == ASYNC_CONFIG
    assert described["LastModifiedTime"] >= described["CreationTime"]
    assert "Inferq" not in described and "FailureReason" not in described
    variant = described["ProductionVariants"][0]
    assert variant["VariantName"] == "AllTraffic"
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    assert (variant["CurrentWeight"], variant["DesiredWeight"]) == (1.0, 1.0)
    image = variant["DeployedImages"][0]
    assert image["SpecifiedImage"] == image["ResolvedImage"] == IMAGE
    spec = deployer.running["Demo-Endpoint"]
    assert spec.variants[0].instance_count == 2 and spec.async_config is not None
    assert spec.async_config.s3_output_path == "s3://bucket/out"


async def test_a_failed_deployment_is_reported(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    deployer.fail_with = "Container /ping did not answer 200 within 600 s: see the model log."
    await make_endpoint(svc)
    described = await svc.describe_endpoint("Demo-Endpoint")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == deployer.fail_with
    with pytest.raises(errors.Conflict, match="Cannot update failed endpoint"):
        await svc.update_endpoint(
            {"EndpointName": "demo-endpoint", "EndpointConfigName": "config-a"}
        )


async def test_unexpected_deployer_errors_fail_the_endpoint(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    async def broken(spec: EndpointSpec) -> None:
        raise RuntimeError("bug")

    deployer.deploy = broken  # type: ignore[method-assign]
    await make_endpoint(svc)
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "Failed"
    assert "internal error" in described["FailureReason"]


async def test_endpoint_names_are_unique_in_any_case(svc: EndpointService) -> None:
    await make_endpoint(svc)
    with pytest.raises(errors.Conflict) as duplicate:
        await svc.create_endpoint(
            {"EndpointName": "DEMO-endpoint", "EndpointConfigName": "config-a"}
        )
    assert duplicate.value.message == (
        f'Cannot create already existing endpoint "{ARN}:endpoint/demo-endpoint".'
    )


async def test_create_endpoint_needs_its_config(svc: EndpointService) -> None:
    with pytest.raises(errors.NotFound, match="Could not find endpoint configuration"):
        await svc.create_endpoint({"EndpointName": "e", "EndpointConfigName": "missing"})


async def test_update_endpoint(svc: EndpointService, deployer: FakeDeployer) -> None:
    await make_endpoint(svc)
    await make_config(svc, name="config-b", AsyncInferenceConfig=ASYNC_CONFIG)
    deployer.gate = asyncio.Event()
    updated = await svc.update_endpoint(
        {"EndpointName": "demo-endpoint", "EndpointConfigName": "config-b"}
    )
    assert updated == {"EndpointArn": f"{ARN}:endpoint/demo-endpoint"}
    updating = await svc.describe_endpoint("demo-endpoint")
    assert updating["EndpointStatus"] == "Updating"
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "config-b"
    with pytest.raises(errors.Conflict, match="Cannot update in-progress endpoint"):
        await svc.update_endpoint(
            {"EndpointName": "demo-endpoint", "EndpointConfigName": "config-b"}
        )
    deployer.gate.set()
    await svc.join()
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "config-b"
    assert described["AsyncInferenceConfig"] == ASYNC_CONFIG
    assert "PendingDeploymentSummary" not in described


async def test_a_failed_update_rolls_back(svc: EndpointService, deployer: FakeDeployer) -> None:
    await make_endpoint(svc)
    await make_config(svc, name="config-b")
    deployer.fail_with = "image not found"
    await svc.update_endpoint({"EndpointName": "demo-endpoint", "EndpointConfigName": "config-b"})
    await svc.join()
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "config-a"
    assert described["FailureReason"] == "image not found"
    status, spec = await svc.lookup("demo-endpoint")
    assert status is EndpointStatus.IN_SERVICE and spec.config_name == "config-a"


async def test_update_can_retain_variant_properties(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    await make_endpoint(svc, AsyncInferenceConfig=ASYNC_CONFIG)
    await svc.update_endpoint_weights_and_capacities(
        {
            "EndpointName": "demo-endpoint",
            "DesiredWeightsAndCapacities": [
                {"VariantName": "AllTraffic", "DesiredInstanceCount": 5}
            ],
        }
    )
    await svc.join()
    await make_config(svc, name="config-b")
    await svc.update_endpoint(
        {
            "EndpointName": "demo-endpoint",
            "EndpointConfigName": "config-b",
            "RetainAllVariantProperties": True,
        }
    )
    await svc.join()
    assert deployer.running["Demo-Endpoint"].variants[0].instance_count == 5
    variant = (await svc.describe_endpoint("demo-endpoint"))["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == 5


async def test_scale_an_async_endpoint_to_zero(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    await make_endpoint(svc, AsyncInferenceConfig=ASYNC_CONFIG)
    deployer.gate = asyncio.Event()
    await svc.update_endpoint_weights_and_capacities(
        {
            "EndpointName": "demo-endpoint",
            "DesiredWeightsAndCapacities": [
                {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}
            ],
        }
    )
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "Updating"
    variant = described["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 0)
    await svc.join()
    assert deployer.scaled == [("Demo-Endpoint", "AllTraffic", 0)]
    variant = (await svc.describe_endpoint("demo-endpoint"))["ProductionVariants"][0]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (0, 0)
    assert await status_of(svc) == "InService"
    _, spec = await svc.lookup("demo-endpoint")
    assert spec.variants[0].instance_count == 0


async def test_scaling_rules(svc: EndpointService, deployer: FakeDeployer) -> None:
    await make_endpoint(svc)
    with pytest.raises(errors.InvalidRequest, match="only supported for asynchronous"):
        await svc.update_endpoint_weights_and_capacities(
            {
                "EndpointName": "demo-endpoint",
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "AllTraffic", "DesiredInstanceCount": 0}
                ],
            }
        )
    with pytest.raises(errors.InvalidRequest, match="not part of endpoint"):
        await svc.update_endpoint_weights_and_capacities(
            {
                "EndpointName": "demo-endpoint",
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "Other", "DesiredInstanceCount": 1}
                ],
            }
        )
    deployer.fail_with = "no capacity"
    await svc.update_endpoint_weights_and_capacities(
        {
            "EndpointName": "demo-endpoint",
            "DesiredWeightsAndCapacities": [
                {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}
            ],
        }
    )
    await svc.join()
    described = await svc.describe_endpoint("demo-endpoint")
    assert described["EndpointStatus"] == "InService"
    assert described["FailureReason"] == "no capacity"
    assert described["ProductionVariants"][0]["DesiredInstanceCount"] == 2


async def test_delete_endpoint(svc: EndpointService, deployer: FakeDeployer) -> None:
    await make_endpoint(svc)
    await svc.delete_endpoint("DEMO-ENDPOINT")
    assert await status_of(svc) == "Deleting"
    await svc.join()
    assert deployer.undeployed == ["Demo-Endpoint"]
    with pytest.raises(errors.NotFound, match="Could not find endpoint"):
        await svc.describe_endpoint("demo-endpoint")
    await svc.create_endpoint({"EndpointName": "demo-endpoint", "EndpointConfigName": "config-a"})


async def test_delete_while_creating_cancels_the_deployment(
    svc: EndpointService, deployer: FakeDeployer
) -> None:
    deployer.gate = asyncio.Event()
    await make_model(svc)
    await make_config(svc)
    await svc.create_endpoint({"EndpointName": "e", "EndpointConfigName": "config-a"})
    await asyncio.sleep(0)
    await svc.delete_endpoint("e")
    await svc.join()
    assert deployer.cancelled and deployer.undeployed == ["e"]
    assert (await svc.list_endpoints({}))["Endpoints"] == []


async def test_models_and_configs_in_use_can_be_deleted(svc: EndpointService) -> None:
    await make_endpoint(svc, AsyncInferenceConfig=ASYNC_CONFIG)
    await svc.delete_model("model-a")
    await svc.delete_endpoint_config("config-a")
    status, spec = await svc.lookup("Demo-Endpoint")
    assert status is EndpointStatus.IN_SERVICE
    assert spec.variants[0].container.image == IMAGE


async def test_resume_after_restart(deployer: FakeDeployer) -> None:
    catalog = MemoryCatalog()
    first = EndpointService(catalog, deployer, region="us-east-1", account_id=ACCOUNT)
    deployer.gate = asyncio.Event()
    await make_model(first)
    await make_config(first)
    await first.create_endpoint({"EndpointName": "e", "EndpointConfigName": "config-a"})
    await first.close()
    assert (await first.describe_endpoint("e"))["EndpointStatus"] == "Creating"
    deployer.gate = None
    second = EndpointService(catalog, deployer, region="us-east-1", account_id=ACCOUNT)
    await second.resume()
    await second.join()
    assert (await second.describe_endpoint("e"))["EndpointStatus"] == "InService"
    assert "e" in deployer.running


# --- listing -------------------------------------------------------------------------------


async def test_list_models_sorts_filters_and_pages(svc: EndpointService) -> None:
    for name in ["b-model", "a-model", "c-other"]:
        await make_model(svc, name)
    newest_first = await svc.list_models({})
    assert [m["ModelName"] for m in newest_first["Models"]] == ["c-other", "a-model", "b-model"]
    assert "NextToken" not in newest_first
    by_name = await svc.list_models(
        {"SortBy": "Name", "SortOrder": "Ascending", "NameContains": "MODEL"}
    )
    assert [m["ModelName"] for m in by_name["Models"]] == ["a-model", "b-model"]
    assert set(by_name["Models"][0]) == {"ModelName", "ModelArn", "CreationTime"}
    first = await svc.list_models({"MaxResults": 2})
    second = await svc.list_models({"MaxResults": 2, "NextToken": first["NextToken"]})
    assert [m["ModelName"] for m in first["Models"] + second["Models"]] == [
        "c-other",
        "a-model",
        "b-model",
    ]
    assert "NextToken" not in second
    after = await svc.list_models(
        {"CreationTimeAfter": 1_700_000_001, "CreationTimeBefore": 1_700_000_002}
    )
    assert [m["ModelName"] for m in after["Models"]] == ["a-model"]
    with pytest.raises(errors.InvalidRequest, match="NextToken"):
        await svc.list_models({"NextToken": "garbage"})


async def test_list_endpoints_by_status(svc: EndpointService, deployer: FakeDeployer) -> None:
    await make_endpoint(svc)
    deployer.gate = asyncio.Event()
    await svc.create_endpoint({"EndpointName": "second", "EndpointConfigName": "config-a"})
    creating = await svc.list_endpoints({"StatusEquals": "Creating"})
    assert [e["EndpointName"] for e in creating["Endpoints"]] == ["second"]
    summary = (await svc.list_endpoints({"SortBy": "Status"}))["Endpoints"][0]
    assert summary["EndpointStatus"] == "InService"
    assert set(summary) == {
        "EndpointName",
        "EndpointArn",
        "CreationTime",
        "LastModifiedTime",
        "EndpointStatus",
    }
    configs = await svc.list_endpoint_configs({"NameContains": "config"})
    assert [c["EndpointConfigName"] for c in configs["EndpointConfigs"]] == ["config-a"]
    deployer.gate.set()
    await svc.join()
