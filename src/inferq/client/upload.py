"""``--upload FILE|DIR``: local inputs to an S3 prefix, one object (and one request) per file."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from inferq.client.errors import InvalidInput
from inferq.client.pool import ordered_map
from inferq.client.progress import ProgressBar


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``."""
    if not uri.startswith("s3://"):
        raise InvalidInput(f"not an s3:// location: {uri!r}")
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise InvalidInput(f"no bucket in {uri!r}")
    return bucket, key


def input_files(path: Path) -> list[Path]:
    """The file itself, or every file under the folder (hidden ones left out), sorted."""
    if path.is_file():
        return [path]
    files = [
        p
        for p in sorted(path.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    ]
    if not files:
        raise InvalidInput(f"no files to upload in {path}")
    return files


def relative_name(file: Path, root: Path) -> str:
    return file.name if root.is_file() else file.relative_to(root).as_posix()


def location_for(prefix: str, name: str) -> str:
    bucket, key = split_s3_uri(prefix)
    folder = key.rstrip("/")
    return f"s3://{bucket}/{folder}/{name}" if folder else f"s3://{bucket}/{name}"


def content_type(file: Path) -> str:
    guessed, _ = mimetypes.guess_type(file.name)
    return guessed or "application/octet-stream"


def upload_file(s3: Any, file: Path, location: str) -> str:
    bucket, key = split_s3_uri(location)
    with file.open("rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type(file))
    return location


def upload_inputs(s3: Any, path: Path, prefix: str, *, workers: int, progress: bool) -> list[str]:
    """Upload, ``workers`` at a time; the S3 locations, in the order of ``input_files``."""
    files = input_files(path)
    targets = [(file, location_for(prefix, relative_name(file, path))) for file in files]
    bar = ProgressBar("upload", len(targets), enabled=progress and len(targets) > 1)

    def upload(target: tuple[Path, str]) -> str:
        location = upload_file(s3, *target)
        bar.update(done=1)
        return location

    try:
        return list(ordered_map(upload, targets, workers))
    finally:
        bar.close()
