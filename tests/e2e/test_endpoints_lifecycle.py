"""Endpoints from deploy to delete on a real server with real model processes, driven by
boto3 and the AWS CLI as a team would drive SageMaker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError
from tests.e2e.models import BEHAVING
from tests.e2e.test_modelserver import build_wheel
from tests.helpers.inferq import (
    PYTORCH_IMAGE,
    InferqServer,
    create_async_config,
    deploy_async_endpoint,
    inferq_server,
    model_tarball,
    object_exists,
    wait_for_object,
    wait_in_service,
)

AWS_CLI = str(Path(sys.executable).parent / "aws")

SECOND_MODEL = """
import json

def model_fn(model_dir):
    return "second"

def transform_fn(model, input_data, content_type, accept):
    return json.dumps({"model": model}), "application/json"
"""

FAILING_MODEL = """
def model_fn(model_dir):
    raise FileNotFoundError("weights.bin is not in the model archive")

def predict_fn(data, model):
    return data
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferqServer]:
    with inferq_server(tmp_path_factory.mktemp("inferq")) as running:
        yield running


def invoke(server: InferqServer, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
    accepted: dict[str, Any] = server.client("sagemaker-runtime").invoke_endpoint_async(
        EndpointName=endpoint,
        Body=json.dumps(payload).encode(),
        ContentType="application/json",
    )
    assert accepted["ResponseMetadata"]["HTTPStatusCode"] == 202
    return accepted


def answer(server: InferqServer, accepted: dict[str, Any]) -> dict[str, Any]:
    output = wait_for_object(server, accepted["OutputLocation"], timeout=60)
    parsed: dict[str, Any] = json.loads(output["Body"].read())
    return parsed


def ask(server: InferqServer, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
    return answer(server, invoke(server, endpoint, payload))


def describe(server: InferqServer, endpoint: str) -> dict[str, Any]:
    described: dict[str, Any] = server.client("sagemaker").describe_endpoint(EndpointName=endpoint)
    return described


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- where the code comes from ------------------------------------------------------------------


def test_a_submit_directory_and_program_as_the_python_sdk_deploys(server: InferqServer) -> None:
    """``model.tar.gz`` holds only the weights; the code is a ``sourcedir.tar.gz`` in S3."""
    source = {
        "serve.py": (
            "import json, os\nimport helpers\n\n"
            "def model_fn(model_dir):\n"
            "    return open(os.path.join(model_dir, 'weights.txt')).read()\n\n"
            "def transform_fn(model, data, content_type, accept):\n"
            "    return json.dumps({'weights': model, 'helper': helpers.NAME}), accept\n"
        ),
        "helpers.py": "NAME = 'a sibling module'\n",
    }
    s3 = server.client("s3")
    s3.create_bucket(Bucket="sdk")
    s3.put_object(Bucket="sdk", Key="code/sourcedir.tar.gz", Body=model_tarball(source))
    environment = {
        "SAGEMAKER_PROGRAM": "serve.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://sdk/code/sourcedir.tar.gz",
    }

    deploy_async_endpoint(
        server, "sdk", None, files={"weights.txt": "w=42"}, environment=environment
    )

    assert ask(server, "sdk", {}) == {"weights": "w=42", "helper": "a sibling module"}


def test_requirements_txt_in_the_code_folder_is_installed(
    server: InferqServer, tmp_path: Path
) -> None:
    wheel = build_wheel(tmp_path / "wheels")
    code = (
        "import inferq_tiny_dep\n\n"
        "def model_fn(model_dir):\n    return inferq_tiny_dep.GREETING\n\n"
        "def transform_fn(model, data, content_type, accept):\n"
        "    return '{\"greeting\": \"%s\"}' % model, 'application/json'\n"
    )
    files: dict[str, str | bytes] = {
        "code/requirements.txt": "--no-index\n--find-links wheels\ninferq-tiny-dep==1.0\n",
        f"code/wheels/{wheel.name}": wheel.read_bytes(),
    }

    deploy_async_endpoint(server, "reqs", code, files=files)

    assert ask(server, "reqs", {}) == {"greeting": "hello from requirements.txt"}


# --- deployments that fail ----------------------------------------------------------------------


def wait_until_failed(server: InferqServer, endpoint: str) -> str:
    """The waiter stops at ``Failed`` at once; the FailureReason is returned."""
    started = time.monotonic()
    with pytest.raises(WaiterError) as raised:
        wait_in_service(server, endpoint)
    assert "terminal failure state" in str(raised.value)
    assert time.monotonic() - started < 30
    described = describe(server, endpoint)
    assert described["EndpointStatus"] == "Failed"
    reason: str = described["FailureReason"]
    assert len(reason) <= 1024, "botocore's model allows FailureReason up to 1024 characters"
    return reason


def test_a_model_fn_that_raises_fails_the_endpoint_saying_where_and_why(
    server: InferqServer,
) -> None:
    deploy_async_endpoint(server, "broken", FAILING_MODEL, wait=False)

    reason = wait_until_failed(server, "broken")

    assert "code/inference.py" in reason
    assert "model_fn" in reason
    assert "FileNotFoundError: weights.bin is not in the model archive" in reason


def test_an_image_inferq_cannot_run_fails_the_endpoint_saying_what_would(
    server: InferqServer,
) -> None:
    deploy_async_endpoint(server, "nginx", BEHAVING, image="nginx:latest", wait=False)

    reason = wait_until_failed(server, "nginx")

    assert "'nginx:latest' cannot be run here" in reason
    assert "pytorch-inference" in reason and "http://host:port" in reason


# --- capacity -----------------------------------------------------------------------------------


def test_two_instances_share_the_work(server: InferqServer) -> None:
    deploy_async_endpoint(server, "pair", BEHAVING, instances=2, concurrency=1)
    assert describe(server, "pair")["ProductionVariants"][0]["CurrentInstanceCount"] == 2

    accepted = [invoke(server, "pair", {"seconds": 0.5}) for _ in range(4)]

    assert len({answer(server, one)["pid"] for one in accepted}) == 2


def scale(server: InferqServer, endpoint: str, instances: int) -> None:
    server.client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=endpoint,
        DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": instances}
        ],
    )
    wait_in_service(server, endpoint)
    variant = describe(server, endpoint)["ProductionVariants"][0]
    assert variant["CurrentInstanceCount"] == variant["DesiredInstanceCount"] == instances


