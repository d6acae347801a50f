"""JSON, table and text output, and how errors are told."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.client.cli import inferq, invoke_async
from tests.client.recorder import OUTPUT_LOCATION, recording_server, validation_error

from inferq.client.output import flatten, table, text_line, to_json


def test_flatten_names_nested_values_with_dots() -> None:
    record = {"A": {"B": 1, "C": [2, {"D": None}]}, "E": "x"}

    assert flatten(record) == {"A.B": 1, "A.C.0": 2, "A.C.1.D": None, "E": "x"}
    assert flatten("bare") == {"Value": "bare"}


def test_json_writes_times_as_iso_8601() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert to_json({"T": when, "B": b"bytes"}) == '{"T": "2026-01-02T03:04:05+00:00", "B": "bytes"}'


def test_table_aligns_columns_from_every_record() -> None:
    lines = table([{"Name": "a", "N": 1}, {"Name": "longer", "Other": None}]).splitlines()

    assert lines == [
        "Name    N  Other",
        "------  -  -----",
        "a       1",
        "longer     None",
    ]


def test_text_is_tab_separated() -> None:
    assert text_line({"A": "x", "B": {"C": 2}}) == "x\t2"


def test_invoke_as_text_and_table() -> None:
    args = ("invoke-endpoint-async", "ep", "--input-location", "s3://b/k", "--inference-id", "i")
    with recording_server() as recorder:
        text = inferq(*args, "--endpoint-url", recorder.url, "--output", "text")
        shown = inferq(*args, "--endpoint-url", recorder.url, "--output", "table")

    assert text.stdout.split("\t")[:2] == ["i", OUTPUT_LOCATION]
    assert shown.stdout.splitlines()[0].split() == [
        "InferenceId",
        "OutputLocation",
        "FailureLocation",
        "ResponseMetadata.RequestId",
        "ResponseMetadata.HTTPStatusCode",
    ]


def test_aws_errors_print_code_and_message_and_exit_1() -> None:
    with recording_server(lambda _: validation_error("Endpoint ep not found.")) as recorder:
        result = invoke_async(recorder.url)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "Error: ValidationError: Endpoint ep not found.\n"
