"""Every client command shows an example in its --help; shell completion is available."""

from __future__ import annotations

import pytest
from tests.client.cli import inferq

COMMANDS = [
    ["invoke-endpoint-async"],
    ["wait"],
    ["deploy"],
    ["endpoints"],
    ["endpoints", "list"],
    ["endpoints", "describe"],
    ["endpoints", "delete"],
    ["completion"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_an_example(command: list[str]) -> None:
    result = inferq(*command, "--help")

    assert result.exit_code == 0
    assert "Examples:\n  " in result.stdout
    assert f"inferq {command[0]}" in result.stdout.split("Examples:")[1]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = inferq("completion", shell)

    assert result.exit_code == 0
    assert "_INFERQ_COMPLETE" in result.stdout


def test_completion_completes_commands_and_options() -> None:
    words = inferq(**env_complete("inferq invoke-"))
    options = inferq(**env_complete("inferq invoke-endpoint-async --prof"))

    assert "plain,invoke-endpoint-async" in words.stdout
    assert "plain,--profile-name" in options.stdout
    assert "plain,--profile-location" in options.stdout


def env_complete(line: str) -> dict[str, str]:
    return {
        "_INFERQ_COMPLETE": "bash_complete",
        "COMP_WORDS": line,
        "COMP_CWORD": str(len(line.split()) - 1),
    }
