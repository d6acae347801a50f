"""Where results of an invocation go: decided at accept time, returned in the 202."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    key: str

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Split ``s3://bucket/key`` (or ``https://host/bucket/key`` path-style, ``https://
        bucket.s3...amazonaws.com/key`` virtual-hosted) into bucket and key."""
        scheme, _, rest = uri.partition("://")
        if scheme == "s3":
            bucket, _, key = rest.partition("/")
            return cls(bucket, key)
        host, _, path = rest.partition("/")
        if ".s3" in host and host.endswith(".amazonaws.com"):
            return cls(host.split(".s3", 1)[0], path)
        bucket, _, key = path.partition("/")
        return cls(bucket, key)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def join(base: str, *parts: str | None) -> str:
    """Join an S3 path and names with exactly one ``/`` between them."""
    stripped = (part.strip("/") for part in parts if part)
    return "/".join([base.rstrip("/"), *(part for part in stripped if part)])


def output_location(
    output_path: str, job_id: str, extension: str | None, filename: str | None
) -> str:
    return join(output_path, extension, filename or f"{job_id}.out")


def failure_location(
    failure_path: str | None, job_id: str, extension: str | None, filename: str | None
) -> str | None:
    """``<S3FailurePath>[/<ext>]/<name>-error.out``: the name is the job's UUID, or the stem of
    a caller-chosen Filename so both results of one request are easy to pair."""
    if not failure_path:
        return None
    stem = filename.rsplit(".", 1)[0] if filename else job_id
    return join(failure_path, extension, f"{stem}-error.out")
