"""The S3 API on a real uvicorn server, judged by unchanged clients: boto3 and the AWS CLI."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from tests.helpers.s3 import middleware_under_test, s3_client, serve_s3
from tests.helpers.server import ACCESS_KEY, SECRET_KEY, serve_in_thread

from inferq.api import s3http
from inferq.api.s3 import S3Api
from inferq.storage.base import ObjectInfo, PutOptions
from inferq.storage.local import LocalObjectStore

MiB = 1024 * 1024
AWS = str(Path(sys.executable).with_name("aws"))


@pytest.fixture(scope="module")
def endpoint(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[str]:
    with serve_s3(tmp_path_factory.mktemp("s3"), middleware_under_test(request)) as url:
        yield url


@pytest.fixture(scope="module")
def s3(endpoint: str) -> Any:
    return s3_client(endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


# --- buckets -----------------------------------------------------------------------------------


def test_bucket_lifecycle(s3: Any) -> None:
    s3.create_bucket(
        Bucket="life-cycle", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-cycle")
    assert s3.get_bucket_location(Bucket="life-cycle").get("LocationConstraint") is None
    assert "Status" not in s3.get_bucket_versioning(Bucket="life-cycle")
    with pytest.raises(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket="life-cycle")
    s3.put_object(Bucket="life-cycle", Key="k", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.delete_bucket(Bucket="life-cycle")
    assert error_code(raised) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle", Key="k")
    s3.delete_bucket(Bucket="life-cycle")
    with pytest.raises(ClientError) as raised:
        s3.head_bucket(Bucket="life-cycle")
    assert error_code(raised) == "404"
    with pytest.raises(ClientError) as raised:
        s3.create_bucket(Bucket="Bad_Name")
    assert error_code(raised) == "InvalidBucketName"


# --- objects -----------------------------------------------------------------------------------


def test_put_get_head_delete(s3: Any, bucket: str) -> None:
    data = b'{"a": 1}'
    put = s3.put_object(
        Bucket=bucket,
        Key="dir/data.json",
        Body=data,
        ContentType="application/json",
        Metadata={"origin": "tests", "run": "1"},
        CacheControl="no-cache",
        ContentDisposition="attachment",
        ServerSideEncryption="AES256",
    )
    assert put["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    assert put["ServerSideEncryption"] == "AES256"
    got = s3.get_object(Bucket=bucket, Key="dir/data.json")
    assert got["Body"].read() == data
    assert (got["ContentType"], got["Metadata"], got["CacheControl"]) == (
        "application/json",
        {"origin": "tests", "run": "1"},
        "no-cache",
    )
    assert (got["ContentDisposition"], got["ETag"], got["ContentLength"]) == (
        "attachment",
        put["ETag"],
        8,
    )
    head = s3.head_object(Bucket=bucket, Key="dir/data.json")
    assert (head["ContentLength"], head["AcceptRanges"], head["ETag"]) == (8, "bytes", put["ETag"])
    assert abs(time.time() - head["LastModified"].timestamp()) < 60
    s3.delete_object(Bucket=bucket, Key="dir/data.json")
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="dir/data.json")


def test_default_content_type_and_overrides(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentType"] == "binary/octet-stream"
    got = s3.get_object(
        Bucket=bucket,
        Key="k",
        ResponseContentType="text/plain",
        ResponseContentDisposition="inline",
    )
    assert (got["ContentType"], got["ContentDisposition"]) == ("text/plain", "inline")


def test_missing_things(s3: Any, bucket: str) -> None:
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket=bucket, Key="missing")
    with pytest.raises(ClientError) as raised:
        s3.head_object(Bucket=bucket, Key="missing")
    assert error_code(raised) == "404"
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.get_object(Bucket="no-such-bucket", Key="k")
    with pytest.raises(s3.exceptions.NoSuchBucket):
        s3.list_objects_v2(Bucket="no-such-bucket")


@pytest.mark.parametrize(
    ("header", "expected", "content_range"),
    [
        ("bytes=2-5", b"2345", "bytes 2-5/10"),
        ("bytes=7-", b"789", "bytes 7-9/10"),
        ("bytes=-3", b"789", "bytes 7-9/10"),
        ("bytes=-30", b"0123456789", "bytes 0-9/10"),
        ("bytes=8-100", b"89", "bytes 8-9/10"),
    ],
)
def test_ranges(s3: Any, bucket: str, header: str, expected: bytes, content_range: str) -> None:
    s3.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")
    got = s3.get_object(Bucket=bucket, Key="digits", Range=header)
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert (got["Body"].read(), got["ContentRange"]) == (expected, content_range)


def test_unsatisfiable_and_ignored_ranges(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="digits", Body=b"0123456789")
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="digits", Range="bytes=10-")
    assert (error_code(raised), raised.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "InvalidRange",
        416,
    )
    whole = s3.get_object(Bucket=bucket, Key="digits", Range="bytes=0-1,4-5")
    assert whole["Body"].read() == b"0123456789"


def test_conditional_requests(s3: Any, bucket: str) -> None:
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"x")["ETag"]
    assert s3.get_object(Bucket=bucket, Key="k", IfMatch=etag)["Body"].read() == b"x"
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="k", IfMatch='"0000"')
    assert error_code(raised) == "PreconditionFailed"
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    assert error_code(raised) == "304"
    with pytest.raises(ClientError) as raised:
        s3.head_object(Bucket=bucket, Key="k", IfModifiedSince=time.time() + 3600)
    assert error_code(raised) == "304"


TRICKY_KEYS = [
    "with space",
    "plus+sign",
    "per%cent",
    "a//b",
    "a/b",
    "trailing/",
    "ünï/😀",
    "question?mark",
    "hash#tag",
    "tilde~",
    "amp&er=sand",
    "/leading",
    "a/./b",
]


def test_tricky_keys_round_trip(s3: Any, bucket: str) -> None:
    for key in TRICKY_KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    for key in TRICKY_KEYS:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(TRICKY_KEYS, key=str.encode)
    listed_v1 = [o["Key"] for o in s3.list_objects(Bucket=bucket)["Contents"]]
    assert listed_v1 == listed


# --- listings ----------------------------------------------------------------------------------


def test_list_v2_pagination_and_delimiters(s3: Any, bucket: str) -> None:
    keys = [f"logs/{day:02d}/{n}.txt" for day in range(1, 4) for n in range(7)]
    keys += ["logs/top.txt", "readme", "x+y z"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 4}
        )
    )
    assert len(pages) == 6  # 24 keys
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == sorted(keys)
    assert all(p["KeyCount"] <= 4 for p in pages)
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="logs/", Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
    assert prefixes == ["logs/01/", "logs/02/", "logs/03/"]
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == ["logs/top.txt"]
    started = s3.list_objects_v2(Bucket=bucket, StartAfter="logs/03/6.txt")
    assert [o["Key"] for o in started["Contents"]] == ["logs/top.txt", "readme", "x+y z"]
    pages_v1 = list(
        s3.get_paginator("list_objects").paginate(Bucket=bucket, PaginationConfig={"PageSize": 5})
    )
    assert [o["Key"] for p in pages_v1 for o in p.get("Contents", [])] == sorted(keys)


def test_bad_continuation_token(s3: Any, bucket: str) -> None:
    with pytest.raises(ClientError) as raised:
        s3.list_objects_v2(Bucket=bucket, ContinuationToken="%%%")
    assert error_code(raised) == "InvalidArgument"


# --- copy, delete, waiters ---------------------------------------------------------------------


def test_copy_object(s3: Any, bucket: str) -> None:
    s3.put_object(
        Bucket=bucket,
        Key="src dir/a+b",
        Body=b"data",
        ContentType="text/plain",
        Metadata={"m": "1"},
    )
    copied = s3.copy_object(
        Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "src dir/a+b"}
    )
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"data").hexdigest()}"'
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"m": "1"})
    s3.copy_object(
        Bucket=bucket,
        Key="dst",
        CopySource=f"{bucket}/src dir/a+b",
        MetadataDirective="REPLACE",
        ContentType="x/y",
        Metadata={"n": "2"},
    )
    head = s3.head_object(Bucket=bucket, Key="dst")
    assert (head["ContentType"], head["Metadata"]) == ("x/y", {"n": "2"})
    with pytest.raises(ClientError) as raised:
        s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket, "Key": "dst"})
    assert error_code(raised) == "InvalidRequest"
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.copy_object(Bucket=bucket, Key="x", CopySource={"Bucket": bucket, "Key": "nope"})


def test_delete_objects(s3: Any, bucket: str) -> None:
    for key in ("a", "b", "c d"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    result = s3.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "c d"}, {"Key": "never-existed"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["a", "c d", "never-existed"]
    assert "Errors" not in result
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "b"}], "Quiet": True})
    assert "Deleted" not in quiet
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_waiters(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="ready", Body=b"x")
    s3.get_waiter("object_exists").wait(
        Bucket=bucket, Key="ready", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    s3.delete_object(Bucket=bucket, Key="ready")
    s3.get_waiter("object_not_exists").wait(
        Bucket=bucket, Key="ready", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    s3.get_waiter("bucket_exists").wait(Bucket=bucket, WaiterConfig={"Delay": 1, "MaxAttempts": 2})


# --- multipart ---------------------------------------------------------------------------------


def test_multipart_by_hand(s3: Any, bucket: str) -> None:
    upload = s3.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="a/b")
    upload_id = upload["UploadId"]
    first, second = os.urandom(5 * MiB), b"tail"
    etags = [
        s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=n, Body=data)["ETag"]
        for n, data in ((1, first), (2, second))
    ]
    parts = s3.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["Size"], p["ETag"]) for p in parts] == [
        (1, 5 * MiB, etags[0]),
        (2, 4, etags[1]),
    ]
    with pytest.raises(ClientError) as raised:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]},
        )
    assert error_code(raised) == "InvalidPart"
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]},
    )
    assert done["ETag"].endswith('-2"')
    got = s3.get_object(Bucket=bucket, Key="mp")
    assert (got["Body"].read(), got["ContentType"]) == (first + second, "a/b")
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)


def test_multipart_rules_and_part_copy(s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="source", Body=b"0123456789")
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    small = s3.upload_part(
        Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"small"
    )["ETag"]
    copied = s3.upload_part_copy(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        PartNumber=2,
        CopySource={"Bucket": bucket, "Key": "source"},
        CopySourceRange="bytes=2-4",
    )["CopyPartResult"]["ETag"]
    with pytest.raises(ClientError) as raised:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": copied}]
            },
        )
    assert error_code(raised) == "EntityTooSmall"
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": copied}]},
    )
    assert s3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"234"
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    s3.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=upload_id)
    with pytest.raises(s3.exceptions.NoSuchUpload):
        s3.list_parts(Bucket=bucket, Key="gone", UploadId=upload_id)


def test_slow_completion_keeps_the_connection_alive(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its patience the server answers 200 at once and sends the outcome later, errors
    included, as S3 does; botocore reads an <Error> in a 200 as a failure."""
    monkeypatch.setattr(s3http, "PATIENCE_SECONDS", 0.0)
    monkeypatch.setattr(s3http, "KEEPALIVE_SECONDS", 0.001)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    etag = s3.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"only")[
        "ETag"
    ]
    with pytest.raises(ClientError) as raised:
        s3.complete_multipart_upload(
            Bucket=bucket,
            Key="mp",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": etag}]},
        )
    assert error_code(raised) == "InvalidPart"
    done = s3.complete_multipart_upload(
        Bucket=bucket,
        Key="mp",
        UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]},
    )
    assert done["Key"] == "mp"
    copied = s3.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "mp"})
    assert copied["CopyObjectResult"]["ETag"] == f'"{hashlib.md5(b"only").hexdigest()}"'


