"""Every parameter of Invoke-SMREndpointAsync, under each of its spellings, reaches the wire
as the InvokeEndpointAsync member botocore serializes it to."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.client.cli import INPUT, inferq, invoke_async, json_lines
from tests.client.recorder import OUTPUT_LOCATION, RecordingServer

from inferq.client.invoke import API_OPTIONS
from inferq.client.params import PARAMETERS

HEADER_PARAMETERS = [
    ("--content-type", "application/json", "X-Amzn-SageMaker-Content-Type"),
    ("--accept", "text/csv", "X-Amzn-SageMaker-Accept"),
    ("--custom-attribute", "trace=1", "X-Amzn-SageMaker-Custom-Attributes"),
    ("--custom-attributes", "trace=2", "X-Amzn-SageMaker-Custom-Attributes"),
    ("--inference-id", "my-id-7", "X-Amzn-SageMaker-Inference-Id"),
    ("--invocation-timeout-second", "60", "X-Amzn-SageMaker-InvocationTimeoutSeconds"),
    ("--invocation-timeout-seconds", "61", "X-Amzn-SageMaker-InvocationTimeoutSeconds"),
    ("--request-ttl-second", "120", "X-Amzn-SageMaker-RequestTTLSeconds"),
    ("--request-ttl-seconds", "121", "X-Amzn-SageMaker-RequestTTLSeconds"),
    ("--s3-output-path-extension", "batch/7", "X-Amzn-SageMaker-S3OutputPathExtension"),
    ("--filename", "result.json", "X-Amzn-SageMaker-Filename"),
    ("--input-location", "s3://bucket/in/other.json", "X-Amzn-SageMaker-InputLocation"),
]


def invoke(recorder: RecordingServer, *args: str, input: str | None = None) -> list[object]:
    result = inferq("invoke-endpoint-async", *args, "--endpoint-url", recorder.url, input=input)
    assert result.exit_code == 0, result.output
    return json_lines(result)


@pytest.mark.parametrize(("option", "value", "header"), HEADER_PARAMETERS)
def test_each_parameter_and_alias_sets_its_header(
    recorder: RecordingServer, option: str, value: str, header: str
) -> None:
    invoke(recorder, "my-endpoint", "--input-location", INPUT, option, value)

    (request,) = recorder.requests
    assert request.header(header) == value
    assert request.method == "POST"
    assert request.path == "/endpoints/my-endpoint/async-invocations"


def test_only_the_given_parameters_are_sent(recorder: RecordingServer) -> None:
    invoke(recorder, "my-endpoint", "--input-location", INPUT)

    assert recorder.requests[0].sagemaker_headers == {"X-Amzn-SageMaker-InputLocation": INPUT}
    assert recorder.requests[0].body == b""


def test_endpoint_name_is_the_first_positional_argument(recorder: RecordingServer) -> None:
    invoke(recorder, "--input-location", INPUT, "second-endpoint")

    assert recorder.requests[0].path == "/endpoints/second-endpoint/async-invocations"


def test_inline_body(recorder: RecordingServer) -> None:
    invoke(recorder, "ep", "--body", '{"text": "inline"}', "--content-type", "application/json")

    (request,) = recorder.requests
    assert request.body == b'{"text": "inline"}'
    assert request.header("X-Amzn-SageMaker-InputLocation") is None


def test_body_file(recorder: RecordingServer, tmp_path: Path) -> None:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"\x00\x01binary\xff")

    invoke(recorder, "ep", "--body-file", str(payload))

    assert recorder.requests[0].body == b"\x00\x01binary\xff"


def test_body_file_from_stdin(recorder: RecordingServer) -> None:
    invoke(recorder, "ep", "--body-file", "-", input="from stdin")

    assert recorder.requests[0].body == b"from stdin"


def test_body_and_body_file_exclude_each_other(recorder: RecordingServer, tmp_path: Path) -> None:
    (tmp_path / "b").write_text("x")
    result = inferq(
        "invoke-endpoint-async",
        "ep",
        "--body",
        "x",
        "--body-file",
        str(tmp_path / "b"),
        "--endpoint-url",
        recorder.url,
    )

    assert result.exit_code == 2
    assert "--body and --body-file" in result.stderr
    assert recorder.requests == []


def test_an_input_is_required(recorder: RecordingServer) -> None:
    result = inferq("invoke-endpoint-async", "ep", "--endpoint-url", recorder.url)

    assert result.exit_code == 1
    assert "Error: InvalidInput: give an InputLocation or an inline Body" in result.stderr
    assert recorder.requests == []


def test_force_is_accepted(recorder: RecordingServer) -> None:
    (answer,) = invoke(recorder, "ep", "--input-location", INPUT, "--force")

    assert answer["OutputLocation"] == OUTPUT_LOCATION  # type: ignore[index]


def test_integer_parameters_are_checked_locally(recorder: RecordingServer) -> None:
    result = invoke_async(recorder.url, "--request-ttl-seconds", "soon")

    assert result.exit_code == 2
    assert "'soon' is not a valid integer" in result.stderr


def test_every_option_sets_a_member_of_the_api() -> None:
    assert set(API_OPTIONS.values()) <= {parameter.api_name for parameter in PARAMETERS}
