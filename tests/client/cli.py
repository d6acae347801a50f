"""Running ``inferq`` in-process with click's CliRunner."""

from __future__ import annotations

import json
from typing import Any

from click.testing import CliRunner, Result

from inferq.cli import main

INPUT = "s3://bucket/in/input.json"


def inferq(*args: str, input: str | bytes | None = None, **env: str) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env or None, prog_name="inferq")


def json_lines(result: Result) -> list[Any]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def invoke_async(
    url: str, *args: str, endpoint: str = "ep", location: str = INPUT, input: str | None = None
) -> Result:
    """``inferq invoke-endpoint-async ENDPOINT --input-location LOCATION --endpoint-url URL``"""
    base = ("invoke-endpoint-async", endpoint, "--input-location", location)
    return inferq(*base, "--endpoint-url", url, *args, input=input)
