"""ENDPOINT_NAME ``-``: one request per stdin line, by value (a bare endpoint name) or by
property name (a JSON object), sent concurrently, answered in input order."""

from __future__ import annotations

import json
import threading
import time

from tests.client.cli import inferq, invoke_async, json_lines
from tests.client.recorder import (
    Recorded,
    Reply,
    accepted,
    recording_server,
    validation_error,
)

INPUT = "s3://bucket/in/input.json"


def answer_or_refuse(recorded: Recorded) -> Reply:
    if recorded.path.startswith("/endpoints/missing/"):
        return validation_error("Endpoint missing of account 000000000000 not found.")
    return accepted(recorded)


MIXED = "\n".join(
    [
        "first-endpoint",
        '{"EndpointName": "second", "InferenceId": "two", "InputLocation": "s3://b/2.json"}',
        "not an endpoint name",
        '{"endpointname": "third", "customattribute": "x=1", "RequestTTLSeconds": 90}',
        "",
        "{broken json",
        '{"InferenceId": "no endpoint"}',
        "missing",
        '{"EndpointName": "fourth", "Body": "inline text", "InvocationTimeoutSecond": "30"}',
        '{"EndpointName": "fifth", "RequestTTLSecond": "later"}',
        '["a", "list"]',
    ]
)


def test_mixed_good_and_bad_lines() -> None:
    with recording_server(answer_or_refuse) as recorder:
        result = invoke_async(recorder.url, endpoint="-", input=MIXED + "\n")

    answers = json_lines(result)
    assert result.exit_code == 1
    assert len(answers) == 10  # one per non-blank line, in order
    ok = [answers[i] for i in (0, 1, 3, 7)]
    assert [a["InferenceId"] for a in ok] == ["generated-id", "two", "generated-id", "generated-id"]
    errors = {i: answers[i]["Error"]["Code"] for i in (2, 4, 5, 6, 8, 9)}
    assert errors == {
        2: "InvalidInput",
        4: "InvalidInput",
        5: "InvalidInput",
        6: "ValidationError",
        8: "InvalidInput",
        9: "InvalidInput",
    }
    assert "not found" in answers[6]["Error"]["Message"]
    assert "line 3: InvalidInput: not an endpoint name" in result.stderr
    assert "line 8: ValidationError: Endpoint missing" in result.stderr
    sent = {r.path.split("/")[2]: r for r in recorder.requests}
    assert set(sent) == {"first-endpoint", "second", "third", "missing", "fourth"}
    assert sent["first-endpoint"].header("X-Amzn-SageMaker-InputLocation") == INPUT
    assert sent["second"].header("X-Amzn-SageMaker-InputLocation") == "s3://b/2.json"
    assert sent["third"].header("X-Amzn-SageMaker-Custom-Attributes") == "x=1"
    assert sent["third"].header("X-Amzn-SageMaker-RequestTTLSeconds") == "90"
    assert sent["fourth"].body == b"inline text"
    assert sent["fourth"].header("X-Amzn-SageMaker-InvocationTimeoutSeconds") == "30"


def test_all_good_lines_exit_zero() -> None:
    with recording_server() as recorder:
        result = invoke_async(
            recorder.url, "--select", "^EndpointName", endpoint="-", input="a\nb\nc\n"
        )

    assert result.exit_code == 0
    assert json_lines(result) == ["a", "b", "c"]


def slower_for_earlier_lines(recorded: Recorded) -> Reply:
    number = int(recorded.path.split("/")[2].removeprefix("ep"))
    reply = accepted(recorded)
    return Reply(reply.status, reply.body, reply.headers, delay=0.05 * (8 - number))


def test_requests_run_concurrently_and_answer_in_input_order() -> None:
    lines = "".join(
        json.dumps({"EndpointName": f"ep{n}", "InferenceId": str(n)}) + "\n" for n in range(8)
    )
    in_flight, peak, lock = [0], [0], threading.Lock()

    def counting(recorded: Recorded) -> Reply:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        time.sleep(0.1)
        with lock:
            in_flight[0] -= 1
        return slower_for_earlier_lines(recorded)

    with recording_server(counting) as recorder:
        result = invoke_async(
            recorder.url, "--concurrency", "4", "--select", "InferenceId", endpoint="-", input=lines
        )

    assert result.exit_code == 0, result.output
    assert json_lines(result) == [str(n) for n in range(8)]
    assert peak[0] == 4


def test_body_file_from_stdin_is_refused_with_stdin_requests() -> None:
    result = inferq("invoke-endpoint-async", "-", "--body-file", "-", input="ep\n")

    assert result.exit_code == 2
    assert "stdin has the requests" in result.stderr


def test_table_output_for_many_answers() -> None:
    with recording_server() as recorder:
        result = invoke_async(recorder.url, "--output", "table", endpoint="-", input="a\n{}\n")

    header, rule, *rows = result.stdout.splitlines()
    assert header.split()[:2] == ["InferenceId", "OutputLocation"]
    assert "Error.Code" in header
    assert set(rule) <= {"-", " "}
    assert len(rows) == 2
    assert "InvalidInput" in rows[1]
