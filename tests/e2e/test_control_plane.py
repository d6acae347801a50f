"""The control plane over real HTTP, driven by unchanged clients: boto3 and the AWS CLI."""

from __future__ import annotations

import asyncio
import datetime
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError
from tests.helpers.server import serve_in_thread

from inferq import errors
from inferq.api.control import ControlApi
from inferq.domain.endpoints import EndpointSpec
from inferq.services.endpoints import EndpointService
from inferq.state.memory import MemoryCatalog

ACCOUNT = "111122223333"
ARN = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}"
IMAGE = "inferq/echo:latest"
BROKEN_IMAGE = "inferq/broken:latest"
FAST = {"Delay": 0.2, "MaxAttempts": 50}
AWS_CLI = Path(sys.executable).with_name("aws")


class SleepyDeployer:
    """Takes a moment to deploy; fails for models whose image is BROKEN_IMAGE."""

    def __init__(self) -> None:
        self.undeployed: list[str] = []

    async def deploy(self, spec: EndpointSpec) -> None:
        await asyncio.sleep(0.3)
        if any(v.container.image == BROKEN_IMAGE for v in spec.variants):
            raise errors.ModelLoadError(f"Image {BROKEN_IMAGE} exited with status 1 during /ping.")

    async def undeploy(self, name: str) -> None:
        await asyncio.sleep(0.1)
        self.undeployed.append(name)

    async def scale(self, name: str, variant: str, instances: int) -> None:
        await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
def service() -> EndpointService:
    return EndpointService(
        MemoryCatalog(), SleepyDeployer(), region="us-east-1", account_id=ACCOUNT
    )


@pytest.fixture(scope="module")
def url(service: EndpointService) -> Iterator[str]:
    with serve_in_thread(ControlApi(service)) as base:
        yield base


def client(url: str, **config: Any) -> Any:
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=Config(retries={"max_attempts": 1}, **config),
    )


@pytest.fixture(scope="module")
def sm(url: str) -> Any:
    return client(url)


