"""An S3Api over a LocalObjectStore on a real server, and boto3 clients for it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.client import Config
from tests.helpers.server import ACCESS_KEY, SECRET_KEY, serve_in_thread

from inferq.api.s3 import S3Api
from inferq.storage.local import LocalObjectStore

ASGIApp = Callable[..., Any]
Middleware = Callable[[ASGIApp], ASGIApp]


def middleware_under_test(request: pytest.FixtureRequest) -> Middleware | None:
    """What a module- or session-scoped ``s3_middleware`` fixture returns, if a conftest.py
    defines one (e.g. SigV4 verification accepting ACCESS_KEY/SECRET_KEY); else None."""
    try:
        middleware: Middleware | None = request.getfixturevalue("s3_middleware")
    except pytest.FixtureLookupError:
        return None
    return middleware


def serve_s3(root: Path, middleware: Middleware | None = None) -> AbstractContextManager[str]:
    """Serve ``S3Api(LocalObjectStore(root))``, wrapped in ``middleware``; yields the URL."""
    app: ASGIApp = S3Api(LocalObjectStore(root))
    return serve_in_thread(middleware(app) if middleware else app)


def s3_client(url: str) -> Any:
    """A boto3 S3 client as users configure one for a local endpoint (no retries)."""
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
