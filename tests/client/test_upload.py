"""``--upload FILE|DIR --upload-prefix``: PutObject for each file, then one request each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from tests.client.cli import inferq, json_lines
from tests.client.recorder import Recorded, RecordingServer, Reply, accepted, recording_server


def stored_or_accepted(recorded: Recorded) -> Reply:
    return Reply(200) if recorded.method == "PUT" else accepted(recorded)


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    with recording_server(stored_or_accepted) as server:
        yield server


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inputs"
    (folder / "more").mkdir(parents=True)
    (folder / "a.json").write_text('{"n": 1}')
    (folder / "more" / "b.csv").write_text("2")
    return folder


def upload(recorder: RecordingServer, path: Path, *args: str) -> Result:
    base = ("invoke-endpoint-async", "ep", "--upload", str(path))
    return inferq(*base, "--endpoint-url", recorder.url, *args)


def test_a_folder_becomes_one_request_per_file(recorder: RecordingServer, inputs: Path) -> None:
    result = upload(recorder, inputs, "--upload-prefix", "s3://bkt/in/", "--accept", "x/y")

    assert result.exit_code == 0, result.output
    puts = sorted(
        (r.path, r.header("Content-Type"), r.body) for r in recorder.requests if r.method == "PUT"
    )
    assert puts == [
        ("/bkt/in/a.json", "application/json", b'{"n": 1}'),
        ("/bkt/in/more/b.csv", "text/csv", b"2"),
    ]
    posts = [r for r in recorder.requests if r.method == "POST"]
    assert sorted(r.header("X-Amzn-SageMaker-InputLocation") or "" for r in posts) == [
        "s3://bkt/in/a.json",
        "s3://bkt/in/more/b.csv",
    ]
    assert {r.header("X-Amzn-SageMaker-Accept") for r in posts} == {"x/y"}
    answers = [line["InputLocation"] for line in json_lines(result)]
    assert answers == ["s3://bkt/in/a.json", "s3://bkt/in/more/b.csv"]


def test_a_single_file_may_have_an_inference_id(recorder: RecordingServer, inputs: Path) -> None:
    result = upload(
        recorder, inputs / "a.json", "--upload-prefix", "s3://bkt", "--inference-id", "1"
    )

    assert result.exit_code == 0, result.output
    assert [r.path for r in recorder.requests] == ["/bkt/a.json", "/endpoints/ep/async-invocations"]
    assert recorder.requests[1].header("X-Amzn-SageMaker-Inference-Id") == "1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--upload needs --upload-prefix"),
        (("--upload-prefix", "s3://b/", "--inference-id", "x"), "name one request"),
        (("--upload-prefix", "s3://b/", "--input-location", "s3://b/k"), "drop --input-location"),
    ],
)
def test_usage_errors(
    recorder: RecordingServer, inputs: Path, args: tuple[str, ...], message: str
) -> None:
    result = upload(recorder, inputs, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert recorder.requests == []


def test_a_bad_prefix_is_an_error(recorder: RecordingServer, inputs: Path) -> None:
    result = upload(recorder, inputs, "--upload-prefix", "bkt/in")

    assert result.exit_code == 1
    assert "Error: InvalidInput: not an s3:// location: 'bkt/in'" in result.stderr


def test_an_unreadable_answer_is_an_error(inputs: Path) -> None:
    with recording_server() as recorder:  # answers PutObject with JSON, not S3's XML
        result = upload(recorder, inputs, "--upload-prefix", "s3://bkt/in/", "--max-attempts", "1")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ResponseParserError: Unable to parse response")
