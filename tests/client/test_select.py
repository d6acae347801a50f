"""``--select`` in its three forms, and ``--pass-thru``, its deprecated alias."""

from __future__ import annotations

import pytest
from click.testing import Result
from tests.client.cli import inferq, json_lines
from tests.client.recorder import FAILURE_LOCATION, OUTPUT_LOCATION, RecordingServer

INPUT = "s3://bucket/in/input.json"


def call(recorder: RecordingServer, *args: str) -> Result:
    base = ("invoke-endpoint-async", "ep", "--input-location", INPUT)
    return inferq(*base, "--endpoint-url", recorder.url, *args)


def invoke(recorder: RecordingServer, *args: str) -> object:
    result = call(recorder, "--inference-id", "id-1", *args)
    assert result.exit_code == 0, result.output
    (value,) = json_lines(result)
    return value


def test_the_whole_response_by_default(recorder: RecordingServer) -> None:
    assert invoke(recorder) == {
        "InferenceId": "id-1",
        "OutputLocation": OUTPUT_LOCATION,
        "FailureLocation": FAILURE_LOCATION,
        "ResponseMetadata": {"RequestId": "request-0001", "HTTPStatusCode": 202},
    }
    assert invoke(recorder, "--select", "*") == invoke(recorder)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OutputLocation", OUTPUT_LOCATION),
        ("outputlocation", OUTPUT_LOCATION),
        ("FailureLocation", FAILURE_LOCATION),
        ("InferenceId", "id-1"),
        ("RequestId", "request-0001"),
        ("ResponseMetadata.RequestId", "request-0001"),
        ("HttpStatusCode", 202),
        ("ResponseMetadata", {"RequestId": "request-0001", "HTTPStatusCode": 202}),
    ],
)
def test_a_property_name_selects_its_value(
    recorder: RecordingServer, name: str, value: object
) -> None:
    assert invoke(recorder, "--select", name) == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("^EndpointName", "ep"),
        ("^endpointname", "ep"),
        ("^InputLocation", INPUT),
        ("^InferenceId", "id-1"),
        ("^ContentType", None),
    ],
)
def test_a_caret_selects_a_parameter(recorder: RecordingServer, name: str, value: object) -> None:
    assert invoke(recorder, "--select", name) == value


def test_parameters_by_cmdlet_name_and_alias(recorder: RecordingServer) -> None:
    args = ("--custom-attributes", "a=b", "--request-ttl-seconds", "90")

    assert invoke(recorder, *args, "--select", "^CustomAttribute") == "a=b"
    assert invoke(recorder, *args, "--select", "^CustomAttributes") == "a=b"
    assert invoke(recorder, *args, "--select", "^RequestTTLSecond") == 90


def test_text_output_prints_the_bare_value(recorder: RecordingServer) -> None:
    result = call(recorder, "--select", "OutputLocation", "--output", "text")

    assert result.stdout == OUTPUT_LOCATION + "\n"


@pytest.mark.parametrize("select", ["Nonsense", "^Nonsense"])
def test_unknown_names_are_usage_errors(recorder: RecordingServer, select: str) -> None:
    result = call(recorder, "--select", select)

    assert result.exit_code == 2
    assert "Nonsense" in result.stderr
    assert recorder.requests == []


def test_pass_thru_selects_the_endpoint_name_with_a_warning(recorder: RecordingServer) -> None:
    result = call(recorder, "--pass-thru")

    assert result.exit_code == 0
    assert json_lines(result) == ["ep"]
    assert "WARNING: --pass-thru is deprecated; use --select ^EndpointName" in result.stderr
    assert len(recorder.requests) == 1


def test_pass_thru_and_select_do_not_go_together(recorder: RecordingServer) -> None:
    result = call(recorder, "--pass-thru", "--select", "*")

    assert result.exit_code == 2
