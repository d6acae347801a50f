"""The cmdlet's ``-ClientConfig`` as options: retries, retry mode and timeouts."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from tests.client.cli import invoke_async
from tests.client.recorder import Recorded, Reply, accepted, recording_server

from inferq.client.session import ConnectionOptions, client_config


def failing(recorded: Recorded) -> Reply:
    return Reply(500, b'{"message": "busy"}', (("x-amzn-ErrorType", "InternalFailure"),))


def invoke(url: str, *args: str) -> tuple[int, str]:
    result = invoke_async(url, *args)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("attempts", [1, 3])
def test_max_attempts(attempts: int) -> None:
    with recording_server(failing) as recorder:
        code, stderr = invoke(recorder.url, "--max-attempts", str(attempts))

    assert code == 1
    assert "Error: InternalFailure: busy" in stderr
    assert len(recorder.requests) == attempts


@pytest.mark.parametrize(
    ("mode", "header"), [("standard", "attempt=1; max=2"), ("legacy", "attempt=1")]
)
def test_retry_mode_and_attempts_reach_botocore(mode: str, header: str) -> None:
    with recording_server() as recorder:
        invoke(recorder.url, "--retry-mode", mode, "--max-attempts", "2")

    assert recorder.requests[0].header("amz-sdk-request") == header
    assert f"cfg/retry-mode#{mode}" in (recorder.requests[0].header("User-Agent") or "")


@pytest.mark.parametrize("option", ["--read-timeout", "--read-write-timeout"])
def test_read_timeout(option: str) -> None:
    def slow(recorded: Recorded) -> Reply:
        reply = accepted(recorded)
        return Reply(reply.status, reply.body, reply.headers, delay=1.0)

    with recording_server(slow) as recorder:
        code, stderr = invoke(recorder.url, option, "0.2", "--max-attempts", "1")

    assert code == 1
    assert "Error: ReadTimeoutError: Read timeout on endpoint URL" in stderr


def test_connect_timeout_reaches_botocore() -> None:
    config = client_config(ConnectionOptions(connect_timeout=2.5, read_timeout=7), "s3")

    assert (config.connect_timeout, config.read_timeout) == (2.5, 7)
    assert config.retries is None


def test_timeouts_on_the_command_line_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: list[Config] = []
    create_client = botocore.session.Session.create_client

    def recording(self: object, *args: object, **kwargs: Any) -> object:
        configs.append(kwargs["config"])
        return create_client(self, *args, **kwargs)

    monkeypatch.setattr(botocore.session.Session, "create_client", recording)
    with recording_server() as recorder:
        invoke(recorder.url, "--connect-timeout", "2.5", "--read-timeout", "9")

    assert [(c.connect_timeout, c.read_timeout) for c in configs] == [(2.5, 9)]


def test_s3_uses_path_style_with_an_endpoint_url() -> None:
    with_url = client_config(ConnectionOptions(endpoint_url="http://x"), "s3")
    without = client_config(ConnectionOptions(), "s3")

    assert with_url.s3 == {"addressing_style": "path"}
    assert without.s3 is None
