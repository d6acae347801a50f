"""Every rule of InvokeEndpointAsync's input answers with botocore's modelled ValidationError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.models import BEHAVING
from tests.helpers.inferq import InferqServer, deploy_async_endpoint, inferq_server

ASYNC = "valid"
REALTIME = "realtime"
GOOD = {"EndpointName": ASYNC, "InputLocation": "s3://valid/in/x.json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferqServer]:
    with inferq_server(tmp_path_factory.mktemp("inferq")) as running:
        deploy_async_endpoint(running, ASYNC, BEHAVING)
        yield running


@pytest.fixture(scope="module")
def runtime(server: InferqServer) -> Any:
    # botocore checks minimums itself; switch that off so the server's checks are what we test,
    # as with the JavaScript and .NET SDKs, which check nothing
    return server.client("sagemaker-runtime", parameter_validation=False)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (
            {"RequestTTLSeconds": 59},
            "at 'requestTTLSeconds' failed to satisfy constraint: "
            "Member must have value greater than or equal to 60",
        ),
        ({"RequestTTLSeconds": 21601}, "Member must have value less than or equal to 21600"),
        ({"InvocationTimeoutSeconds": 3601}, "Member must have value less than or equal to 3600"),
        ({"InferenceId": "x" * 65}, "Member must have length less than or equal to 64"),
        ({"Filename": "a.b.c"}, "at 'filename'"),
        ({"Filename": "f" * 33}, "Member must have length less than or equal to 32"),
        ({"S3OutputPathExtension": "s3://x"}, "at 's3OutputPathExtension'"),
        ({"InputLocation": "ftp://bucket/key"}, "at 'inputLocation'"),
        ({"ContentType": "x" * 1025}, "Member must have length less than or equal to 1024"),
        ({"EndpointName": "bad_name"}, "at 'endpointName'"),
        ({"EndpointName": "a" * 64}, "Member must have length less than or equal to 63"),
    ],
)
def test_constraint_violations(runtime: Any, change: dict[str, Any], fragment: str) -> None:
    with pytest.raises(runtime.exceptions.ValidationError) as raised:
        runtime.invoke_endpoint_async(**{**GOOD, **change})

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Code"] == "ValidationError"
    assert fragment in error["Error"]["Message"]
    assert error["ResponseMetadata"]["RequestId"]


def test_unknown_endpoint(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="Endpoint nope of account"):
        runtime.invoke_endpoint_async(EndpointName="nope", InputLocation="s3://b/k")


def test_both_body_and_input_location(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="mutually exclusive"):
        runtime.invoke_endpoint_async(**GOOD, Body=b"abc")


def test_neither_body_nor_input_location(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="Either InputLocation or Body"):
        runtime.invoke_endpoint_async(EndpointName=ASYNC)


def test_inline_body_over_128000_bytes(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="128000"):
        runtime.invoke_endpoint_async(EndpointName=ASYNC, Body=b"x" * 128_001)


def test_inline_body_of_exactly_128000_bytes_is_accepted(runtime: Any) -> None:
    result = runtime.invoke_endpoint_async(EndpointName=ASYNC, Body=b"x" * 128_000)
    assert result["ResponseMetadata"]["HTTPStatusCode"] == 202


def test_non_ascii_custom_attributes(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="customAttributes"):
        runtime.invoke_endpoint_async(**GOOD, CustomAttributes="caf\u00e9")


def test_invoke_endpoint_on_an_async_endpoint(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="InvokeEndpointAsync"):
        runtime.invoke_endpoint(EndpointName=ASYNC, Body=b"{}", ContentType="application/json")


def test_async_invocation_of_a_realtime_endpoint(server: InferqServer, runtime: Any) -> None:
    sm = server.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName=REALTIME,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": ASYNC,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sm.create_endpoint(EndpointName=REALTIME, EndpointConfigName=REALTIME)
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName=REALTIME, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )

    with pytest.raises(runtime.exceptions.ValidationError, match="asynchronous"):
        runtime.invoke_endpoint_async(EndpointName=REALTIME, InputLocation="s3://b/k")
    answer = runtime.invoke_endpoint(
        EndpointName=REALTIME,
        Body=b'{"text": "now"}',
        ContentType="application/json",
        CustomAttributes="a=1",
    )
    assert answer["ContentType"] == "application/json"
    body = json.loads(answer["Body"].read())
    assert body["echo"] == {"text": "now"}
    assert body["custom_attributes"] == "a=1"
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_realtime_model_error_is_a_modelled_model_error(runtime: Any) -> None:
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(
            EndpointName=REALTIME,
            Body=b'{"action": "fail", "why": "no"}',
            ContentType="application/json",
        )
    assert raised.value.response["OriginalStatusCode"] == 500
    assert "the model refused: no" in raised.value.response["OriginalMessage"]


def test_wrong_signature_is_rejected(server: InferqServer) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "sagemaker-runtime",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAINFERQTESTKEY001",
        aws_secret_access_key="wrong",
        config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(client.exceptions.ClientError) as raised:
        client.invoke_endpoint_async(**GOOD)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert raised.value.response["Error"]["Code"] == "InvalidSignatureException"