def error_of(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    response: dict[str, Any] = raised.value.response
    return response


def deploy(sm: Any, name: str, image: str = IMAGE, **config: Any) -> None:
    sm.create_model(ModelName=f"{name}-model", PrimaryContainer={"Image": image})
    sm.create_endpoint_config(
        EndpointConfigName=f"{name}-config",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": f"{name}-model", "InitialInstanceCount": 1}
        ],
        **config,
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")


ASYNC = {
    "OutputConfig": {
        "S3OutputPath": "s3://results/out",
        "S3FailurePath": "s3://results/failed",
        "NotificationConfig": {
            "SuccessTopic": f"arn:aws:sns:us-east-1:{ACCOUNT}:ok",
            "IncludeInferenceResponseIn": ["SUCCESS_NOTIFICATION_TOPIC"],
        },
    },
    "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
}


def test_full_lifecycle_with_waiters(sm: Any) -> None:
    deploy(sm, "Lifecycle", AsyncInferenceConfig=ASYNC, Tags=[{"Key": "team", "Value": "ml"}])
    assert sm.describe_endpoint(EndpointName="lifecycle")["EndpointStatus"] == "Creating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="Lifecycle", WaiterConfig=FAST)

    described = sm.describe_endpoint(EndpointName="Lifecycle")
    assert described["EndpointArn"] == f"{ARN}:endpoint/lifecycle"
    assert described["EndpointConfigName"] == "Lifecycle-config"
    assert described["AsyncInferenceConfig"] == ASYNC
    assert isinstance(described["CreationTime"], datetime.datetime)
    assert described["LastModifiedTime"] >= described["CreationTime"]
    variant = described["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 1
    assert variant["DeployedImages"][0]["SpecifiedImage"] == IMAGE
    assert isinstance(variant["DeployedImages"][0]["ResolutionTime"], datetime.datetime)
    assert described["ResponseMetadata"]["HTTPHeaders"]["content-type"] == (
        "application/x-amz-json-1.1"
    )

    sm.update_endpoint_weights_and_capacities(
        EndpointName="Lifecycle",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )
    sm.get_waiter("endpoint_in_service").wait(EndpointName="Lifecycle", WaiterConfig=FAST)
    variant = sm.describe_endpoint(EndpointName="Lifecycle")["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == 0

    sm.create_endpoint_config(
        EndpointConfigName="Lifecycle-config-2",
        ProductionVariants=[{"VariantName": "v2", "ModelName": "Lifecycle-model"}],
        AsyncInferenceConfig=ASYNC,
    )
    sm.update_endpoint(EndpointName="Lifecycle", EndpointConfigName="Lifecycle-config-2")
    assert sm.describe_endpoint(EndpointName="Lifecycle")["EndpointStatus"] == "Updating"
    sm.get_waiter("endpoint_in_service").wait(EndpointName="Lifecycle", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="Lifecycle")
    assert described["EndpointConfigName"] == "Lifecycle-config-2"
    assert described["ProductionVariants"][0]["VariantName"] == "v2"

    sm.delete_endpoint(EndpointName="Lifecycle")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="Lifecycle", WaiterConfig=FAST)


def test_models_and_configs(sm: Any) -> None:
    created = sm.create_model(
        ModelName="Echo-Model",
        PrimaryContainer={"Image": IMAGE, "Environment": {"SAGEMAKER_PROGRAM": "serve.py"}},
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole",
    )
    assert created["ModelArn"] == f"{ARN}:model/echo-model"
    model = sm.describe_model(ModelName="echo-model")
    assert model["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "serve.py"}
    assert model["ExecutionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/SageMakerRole"
    sm.create_endpoint_config(
        EndpointConfigName="echo-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "Echo-Model"}],
    )
    config = sm.describe_endpoint_config(EndpointConfigName="echo-config")
    assert config["EndpointConfigArn"] == f"{ARN}:endpoint-config/echo-config"
    assert config["ProductionVariants"] == [
        {"VariantName": "AllTraffic", "ModelName": "Echo-Model"}
    ]
    names = [m["ModelName"] for m in sm.list_models(NameContains="echo")["Models"]]
    assert names == ["Echo-Model"]
    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    assert sm.list_models(NameContains="echo", CreationTimeAfter=hour_ago)["Models"]
    assert not sm.list_models(NameContains="echo", CreationTimeBefore=hour_ago)["Models"]
    configs = sm.list_endpoint_configs(SortBy="Name", SortOrder="Ascending")["EndpointConfigs"]
    assert "echo-config" in [c["EndpointConfigName"] for c in configs]
    assert (
        sm.delete_endpoint_config(EndpointConfigName="echo-config")["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 200
    )
    sm.delete_model(ModelName="Echo-Model")


def test_a_failing_deployment_fails_the_waiter_fast(sm: Any) -> None:
    deploy(sm, "broken", image=BROKEN_IMAGE)
    with pytest.raises(WaiterError, match="terminal failure"):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="broken", WaiterConfig=FAST)
    described = sm.describe_endpoint(EndpointName="broken")
    assert described["EndpointStatus"] == "Failed"
    assert described["FailureReason"] == (
        f"Image {BROKEN_IMAGE} exited with status 1 during /ping."
    )


def test_validation_exception_messages(sm: Any) -> None:
    cases: list[tuple[Any, dict[str, Any], str]] = [
        (
            sm.describe_endpoint,
            {"EndpointName": "ghost"},
            f'Could not find endpoint "{ARN}:endpoint/ghost".',
        ),
        (
            sm.delete_endpoint,
            {"EndpointName": "ghost"},
            f'Could not find endpoint "{ARN}:endpoint/ghost".',
        ),
        (sm.describe_model, {"ModelName": "ghost"}, f'Could not find model "{ARN}:model/ghost".'),
        (sm.delete_model, {"ModelName": "ghost"}, f'Could not find model "{ARN}:model/ghost".'),
        (
            sm.describe_endpoint_config,
            {"EndpointConfigName": "ghost"},
            f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
        ),
        (
            sm.delete_endpoint_config,
            {"EndpointConfigName": "ghost"},
            f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
        ),
        (
            sm.create_endpoint,
            {"EndpointName": "e", "EndpointConfigName": "ghost"},
            f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
        ),
        (
            sm.create_endpoint_config,
            {
                "EndpointConfigName": "c",
                "ProductionVariants": [{"VariantName": "v", "ModelName": "ghost"}],
            },
            f'Could not find model "{ARN}:model/ghost".',
        ),
        (
            sm.describe_endpoint,
            {"EndpointName": "bad_name"},
            "1 validation error detected: Value 'bad_name' at 'endpointName' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: "
            "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
        (
            sm.list_endpoints,
            {"MaxResults": 101},
            "1 validation error detected: Value '101' at 'maxResults' failed to satisfy "
            "constraint: Member must have value less than or equal to 100",
        ),
    ]
    for call, kwargs, message in cases:
        response = error_of(call, **kwargs)
        assert response["Error"] == {"Code": "ValidationException", "Message": message}, kwargs
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_duplicates(sm: Any) -> None:
    deploy(sm, "Twice")
    duplicates: list[tuple[Any, dict[str, Any], str]] = [
        (
            sm.create_model,
            {"ModelName": "TWICE-model", "PrimaryContainer": {"Image": IMAGE}},
            f'Cannot create already existing model "{ARN}:model/twice-model".',
        ),
        (
            sm.create_endpoint_config,
            {
                "EndpointConfigName": "twice-CONFIG",
                "ProductionVariants": [{"VariantName": "v", "ModelName": "Twice-model"}],
            },
            "Cannot create already existing endpoint configuration "
            f'"{ARN}:endpoint-config/twice-config".',
        ),
        (
            sm.create_endpoint,
            {"EndpointName": "twice", "EndpointConfigName": "Twice-config"},
            f'Cannot create already existing endpoint "{ARN}:endpoint/twice".',
        ),
    ]
    for call, kwargs, message in duplicates:
        assert error_of(call, **kwargs)["Error"]["Message"] == message


def test_async_config_is_validated_on_the_server(sm: Any) -> None:
    sm.create_model(ModelName="cfg-model", PrimaryContainer={"Image": IMAGE})
    variants = [{"VariantName": "v", "ModelName": "cfg-model"}]
    bad = {
        "OutputConfig": {
            "S3OutputPath": "gs://elsewhere",
            "NotificationConfig": {"ErrorTopic": "arn:aws:sns:us-east-1:1:t"},
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 1001},
    }
    message = error_of(
        sm.create_endpoint_config,
        EndpointConfigName="bad-async",
        ProductionVariants=variants,
        AsyncInferenceConfig=bad,
    )["Error"]["Message"]
    assert message.startswith(
        "3 validation errors detected: Value 'gs://elsewhere' at "
        "'asyncInferenceConfig.outputConfig.s3OutputPath'"
    )
    assert "'asyncInferenceConfig.outputConfig.notificationConfig.errorTopic'" in message
    assert "Value '1001' at 'asyncInferenceConfig.clientConfig." in message
    no_output = {"OutputConfig": {"KmsKeyId": "key"}}
    assert error_of(
        sm.create_endpoint_config,
        EndpointConfigName="bad-async",
        ProductionVariants=variants,
        AsyncInferenceConfig=no_output,
    )["Error"]["Message"] == (
        "1 validation error detected: Value null at 'asyncInferenceConfig.outputConfig."
        "s3OutputPath' failed to satisfy constraint: Member must not be null"
    )


def test_required_members_checked_without_client_validation(url: str) -> None:
    raw = client(url, parameter_validation=False)
    response = error_of(raw.create_endpoint_config, EndpointConfigName="c")
    assert response["Error"]["Message"] == (
        "1 validation error detected: Value null at 'productionVariants' failed to satisfy "
        "constraint: Member must not be null"
    )
    response = error_of(raw.list_models, MaxResults="ten")
    assert response["Error"]["Code"] == "SerializationException"


def test_list_endpoints_paginator(sm: Any, service: EndpointService) -> None:
    sm.create_model(ModelName="page-model", PrimaryContainer={"Image": IMAGE})
    sm.create_endpoint_config(
        EndpointConfigName="page-config",
        ProductionVariants=[{"VariantName": "v", "ModelName": "page-model"}],
    )
    for index in range(5):
        sm.create_endpoint(EndpointName=f"page-{index}", EndpointConfigName="page-config")
    paginator = sm.get_paginator("list_endpoints")
    pages = list(
        paginator.paginate(
            NameContains="page-",
            SortBy="Name",
            SortOrder="Ascending",
            PaginationConfig={"PageSize": 2},
        )
    )
    assert [len(p["Endpoints"]) for p in pages] == [2, 2, 1]
    names = [e["EndpointName"] for p in pages for e in p["Endpoints"]]
    assert names == [f"page-{i}" for i in range(5)]
    assert {"EndpointStatus", "EndpointArn", "CreationTime", "LastModifiedTime"} <= set(
        pages[0]["Endpoints"][0]
    )


def raw_post(url: str, body: bytes, target: str | None) -> tuple[int, dict[str, str], Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port)
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    payload = json.loads(response.read())
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, payload


def test_protocol_errors(url: str) -> None:
    status, headers, body = raw_post(url, b"{}", "SageMaker.CreateTrainingJob")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert headers["x-amzn-requestid"]
    status, _, body = raw_post(url, b"{not json", "SageMaker.ListModels")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, _, body = raw_post(url, b"", "SageMaker.ListModels")
    assert status == 200 and "Models" in body
    status, _, body = raw_post(url, b"[]", "SageMaker.ListModels")
    assert (status, body["__type"]) == (400, "SerializationException")


def test_unexpected_errors_are_json_500s(
    url: str, service: EndpointService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def explode(request: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(service, "list_models", explode)
    status, headers, body = raw_post(url, b"{}", "SageMaker.ListModels")
    assert status == 500
    assert body["__type"] == "InternalFailure" and body["message"]
    assert headers["content-type"] == "application/x-amz-json-1.1"


def test_aws_cli(url: str, sm: Any) -> None:
    deploy(sm, "cli-endpoint")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cli-endpoint", WaiterConfig=FAST)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    base = [str(AWS_CLI), "--endpoint-url", url, "sagemaker"]
    done = subprocess.run(
        [*base, "describe-endpoint", "--endpoint-name", "cli-endpoint"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    described = json.loads(done.stdout)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointArn"] == f"{ARN}:endpoint/cli-endpoint"
    failed = subprocess.run(
        [*base, "describe-endpoint", "--endpoint-name", "ghost"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode != 0
    assert "(ValidationException)" in failed.stderr
    assert f'Could not find endpoint "{ARN}:endpoint/ghost".' in failed.stderr