def test_transfer_manager_multipart(s3: Any, bucket: str, tmp_path: Path) -> None:
    source, target = tmp_path / "in.bin", tmp_path / "out.bin"
    source.write_bytes(os.urandom(20 * MiB))
    config = TransferConfig(
        multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, max_concurrency=4
    )
    s3.upload_file(str(source), bucket, "big/file.bin", Config=config)
    head = s3.head_object(Bucket=bucket, Key="big/file.bin")
    assert (head["ContentLength"], head["ETag"][-3:]) == (20 * MiB, '-4"')
    s3.download_file(bucket, "big/file.bin", str(target), Config=config)
    assert target.read_bytes() == source.read_bytes()


# --- AWS CLI -----------------------------------------------------------------------------------


def aws(endpoint: str, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }
    done = subprocess.run(
        [AWS, "--endpoint-url", endpoint, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_aws_cli(endpoint: str, bucket: str, tmp_path: Path) -> None:
    small, large = tmp_path / "small.txt", tmp_path / "large.bin"
    small.write_text("hello cli")
    large.write_bytes(os.urandom(12 * MiB))
    aws(endpoint, "s3", "cp", str(small), f"s3://{bucket}/cli/small file.txt")
    aws(endpoint, "s3", "cp", str(large), f"s3://{bucket}/cli/large.bin")
    listing = aws(endpoint, "s3", "ls", f"s3://{bucket}/cli/")
    assert "small file.txt" in listing
    assert str(12 * MiB) in listing
    assert bucket in aws(endpoint, "s3", "ls")
    head = aws(endpoint, "s3api", "head-object", "--bucket", bucket, "--key", "cli/large.bin")
    assert '"ContentLength": 12582912' in head
    aws(endpoint, "s3", "cp", f"s3://{bucket}/cli/large.bin", str(tmp_path / "back.bin"))
    aws(endpoint, "s3", "cp", f"s3://{bucket}/cli/small file.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.bin").read_bytes() == large.read_bytes()
    assert (tmp_path / "back.txt").read_text() == "hello cli"


# --- memory ------------------------------------------------------------------------------------


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.mark.slow
def test_200_mb_object_streams_through_bounded_memory(s3: Any, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "200mb.bin"
    block = os.urandom(MiB)
    with source.open("wb") as file:
        for _ in range(200):
            file.write(block)
    expected = hashlib.md5(block * 200).hexdigest()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
    before = peak_rss_kib()
    with source.open("rb") as file:
        s3.put_object(Bucket=bucket, Key="big", Body=file)
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=bucket, Key="big")["Body"].iter_chunks(MiB):
        digest.update(chunk)
    assert digest.hexdigest() == expected
    grown = peak_rss_kib() - before
    print(f"peak RSS grew by {grown} KiB")
    assert grown < 64 * 1024


class ReplacedAfterHead(LocalObjectStore):
    """Replaces ``digits`` right after every HEAD of it, ``times`` times: the race between the
    HEAD that sizes a suffix range and the GET that reads it."""

    def __init__(self, root: Path, times: int) -> None:
        super().__init__(root)
        self.times = times

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        info = await super().head_object(bucket, key)
        if key == "digits" and self.times > 0:
            self.times -= 1
            body = b"abcdefghijklmnop" if info.size == 10 else b"0123456789"
            await self.put_object(bucket, key, _once(body), PutOptions())
        return info


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.mark.parametrize("replacements", [1, 1000])
def test_a_suffix_range_comes_from_one_version_of_an_object_being_replaced(
    tmp_path: Path, replacements: int
) -> None:
    store = ReplacedAfterHead(tmp_path, times=0)
    with serve_in_thread(S3Api(store)) as url:
        client = s3_client(url)
        client.create_bucket(Bucket="suffix-race")
        client.put_object(Bucket="suffix-race", Key="digits", Body=b"0123456789")
        store.times = replacements
        if replacements == 1:  # replaced once: the suffix is worked out again on the new one
            got = client.get_object(Bucket="suffix-race", Key="digits", Range="bytes=-3")
            assert (got["Body"].read(), got["ContentRange"]) == (b"nop", "bytes 13-15/16")
            return
        with pytest.raises(ClientError) as raised:  # replaced every time: retry later
            client.get_object(Bucket="suffix-race", Key="digits", Range="bytes=-3")
        assert error_code(raised) == "SlowDown"
        assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
