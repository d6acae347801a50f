"""Where results go: the naming rules decided at accept time (``domain/locations.py``)."""

from __future__ import annotations

import pytest

from inferq.domain.locations import S3Location, failure_location, join, output_location

JOB = "2f4dcf85-3b5c-4d1e-9a57-0123456789ab"


@pytest.mark.parametrize(
    ("path", "extension", "filename", "expected"),
    [
        ("s3://b/out", None, None, f"s3://b/out/{JOB}.out"),
        ("s3://b/out/", None, None, f"s3://b/out/{JOB}.out"),
        ("s3://b", None, None, f"s3://b/{JOB}.out"),
        ("s3://b/out", "batch/7", None, f"s3://b/out/batch/7/{JOB}.out"),
        ("s3://b/out", "/batch/7/", None, f"s3://b/out/batch/7/{JOB}.out"),
        ("s3://b/out", "/", None, f"s3://b/out/{JOB}.out"),
        ("s3://b/out", None, "result.json", "s3://b/out/result.json"),
        ("s3://b/out", "x", "result", "s3://b/out/x/result"),
    ],
)
def test_output_location(
    path: str, extension: str | None, filename: str | None, expected: str
) -> None:
    assert output_location(path, JOB, extension, filename) == expected


@pytest.mark.parametrize(
    ("path", "extension", "filename", "expected"),
    [
        ("s3://b/failed", None, None, f"s3://b/failed/{JOB}-error.out"),
        ("s3://b/failed/", "batch/7", None, f"s3://b/failed/batch/7/{JOB}-error.out"),
        # a caller-chosen Filename names both results of a request alike
        ("s3://b/failed", None, "result.json", "s3://b/failed/result-error.out"),
        ("s3://b/failed", "x", "result", "s3://b/failed/x/result-error.out"),
        (None, "x", "result.json", None),
        ("", None, None, None),
    ],
)
def test_failure_location(
    path: str | None, extension: str | None, filename: str | None, expected: str | None
) -> None:
    assert failure_location(path, JOB, extension, filename) == expected


def test_output_and_failure_share_the_generated_name() -> None:
    output = output_location("s3://b/out", JOB, None, None)
    failure = failure_location("s3://b/failed", JOB, None, None)

    assert output.rsplit("/", 1)[1].removesuffix(".out") == JOB
    assert failure is not None and failure.rsplit("/", 1)[1] == f"{JOB}-error.out"


def test_join_puts_exactly_one_slash_between_parts() -> None:
    assert join("s3://b/a/", "/c/", None, "", "d") == "s3://b/a/c/d"


@pytest.mark.parametrize(
    ("uri", "bucket", "key"),
    [
        ("s3://bucket/a/b.json", "bucket", "a/b.json"),
        ("s3://bucket", "bucket", ""),
        ("https://bucket.s3.us-east-1.amazonaws.com/a/b.json", "bucket", "a/b.json"),
        ("https://s3.us-east-1.amazonaws.com/bucket/a/b.json", "bucket", "a/b.json"),
        ("https://inferq.example.com:8080/bucket/a", "bucket", "a"),
    ],
)
def test_parse(uri: str, bucket: str, key: str) -> None:
    location = S3Location.parse(uri)

    assert (location.bucket, location.key) == (bucket, key)
    assert location.uri == f"s3://{bucket}/{key}"
