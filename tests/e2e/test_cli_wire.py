"""The wire request of ``inferq invoke-endpoint-async`` against the AWS CLI's for the same
call, both recorded by a small HTTP server: path, SageMaker headers, body, Content-Type,
credential scope and SignedHeaders match, and both signatures verify with botocore's SigV4Auth.

The AWS CLI v1 ships its own botocore (``awscli.botocore``), so the two clients may be
different botocore versions; the headers that legitimately differ are named in
``CLIENT_IDENTITY`` and checked separately.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.client.recorder import Recorded, RecordingServer, recording_server, signature_is_valid

AWS_CLI = str(Path(sys.executable).parent / "aws")
ACCESS_KEY = "AKIDWIRECOMPARISON01"
SECRET_KEY = "wire-comparison-secret"
#: differ by design: who is calling, when, which attempt of which invocation
CLIENT_IDENTITY = {
    "user-agent",
    "x-amz-date",
    "authorization",
    "amz-sdk-invocation-id",
    "amz-sdk-request",
}

CALLS = {
    "every header parameter": [
        "--input-location",
        "s3://bucket/in/input.json",
        "--content-type",
        "application/json",
        "--accept",
        "application/json",
        "--custom-attributes",
        "trace=abc;tenant=7",
        "--inference-id",
        "request-42",
        "--request-ttl-seconds",
        "600",
        "--invocation-timeout-seconds",
        "120",
        "--s3-output-path-extension",
        "batch/7",
        "--filename",
        "result.json",
    ],
    "input location only": ["--input-location", "s3://bucket/in/input.json"],
    "inline body": ["--body", '{"text": "hello"}', "--content-type", "application/json"],
}


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )
    return env


def aws_cli(server: RecordingServer, args: list[str], env: dict[str, str]) -> Recorded:
    command = [
        AWS_CLI,
        "--endpoint-url",
        server.url,
        "sagemaker-runtime",
        "invoke-endpoint-async",
        "--endpoint-name",
        "my-endpoint",
        *args,
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    return server.requests.pop()


def inferq_cli(server: RecordingServer, args: list[str], env: dict[str, str]) -> Recorded:
    command = [
        sys.executable,
        "-m",
        "inferq",
        "invoke-endpoint-async",
        "my-endpoint",
        "--endpoint-url",
        server.url,
        *args,
    ]
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
    return server.requests.pop()


def header_names(request: Recorded) -> set[str]:
    return {name.lower() for name, _ in request.headers}


def fixed_headers(request: Recorded) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers if k.lower() not in CLIENT_IDENTITY}


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    with recording_server() as running:
        yield running


@pytest.fixture(scope="module")
def aws_cli_version() -> str:
    return subprocess.run([AWS_CLI, "--version"], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize("call", CALLS, ids=str)
def test_same_request_as_the_aws_cli(
    server: RecordingServer, call: str, aws_cli_version: str
) -> None:
    env = environment()
    theirs, ours = aws_cli(server, CALLS[call], env), inferq_cli(server, CALLS[call], env)

    assert (
        (ours.method, ours.path)
        == (theirs.method, theirs.path)
        == ("POST", "/endpoints/my-endpoint/async-invocations")
    )
    assert ours.sagemaker_headers == theirs.sagemaker_headers, aws_cli_version
    assert ours.body == theirs.body
    assert ours.header("Content-Type") == theirs.header("Content-Type")
    assert header_names(ours) == header_names(theirs)
    assert fixed_headers(ours) == fixed_headers(theirs)
    assert ours.authorization["Algorithm"] == theirs.authorization["Algorithm"]
    assert ours.authorization["SignedHeaders"] == theirs.authorization["SignedHeaders"]
    day = (ours.header("X-Amz-Date") or "")[:8]
    scope = [ACCESS_KEY, day, "eu-west-1", "sagemaker", "aws4_request"]
    assert ours.credential_scope == scope
    assert theirs.credential_scope[2:] == scope[2:]
    assert signature_is_valid(ours, SECRET_KEY, server.url)
    assert signature_is_valid(theirs, SECRET_KEY, server.url)


def test_session_tokens_from_the_environment(server: RecordingServer) -> None:
    env = environment(AWS_SESSION_TOKEN="the-session-token")
    args = CALLS["input location only"]
    theirs, ours = aws_cli(server, args, env), inferq_cli(server, args, env)

    assert ours.header("X-Amz-Security-Token") == theirs.header("X-Amz-Security-Token")
    assert ours.header("X-Amz-Security-Token") == "the-session-token"
    assert ours.authorization["SignedHeaders"] == theirs.authorization["SignedHeaders"]
    assert signature_is_valid(ours, SECRET_KEY, server.url)


def test_what_differs_is_who_calls(server: RecordingServer, aws_cli_version: str) -> None:
    """The AWS CLI v1 retries in botocore's legacy mode; plain botocore now defaults to
    standard, which announces ``max=`` in amz-sdk-request. In legacy mode they agree."""
    args = CALLS["input location only"]
    theirs = aws_cli(server, args, environment())
    ours_default = inferq_cli(server, args, environment())
    ours_legacy = inferq_cli(server, [*args, "--retry-mode", "legacy"], environment())

    assert theirs.header("amz-sdk-request") == "attempt=1", aws_cli_version
    assert ours_legacy.header("amz-sdk-request") == "attempt=1"
    assert (ours_default.header("amz-sdk-request") or "").startswith("attempt=1")
    assert (theirs.header("User-Agent") or "").startswith("aws-cli/")
    assert (ours_default.header("User-Agent") or "").startswith("Botocore/")
    assert (ours_default.header("User-Agent") or "").endswith(" inferq/0.1.0")
