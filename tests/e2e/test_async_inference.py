"""InvokeEndpointAsync end to end: a real server process, boto3 with real SigV4, real models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.models import BEHAVING
from tests.helpers.inferq import (
    InferqServer,
    deploy_async_endpoint,
    inferq_server,
    object_exists,
    wait_for_object,
)

ENDPOINT = "e2e"
AWS_CLI = str(Path(sys.executable).parent / "aws")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferqServer]:
    with inferq_server(tmp_path_factory.mktemp("inferq")) as running:
        deploy_async_endpoint(
            running,
            ENDPOINT,
            BEHAVING,
            concurrency=2,
            environment={"SAGEMAKER_MODEL_SERVER_WORKERS": "4"},
        )
        running.client("s3").put_object(
            Bucket=ENDPOINT,
            Key="in/hello.json",
            Body=b'{"text": "hello"}',
            ContentType="application/json",
        )
        yield running


@pytest.fixture(scope="module")
def runtime(server: InferqServer) -> Any:
    return server.client("sagemaker-runtime")


def invoke(runtime: Any, **params: Any) -> dict[str, Any]:
    params.setdefault("EndpointName", ENDPOINT)
    result: dict[str, Any] = runtime.invoke_endpoint_async(**params)
    return result


def put_input(server: InferqServer, payload: dict[str, Any], content_type: str = "") -> str:
    key = f"in/{uuid.uuid4()}.json"
    extra = {"ContentType": content_type} if content_type else {}
    server.client("s3").put_object(
        Bucket=ENDPOINT, Key=key, Body=json.dumps(payload).encode(), **extra
    )
    return f"s3://{ENDPOINT}/{key}"


def test_accepts_with_202_and_both_locations(runtime: Any) -> None:
    result = invoke(runtime, InputLocation=f"s3://{ENDPOINT}/in/hello.json")

    assert result["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert re.fullmatch(UUID, result["InferenceId"])
    output, failure = result["OutputLocation"], result["FailureLocation"]
    assert re.fullmatch(rf"s3://{ENDPOINT}/output/{UUID}\.out", output)
    assert re.fullmatch(rf"s3://{ENDPOINT}/failure/{UUID}-error\.out", failure)
    job = output.rsplit("/", 1)[1].removesuffix(".out")
    assert job != result["InferenceId"]
    assert failure.endswith(f"/{job}-error.out")
    assert result["ResponseMetadata"]["RequestId"]


def test_output_is_the_models_answer_with_its_content_type(
    server: InferqServer, runtime: Any
) -> None:
    result = invoke(
        runtime,
        InputLocation=put_input(server, {"text": "hi"}),
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=abc;tenant=7",
    )

    output = wait_for_object(server, result["OutputLocation"])
    answer = json.loads(output["Body"].read())
    assert output["ContentType"] == "application/json"
    assert answer["echo"] == {"text": "hi"}
    assert answer["accept"] == "application/json"
    assert answer["custom_attributes"] == "trace=abc;tenant=7"
    assert not object_exists(server, result["FailureLocation"])


def test_content_type_falls_back_to_the_input_objects(server: InferqServer, runtime: Any) -> None:
    location = put_input(server, {"text": "typed"}, content_type="application/json")

    result = invoke(runtime, InputLocation=location)

    answer = json.loads(wait_for_object(server, result["OutputLocation"])["Body"].read())
    assert answer["content_type"] == "application/json"
    assert answer["echo"] == {"text": "typed"}


def test_inline_body(server: InferqServer, runtime: Any) -> None:
    result = invoke(runtime, Body=b'{"text": "inline"}', ContentType="application/json")

    answer = json.loads(wait_for_object(server, result["OutputLocation"])["Body"].read())
    assert answer["echo"] == {"text": "inline"}


def test_caller_inference_id_extension_and_filename(server: InferqServer, runtime: Any) -> None:
    result = invoke(
        runtime,
        InputLocation=f"s3://{ENDPOINT}/in/hello.json",
        InferenceId="my-request-1",
        S3OutputPathExtension="batch/7",
        Filename="result.json",
    )

    assert result["InferenceId"] == "my-request-1"
    assert result["OutputLocation"] == f"s3://{ENDPOINT}/output/batch/7/result.json"
    assert result["FailureLocation"] == f"s3://{ENDPOINT}/failure/batch/7/result-error.out"
    wait_for_object(server, result["OutputLocation"])


def test_model_error_goes_to_the_failure_location_only(server: InferqServer, runtime: Any) -> None:
    location = put_input(server, {"action": "fail", "why": "bad input"})

    result = invoke(runtime, InputLocation=location, ContentType="application/json")

    failure = wait_for_object(server, result["FailureLocation"])
    assert "the model refused: bad input" in failure["Body"].read().decode()
    assert not object_exists(server, result["OutputLocation"])


def test_invocation_timeout_fails_the_request(server: InferqServer, runtime: Any) -> None:
    location = put_input(server, {"action": "sleep", "seconds": 4})

    result = invoke(
        runtime,
        InputLocation=location,
        ContentType="application/json",
        InvocationTimeoutSeconds=1,
    )

    failure = wait_for_object(server, result["FailureLocation"])
    assert "timed out" in failure["Body"].read().decode()
    assert not object_exists(server, result["OutputLocation"])


def test_missing_input_object_fails_with_a_reason(server: InferqServer, runtime: Any) -> None:
    result = invoke(runtime, InputLocation=f"s3://{ENDPOINT}/in/nope.json")

    failure = wait_for_object(server, result["FailureLocation"])
    assert "s3://e2e/in/nope.json" in failure["Body"].read().decode()


def test_never_more_than_max_concurrent_invocations(server: InferqServer, runtime: Any) -> None:
    location = put_input(server, {"action": "sleep", "seconds": 0.4, "group": "limit"})

    def one(_: int) -> dict[str, Any]:
        result = invoke(runtime, InputLocation=location, ContentType="application/json")
        return json.loads(wait_for_object(server, result["OutputLocation"])["Body"].read())

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(one, range(6)))

    assert max(answer["peak"] for answer in answers) == 2


def test_the_aws_cli_invokes_and_reads_the_result(server: InferqServer) -> None:
    command = [
        AWS_CLI,
        "--endpoint-url",
        server.url,
        "sagemaker-runtime",
        "invoke-endpoint-async",
        "--endpoint-name",
        ENDPOINT,
        "--input-location",
        f"s3://{ENDPOINT}/in/hello.json",
        "--content-type",
        "application/json",
    ]
    done = subprocess.run(command, env=server.cli_env(), capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    wait_for_object(server, result["OutputLocation"])
    read = subprocess.run(
        [AWS_CLI, "--endpoint-url", server.url, "s3", "cp", result["OutputLocation"], "-"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(read.stdout)["echo"] == {"text": "hello"}
    assert set(result) == {"InferenceId", "OutputLocation", "FailureLocation"}


def test_metrics_show_the_backlog_per_endpoint(server: InferqServer) -> None:
    import urllib.request

    with urllib.request.urlopen(server.url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
        content_type = answer.headers["Content-Type"]

    assert content_type.startswith("text/plain; version=0.0.4")
    assert f'inferq_instances{{endpoint="{ENDPOINT}"}} 1' in text
    assert f'inferq_has_backlog_without_capacity{{endpoint="{ENDPOINT}"}} 0' in text
    assert "# TYPE inferq_approximate_backlog_size gauge" in text


def test_deleting_an_endpoint_fails_what_waits_for_it(server: InferqServer, runtime: Any) -> None:
    deploy_async_endpoint(server, "doomed", BEHAVING)
    sm = server.client("sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName="doomed",
        DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}],
    )
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="doomed", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )
    waiting = invoke(runtime, EndpointName="doomed", Body=b'{"text": "too late"}')

    sm.delete_endpoint(EndpointName="doomed")

    failure = wait_for_object(server, waiting["FailureLocation"])
    assert "Endpoint doomed was deleted" in failure["Body"].read().decode()
    assert not object_exists(server, waiting["OutputLocation"])
