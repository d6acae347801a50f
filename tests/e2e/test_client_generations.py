"""An older botocore generation (before inline bodies and output-path extensions) works too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.e2e.models import BEHAVING
from tests.helpers.inferq import (
    ACCESS_KEY,
    SECRET_KEY,
    InferqServer,
    deploy_async_endpoint,
    inferq_server,
)

OLD_BOTOCORE = Path(__file__).parents[2] / ".old-botocore"

SCRIPT = """
import json, sys, time
import boto3, botocore
from botocore.config import Config

url, key, secret = sys.argv[1:4]
session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                region_name="us-east-1")
runtime = session.client("sagemaker-runtime", endpoint_url=url)
s3 = session.client("s3", endpoint_url=url, config=Config(s3={"addressing_style": "path"}))
s3.put_object(Bucket="old", Key="in/x.json", Body=b'{"text": "from the past"}')
accepted = runtime.invoke_endpoint_async(EndpointName="old", InputLocation="s3://old/in/x.json",
                                         ContentType="application/json")
bucket, _, key = accepted["OutputLocation"][5:].partition("/")
s3.get_waiter("object_exists").wait(Bucket=bucket, Key=key,
                                    WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
answer = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
try:
    runtime.invoke_endpoint_async(EndpointName="missing", InputLocation="s3://old/in/x.json")
    error = None
except runtime.exceptions.ValidationError as exc:
    error = exc.response["Error"]["Code"]
print(json.dumps({"botocore": botocore.__version__, "answer": answer, "error": error,
                  "failure": accepted.get("FailureLocation")}))
"""


def old_botocore() -> Path:
    if OLD_BOTOCORE.is_dir():
        return OLD_BOTOCORE
    if os.environ.get("CI"):
        pytest.fail(f"{OLD_BOTOCORE} must be installed in CI (scripts/test does it)")
    pytest.skip("no old botocore installed: run scripts/test")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferqServer]:
    with inferq_server(tmp_path_factory.mktemp("inferq")) as running:
        deploy_async_endpoint(running, "old", BEHAVING)
        yield running


def test_botocore_1_34_invokes_and_reads_results(server: InferqServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(old_botocore())}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, server.url, ACCESS_KEY, SECRET_KEY],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    assert result["botocore"].startswith("1.34.")
    assert result["answer"]["echo"] == {"text": "from the past"}
    assert result["error"] == "ValidationError"
    assert result["failure"].startswith("s3://old/failure/")