def test_at_zero_instances_requests_wait_for_capacity(server: InferqServer) -> None:
    deploy_async_endpoint(server, "zero", BEHAVING)
    pid = ask(server, "zero", {"text": "before"})["pid"]
    scale(server, "zero", 0)
    assert not process_exists(pid)

    waiting = [invoke(server, "zero", {"text": f"queued {n}"}) for n in range(3)]
    time.sleep(1.0)  # five polls of the queue
    assert not any(object_exists(server, one["OutputLocation"]) for one in waiting)

    scale(server, "zero", 1)
    answers = [answer(server, one)["echo"]["text"] for one in waiting]
    assert answers == ["queued 0", "queued 1", "queued 2"]


# --- updates and deletion -----------------------------------------------------------------------


def test_update_endpoint_to_another_model(server: InferqServer) -> None:
    deploy_async_endpoint(server, "upd", BEHAVING)
    old_pid = ask(server, "upd", {"text": "old"})["pid"]
    create_async_config(server, "upd-second", SECOND_MODEL)

    server.client("sagemaker").update_endpoint(EndpointName="upd", EndpointConfigName="upd-second")
    wait_in_service(server, "upd")

    assert describe(server, "upd")["EndpointConfigName"] == "upd-second"
    assert ask(server, "upd", {"text": "new"}) == {"model": "second"}
    assert not process_exists(old_pid)


def test_delete_endpoint_stops_its_model_processes(server: InferqServer) -> None:
    deploy_async_endpoint(server, "gone", BEHAVING, instances=2, concurrency=1)
    accepted = [invoke(server, "gone", {"seconds": 0.3}) for _ in range(4)]
    pids = {answer(server, one)["pid"] for one in accepted}
    assert all(process_exists(pid) for pid in pids)

    sm = server.client("sagemaker")
    sm.delete_endpoint(EndpointName="gone")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="gone", WaiterConfig={"Delay": 0.2, "MaxAttempts": 100}
    )

    assert not any(process_exists(pid) for pid in pids)
    assert "gone" not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]


# --- the AWS CLI --------------------------------------------------------------------------------


def test_the_aws_cli_deploys_and_invokes(server: InferqServer, tmp_path: Path) -> None:
    def aws(*args: str) -> str:
        command = [AWS_CLI, "--endpoint-url", server.url, *args]
        done = subprocess.run(
            command, env=server.cli_env(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    (tmp_path / "model.tar.gz").write_bytes(model_tarball({"code/inference.py": BEHAVING}))
    (tmp_path / "input.json").write_text('{"text": "from the cli"}')
    async_config = {"OutputConfig": {"S3OutputPath": "s3://cli/out"}}
    variant = "VariantName=AllTraffic,ModelName=cli,InitialInstanceCount=1,InstanceType=ml.m5.large"

    aws("s3", "mb", "s3://cli")
    aws("s3", "cp", str(tmp_path / "model.tar.gz"), "s3://cli/model/model.tar.gz")
    aws("s3", "cp", str(tmp_path / "input.json"), "s3://cli/in/input.json")
    aws(
        "sagemaker", "create-model", "--model-name", "cli",
        "--primary-container", f"Image={PYTORCH_IMAGE},ModelDataUrl=s3://cli/model/model.tar.gz",
        "--execution-role-arn", "arn:aws:iam::000000000000:role/inferq",
    )  # fmt: skip
    aws(
        "sagemaker", "create-endpoint-config", "--endpoint-config-name", "cli",
        "--production-variants", variant,
        "--async-inference-config", json.dumps(async_config),
    )  # fmt: skip
    aws("sagemaker", "create-endpoint", "--endpoint-name", "cli", "--endpoint-config-name", "cli")
    # the CLI's waiter polls every 30 s: boto3's (0.2 s) waits first, so the CLI's first poll
    # already sees InService and the test stays fast
    wait_in_service(server, "cli")
    aws("sagemaker", "wait", "endpoint-in-service", "--endpoint-name", "cli")
    accepted = json.loads(
        aws(
            "sagemaker-runtime", "invoke-endpoint-async", "--endpoint-name", "cli",
            "--input-location", "s3://cli/in/input.json", "--content-type", "application/json",
        )
    )  # fmt: skip
    wait_for_object(server, accepted["OutputLocation"])

    result = json.loads(aws("s3", "cp", accepted["OutputLocation"], "-"))
    assert result["echo"] == {"text": "from the cli"}
    assert accepted["OutputLocation"].startswith("s3://cli/out/")
