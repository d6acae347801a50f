"""The client commands against a running inferq: invoke, wait, pipelines, profiles, and the
whole round trip in three real processes (deploy, invoke --upload, wait --download)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import Result
from tests.client.cli import inferq, json_lines
from tests.e2e.models import BEHAVING
from tests.helpers.inferq import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    InferqServer,
    deploy_async_endpoint,
    inferq_server,
    wait_for_object,
)

ENDPOINT = "cli"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InferqServer]:
    with inferq_server(tmp_path_factory.mktemp("inferq")) as running:
        deploy_async_endpoint(running, ENDPOINT, BEHAVING, concurrency=4)
        yield running


def connection(server: InferqServer) -> list[str]:
    return [
        "--endpoint-url",
        server.url,
        "--region",
        REGION,
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ]


def run(server: InferqServer, *args: str, input: str | None = None) -> Result:
    return inferq(*args, *connection(server), input=input)


def invoke_body(server: InferqServer, payload: dict[str, object]) -> str:
    result = run(
        server,
        "invoke-endpoint-async",
        ENDPOINT,
        "--body",
        json.dumps(payload),
        "--content-type",
        "application/json",
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def test_invoke_then_wait(server: InferqServer) -> None:
    accepted = invoke_body(server, {"text": "hello"})

    result = run(server, "wait", "--poll-interval", "0.1", input=accepted)

    assert result.exit_code == 0, result.output
    (answer,) = json_lines(result)
    assert answer["Status"] == "Completed"
    assert answer["OutputLocation"] == json.loads(accepted)["OutputLocation"]


def test_wait_reports_failures_with_their_bodies(server: InferqServer, tmp_path: Path) -> None:
    good = invoke_body(server, {"text": "fine"})
    bad = invoke_body(server, {"action": "fail", "why": "bad input"})

    result = run(
        server,
        "wait",
        "--poll-interval",
        "0.1",
        "--download",
        str(tmp_path),
        "--progress",
        input=good + bad,
    )

    assert result.exit_code == 1
    completed, failed = json_lines(result)
    assert completed["Status"] == "Completed"
    assert json.loads(Path(completed["Download"]).read_text())["echo"] == {"text": "fine"}
    assert failed["Status"] == "Failed"
    assert "the model refused: bad input" in failed["FailureReason"]
    assert "the model refused: bad input" in Path(failed["Download"]).read_text()
    assert f"FAILED {failed['FailureLocation']}" in result.stderr
    assert "wait [" in result.stderr and "done 1  failed 1  pending 0" in result.stderr


def test_wait_gives_up_at_the_timeout(server: InferqServer) -> None:
    missing = f"s3://{ENDPOINT}/output/never-written.out"

    result = run(server, "wait", missing, "--timeout", "0.5", "--poll-interval", "0.1")

    assert result.exit_code == 3
    assert json_lines(result) == [
        {"OutputLocation": missing, "FailureLocation": None, "Status": "Pending"}
    ]


def test_pipeline_with_an_unknown_endpoint(server: InferqServer) -> None:
    server.client("s3").put_object(Bucket=ENDPOINT, Key="in/p.json", Body=b'{"text": "p"}')
    lines = f'{ENDPOINT}\nno-such-endpoint\n{{"EndpointName": "{ENDPOINT}", "InferenceId": "p3"}}\n'

    result = run(
        server,
        "invoke-endpoint-async",
        "-",
        "--input-location",
        f"s3://{ENDPOINT}/in/p.json",
        "--content-type",
        "application/json",
        input=lines,
    )

    assert result.exit_code == 1
    first, unknown, third = json_lines(result)
    assert first["OutputLocation"].startswith(f"s3://{ENDPOINT}/output/")
    assert unknown["Error"]["Code"] == "ValidationError"
    assert "no-such-endpoint" in unknown["Error"]["Message"]
    assert third["InferenceId"] == "p3"
    waited = run(server, "wait", "--poll-interval", "0.1", input=result.stdout)
    assert [a["Status"] for a in json_lines(waited)] == ["Completed", "Failed", "Completed"]


def invoke_as(server: InferqServer, *credentials: str) -> Result:
    """Invoke with only the given credential options (no keys in the environment)."""
    base = ("invoke-endpoint-async", ENDPOINT, "--body", "{}", "--region", REGION)
    return inferq(*base, "--endpoint-url", server.url, *credentials)


def test_credentials_from_a_profile_file(server: InferqServer, tmp_path: Path) -> None:
    profiles = tmp_path / "credentials"
    profiles.write_text(
        f"[inferq]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )

    result = invoke_as(
        server,
        "--profile-location",
        str(profiles),
        "--profile-name",
        "inferq",
        "--select",
        "HttpStatusCode",
    )

    assert result.exit_code == 0, result.output
    assert json_lines(result) == [202]


def test_wrong_keys_are_refused_by_inferq(server: InferqServer) -> None:
    result = invoke_as(
        server,
        "--ak",
        ACCESS_KEY,
        "--sk",
        "not-the-secret",
    )

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: InvalidSignatureException: ")


MODEL_V1 = """
import json

