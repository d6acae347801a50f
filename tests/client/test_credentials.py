"""Credentials and region as the cmdlets' common parameters, each under all its spellings,
and the standard AWS chain otherwise; every request's signature is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.client.cli import inferq, invoke_async
from tests.client.conftest import ENV_ACCESS_KEY, ENV_SECRET_KEY
from tests.client.recorder import RecordingServer, signature_is_valid

PROFILES = """\
[default]
aws_access_key_id = AKIDDEFAULTPROFILE01
aws_secret_access_key = default-profile-secret

[ci]
aws_access_key_id = AKIDCIPROFILE0000001
aws_secret_access_key = ci-profile-secret
aws_session_token = ci-session-token
"""


@pytest.fixture
def profiles(tmp_path: Path) -> Path:
    path = tmp_path / "my-credentials.ini"
    path.write_text(PROFILES)
    return path


def invoke(recorder: RecordingServer, *args: str) -> None:
    result = invoke_async(recorder.url, *args)
    assert result.exit_code == 0, result.output


def signed_by(recorder: RecordingServer, secret: str) -> tuple[str, str]:
    (request,) = recorder.requests
    assert signature_is_valid(request, secret, recorder.url)
    access_key, _, region, service, _ = request.credential_scope
    assert service == "sagemaker"
    return access_key, region


def test_the_environment_by_default(recorder: RecordingServer) -> None:
    invoke(recorder)

    assert signed_by(recorder, ENV_SECRET_KEY) == (ENV_ACCESS_KEY, "us-east-1")


@pytest.mark.parametrize(
    "option", ["--profile-location", "--aws-profiles-location", "--profiles-location"]
)
def test_profile_location_reads_its_default_profile_over_the_environment(
    recorder: RecordingServer, profiles: Path, option: str
) -> None:
    invoke(recorder, option, str(profiles))

    assert signed_by(recorder, "default-profile-secret")[0] == "AKIDDEFAULTPROFILE01"
    assert recorder.requests[0].header("X-Amz-Security-Token") is None


@pytest.mark.parametrize("option", ["--profile-name", "--stored-credentials", "--aws-profile-name"])
def test_a_named_profile_from_the_profile_location(
    recorder: RecordingServer, profiles: Path, option: str
) -> None:
    invoke(recorder, "--profile-location", str(profiles), option, "ci")

    assert signed_by(recorder, "ci-profile-secret")[0] == "AKIDCIPROFILE0000001"
    assert recorder.requests[0].header("X-Amz-Security-Token") == "ci-session-token"


def test_a_named_profile_from_the_shared_credentials_file(
    recorder: RecordingServer, profiles: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(profiles))

    invoke(recorder, "--profile-name", "ci")

    assert signed_by(recorder, "ci-profile-secret")[0] == "AKIDCIPROFILE0000001"


def test_an_unknown_profile_is_an_error(recorder: RecordingServer, profiles: Path) -> None:
    result = invoke_async(recorder.url, "--profile-location", str(profiles), "--profile-name", "x")

    assert result.exit_code == 1
    assert "Error: ProfileNotFound: The config profile (x) could not be found" in result.stderr
    assert recorder.requests == []


@pytest.mark.parametrize(
    "spelling",
    [
        ("--access-key", "--secret-key", "--session-token"),
        ("--ak", "--sk", "--st"),
        ("--access-key", "--secret-access-key", "--st"),
    ],
)
def test_keys_on_the_command_line_win(
    recorder: RecordingServer, profiles: Path, spelling: tuple[str, str, str]
) -> None:
    access, secret, token = spelling
    invoke(
        recorder,
        access,
        "AKIDCOMMANDLINE00001",
        secret,
        "command-line-secret",
        token,
        "tok",
        "--profile-location",
        str(profiles),
    )

    assert signed_by(recorder, "command-line-secret")[0] == "AKIDCOMMANDLINE00001"
    assert recorder.requests[0].header("X-Amz-Security-Token") == "tok"


@pytest.mark.parametrize("args", [("--access-key", "AKID"), ("--sk", "s"), ("--st", "t")])
def test_partial_keys_are_usage_errors(recorder: RecordingServer, args: tuple[str, str]) -> None:
    result = inferq("invoke-endpoint-async", "ep", "--input-location", "s3://b/k", *args)

    assert result.exit_code == 2
    assert recorder.requests == []


@pytest.mark.parametrize("option", ["--region", "--region-to-call"])
def test_region(recorder: RecordingServer, option: str) -> None:
    invoke(recorder, option, "eu-west-3")

    assert signed_by(recorder, ENV_SECRET_KEY)[1] == "eu-west-3"


@pytest.mark.parametrize("option", ["--signing-region", "--authentication-region"])
def test_signing_region(recorder: RecordingServer, option: str) -> None:
    invoke(recorder, "--region", "eu-west-3", option, "us-gov-west-1")

    assert signed_by(recorder, ENV_SECRET_KEY)[1] == "us-gov-west-1"


def test_no_region_anywhere_is_an_error(
    recorder: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")

    result = inferq("invoke-endpoint-async", "ep", "--input-location", "s3://b/k")

    assert result.exit_code == 1
    assert "Error: NoRegionError: You must specify a region." in result.stderr


def test_without_endpoint_url_it_goes_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    from inferq.client.session import Clients, ConnectionOptions

    runtime = Clients(ConnectionOptions(region="eu-west-1"))("sagemaker-runtime")

    assert runtime.meta.endpoint_url == "https://runtime.sagemaker.eu-west-1.amazonaws.com"