def model_fn(model_dir):
    return "v1"

def transform_fn(model, data, content_type, accept):
    return json.dumps({"version": model}), "application/json"
"""


def test_deploy_update_and_endpoints(server: InferqServer, tmp_path: Path) -> None:
    folder = tmp_path / "dev-loop"
    folder.mkdir()
    (folder / "inference.py").write_text(MODEL_V1)
    deploy = ("deploy", str(folder), "--delay", "0.2", "--max-concurrency", "2")

    created = run(server, *deploy)
    clash = run(server, *deploy)
    (folder / "inference.py").write_text(MODEL_V1.replace('"v1"', '"v2"'))
    updated = run(server, *deploy, "--update")

    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["EndpointStatus"] == "InService"
    assert clash.exit_code == 1 and "redeploy with --update" in clash.stderr
    assert updated.exit_code == 0, updated.output
    assert version_answered(server, "dev-loop") == "v2"
    listed = json_lines(run(server, "endpoints", "list", "--name-contains", "dev"))
    assert [e["EndpointName"] for e in listed] == ["dev-loop"]
    described = json.loads(run(server, "endpoints", "describe", "dev-loop").stdout)
    assert described["EndpointConfigName"] == json.loads(updated.stdout)["EndpointConfigName"]
    assert described["AsyncInferenceConfig"]["OutputConfig"]["S3OutputPath"] == (
        "s3://dev-loop/dev-loop/output"
    )
    deleted = run(
        server,
        "endpoints",
        "delete",
        "dev-loop",
        "--with-config",
        "--force",
        "--wait",
        "--delay",
        "0.2",
    )
    assert deleted.exit_code == 0, deleted.output
    assert json_lines(deleted)[0]["ModelNames"] == [described["EndpointConfigName"]]
    gone = run(server, "endpoints", "describe", "dev-loop")
    assert gone.exit_code == 1 and gone.stderr.startswith("Error: ValidationException: ")


def version_answered(server: InferqServer, endpoint: str) -> str:
    accepted = run(server, "invoke-endpoint-async", endpoint, "--body", "{}")
    location = json.loads(accepted.stdout)["OutputLocation"]
    waited = run(server, "wait", location, "--poll-interval", "0.1")
    assert waited.exit_code == 0, waited.output
    return str(json.loads(wait_for_object(server, location)["Body"].read())["version"])


def test_delete_asks_first(server: InferqServer) -> None:
    result = run(server, "endpoints", "delete", ENDPOINT, input="n\n")

    assert result.exit_code == 1
    assert "Delete endpoint(s) cli?" in result.stderr
    assert json.loads(run(server, "endpoints", "describe", ENDPOINT).stdout)["EndpointName"]


def test_deploy_failure_prints_the_failure_reason(server: InferqServer, tmp_path: Path) -> None:
    handler = tmp_path / "broken.py"
    handler.write_text("def model_fn(model_dir):\n    raise RuntimeError('weights missing')\n")

    result = run(
        server, "deploy", str(handler), "--name", "broken", "--delay", "0.2", "--timeout", "60"
    )

    assert result.exit_code == 1
    assert "Error: EndpointNotInService: broken is Failed: " in result.stderr
    assert "raised RuntimeError: weights missing" in result.stderr


def test_round_trip_in_three_commands(server: InferqServer, tmp_path: Path) -> None:
    """deploy, invoke-endpoint-async --upload, wait --download: real processes, real pipes."""
    model, inputs, results = tmp_path / "sentiment", tmp_path / "inputs", tmp_path / "results"
    model.mkdir()
    (model / "inference.py").write_text(BEHAVING)
    inputs.mkdir()
    for n in range(5):
        (inputs / f"doc{n}.json").write_text(json.dumps({"text": f"document {n}"}))
    base = [sys.executable, "-m", "inferq"]
    url = ["--endpoint-url", server.url]

    deploy = subprocess.run(
        [*base, "deploy", str(model), *url, "--delay", "0.2"],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    invoke = subprocess.run(
        [
            *base,
            "invoke-endpoint-async",
            "sentiment",
            "--upload",
            str(inputs),
            "--upload-prefix",
            "s3://sentiment/in/",
            "--content-type",
            "application/json",
            *url,
        ],
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    wait = subprocess.run(
        [*base, "wait", "--download", str(results), "--poll-interval", "0.2", *url],
        input=invoke.stdout,
        env=server.cli_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert deploy.returncode == 0, deploy.stderr
    assert invoke.returncode == 0, invoke.stderr
    assert wait.returncode == 0, wait.stderr
    assert sorted(p.name for p in results.iterdir()) == [f"doc{n}.json.out" for n in range(5)]
    for n in range(5):
        answer = json.loads((results / f"doc{n}.json.out").read_text())
        assert answer["echo"] == {"text": f"document {n}"}
