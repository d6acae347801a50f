"""One contract for every ObjectStore backend: what S3 clients and the dispatcher rely on."""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from inferq.aws import errors
from inferq.errors import ConfigError
from inferq.storage.base import ObjectStore, PutOptions
from inferq.storage.local import LocalObjectStore
from inferq.storage.memory import MemoryObjectStore
from inferq.storage.registry import open_store

MiB = 1024 * 1024
BUCKET = "contract-bucket"


@pytest.fixture
def memory_store() -> MemoryObjectStore:
    return MemoryObjectStore()


@pytest.fixture
def local_store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "root")


@pytest.fixture(params=["memory", "local"])
async def store(request: pytest.FixtureRequest) -> ObjectStore:
    backend: ObjectStore = request.getfixturevalue(f"{request.param}_store")
    await backend.create_bucket(BUCKET)
    return backend


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def put(store: ObjectStore, key: str, data: bytes = b"x", **options: object) -> str:
    info = await store.put_object(BUCKET, key, chunks(data), PutOptions(**options))  # type: ignore[arg-type]
    return info.etag


async def read(store: ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    _, body = await store.get_object(BUCKET, key, start, end)
    return b"".join([chunk async for chunk in body])


async def all_keys(store: ObjectStore, **kwargs: object) -> list[str]:
    listing = await store.list_objects(BUCKET, **kwargs)  # type: ignore[arg-type]
    return [info.key for info in listing.objects]


# --- buckets ---------------------------------------------------------------------------------


async def test_bucket_lifecycle(store: ObjectStore) -> None:
    await store.create_bucket("second.bucket-2")
    assert [b.name for b in await store.list_buckets()] == [BUCKET, "second.bucket-2"]
    assert (await store.head_bucket("second.bucket-2")).name == "second.bucket-2"
    with pytest.raises(errors.BucketAlreadyOwnedByYou):
        await store.create_bucket(BUCKET)
    await store.delete_bucket("second.bucket-2")
    with pytest.raises(errors.NoSuchBucket):
        await store.head_bucket("second.bucket-2")
    with pytest.raises(errors.NoSuchBucket):
        await store.delete_bucket("second.bucket-2")


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "a" * 64,
        "UPPER",
        "under_score",
        "-dash",
        "dot.",
        "a..b",
        "192.168.0.1",
        "../x",
        "a/b",
        "xn--abc",
        "a.-b",
        "",
    ],
)
async def test_invalid_bucket_names(store: ObjectStore, name: str) -> None:
    with pytest.raises(errors.InvalidBucketName):
        await store.create_bucket(name)


async def test_only_an_empty_bucket_can_be_deleted(store: ObjectStore) -> None:
    await put(store, "k")
    with pytest.raises(errors.BucketNotEmpty):
        await store.delete_bucket(BUCKET)
    await store.delete_object(BUCKET, "k")
    await store.delete_bucket(BUCKET)
    assert await store.list_buckets() == []


async def test_missing_bucket(store: ObjectStore) -> None:
    with pytest.raises(errors.NoSuchBucket):
        await store.put_object("nope-bucket", "k", chunks(b"x"), PutOptions())
    for call in (
        store.head_object("nope-bucket", "k"),
        store.get_object("nope-bucket", "k"),
        store.delete_object("nope-bucket", "k"),
        store.list_objects("nope-bucket"),
        store.create_multipart("nope-bucket", "k", PutOptions()),
    ):
        with pytest.raises(errors.NoSuchBucket):
            await call


# --- objects ---------------------------------------------------------------------------------


async def test_put_get_head_round_trip(store: ObjectStore) -> None:
    data = os.urandom(3 * MiB + 17)
    options = PutOptions(
        content_type="text/csv",
        metadata={"origin": "test"},
        checksums={"CRC32": "AAAAAA=="},
        headers={"content-encoding": "gzip", "cache-control": "no-cache"},
    )
    info = await store.put_object(BUCKET, "dir/file.csv", chunks(data[:5], data[5:]), options)
    assert info.etag == f'"{hashlib.md5(data).hexdigest()}"'
    assert info.size == len(data)
    head = await store.head_object(BUCKET, "dir/file.csv")
    assert head == info
    assert (head.content_type, head.metadata, head.checksums, head.headers) == (
        "text/csv",
        {"origin": "test"},
        {"CRC32": "AAAAAA=="},
        {"content-encoding": "gzip", "cache-control": "no-cache"},
    )
    assert await read(store, "dir/file.csv") == data


async def test_defaults_and_overwrite(store: ObjectStore) -> None:
    await put(store, "k", b"old", metadata={"v": "1"})
    await put(store, "k", b"new")
    head = await store.head_object(BUCKET, "k")
    assert (head.content_type, head.metadata, head.size) == ("binary/octet-stream", {}, 3)
    assert await read(store, "k") == b"new"


async def test_empty_object(store: ObjectStore) -> None:
    etag = await put(store, "empty", b"")
    assert etag == '"d41d8cd98f00b204e9800998ecf8427e"'
    assert await read(store, "empty") == b""


async def test_checksums_known_only_at_the_end_are_stored(store: ObjectStore) -> None:
    options = PutOptions()

    async def body_with_trailer() -> AsyncIterator[bytes]:
        yield b"payload"
        options.checksums["CRC32"] = "trailer=="  # as the SigV4 layer does with trailers

    await store.put_object(BUCKET, "k", body_with_trailer(), options)
    assert (await store.head_object(BUCKET, "k")).checksums == {"CRC32": "trailer=="}


async def test_missing_key(store: ObjectStore) -> None:
    with pytest.raises(errors.NoSuchKey):
        await store.head_object(BUCKET, "missing")
    with pytest.raises(errors.NoSuchKey):
        await store.get_object(BUCKET, "missing")
    await store.delete_object(BUCKET, "missing")  # not an error, as in S3


async def test_delete(store: ObjectStore) -> None:
    await put(store, "k")
    await store.delete_object(BUCKET, "k")
    with pytest.raises(errors.NoSuchKey):
        await store.head_object(BUCKET, "k")
    assert await all_keys(store) == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, b"0123456789"),
        (0, 0, b"0"),
        (2, 5, b"2345"),
        (7, None, b"789"),
        (8, 100, b"89"),
        (9, 9, b"9"),
    ],
)
async def test_ranges(store: ObjectStore, start: int, end: int | None, expected: bytes) -> None:
    await put(store, "digits", b"0123456789")
    assert await read(store, "digits", start, end) == expected


@pytest.mark.parametrize(("start", "end"), [(10, None), (10, 12), (5, 4)])
async def test_unsatisfiable_ranges(store: ObjectStore, start: int, end: int | None) -> None:
    await put(store, "digits", b"0123456789")
    with pytest.raises(errors.InvalidRange):
        await store.get_object(BUCKET, "digits", start, end)


async def test_range_across_read_chunks(store: ObjectStore) -> None:
    data = os.urandom(2 * MiB + 10)
    await put(store, "big", data)
    assert await read(store, "big", MiB - 3, 2 * MiB + 4) == data[MiB - 3 : 2 * MiB + 5]


async def test_failing_body_leaves_nothing(store: ObjectStore, tmp_path: Path) -> None:
    await put(store, "k", b"old")

    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(2 * MiB)
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.put_object(BUCKET, "k", broken(), PutOptions())
    with pytest.raises(ConnectionResetError):
        await store.put_object(BUCKET, "new", broken(), PutOptions())
    assert await read(store, "k") == b"old"
    assert await all_keys(store) == ["k"]
    if isinstance(store, LocalObjectStore):
        assert list((store.root / "tmp").iterdir()) == []


# --- keys --------------------------------------------------------------------------------------

TRICKY_KEYS = [
    "a/b",
    "a//b",
    "a/",
    "a",
    "/a",
    "a/./b",
    "a/../b",
    "../../etc/passwd",
    "a/../../b",
    ".",
    "..",
    "/etc/passwd",
    "nul\x00byte",
    "sp ace+plus%25",
    "ünï/cödé/😀",
    "k" * 1024,
    "é" * 512,
    "a\\b",
    "CON",
    "\n",
]


async def test_tricky_keys_are_distinct_and_contained(store: ObjectStore, tmp_path: Path) -> None:
    for number, key in enumerate(TRICKY_KEYS):
        await put(store, key, str(number).encode())
    for number, key in enumerate(TRICKY_KEYS):
        assert await read(store, key) == str(number).encode()
    assert await all_keys(store) == sorted(TRICKY_KEYS)
    if isinstance(store, LocalObjectStore):
        assert {path.name for path in tmp_path.iterdir()} == {"root"}
        assert not any(path.is_symlink() for path in tmp_path.rglob("*"))


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", errors.InvalidArgument),
        ("k" * 1025, errors.KeyTooLongError),
        ("é" * 513, errors.KeyTooLongError),
        ("\ud800", errors.InvalidArgument),
    ],
)
async def test_invalid_keys(store: ObjectStore, key: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        await put(store, key)


# --- listings ----------------------------------------------------------------------------------


async def test_listing_is_in_utf8_order(store: ObjectStore) -> None:
    keys = ["b", "a", "\ufffd", "😀", "é", "z", "A", "a/b", "a b"]
    for key in keys:
        await put(store, key)
    assert await all_keys(store) == sorted(keys, key=lambda k: k.encode())


async def test_prefix_and_delimiter(store: ObjectStore) -> None:
    for key in [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
        "photos/2025/c.jpg",
        "photos/x.jpg",
        "photosynthesis.txt",
        "readme",
        "photos/",
    ]:
        await put(store, key)
    listing = await store.list_objects(BUCKET, delimiter="/")
    assert [o.key for o in listing.objects] == ["photosynthesis.txt", "readme"]
    assert listing.common_prefixes == ["photos/"]
    listing = await store.list_objects(BUCKET, prefix="photos/", delimiter="/")
    assert [o.key for o in listing.objects] == ["photos/", "photos/x.jpg"]
    assert listing.common_prefixes == ["photos/2024/", "photos/2025/"]
    assert await all_keys(store, prefix="photos/2024/") == [
        "photos/2024/a.jpg",
        "photos/2024/b.jpg",
    ]
    listing = await store.list_objects(BUCKET, prefix="photos/20", delimiter="4")
    assert listing.common_prefixes == ["photos/2024"]
    assert [o.key for o in listing.objects] == ["photos/2025/c.jpg"]


async def test_pagination_with_common_prefixes(store: ObjectStore) -> None:
    for key in ["a/1", "a/2", "b", "c/1", "c/2", "d"]:
        await put(store, key)
    seen: list[str] = []
    after = ""
    while True:
        page = await store.list_objects(BUCKET, delimiter="/", after=after, max_keys=1)
        seen += [o.key for o in page.objects] + page.common_prefixes
        if not page.is_truncated:
            break
        assert page.next_marker is not None
        after = page.next_marker
    assert seen == ["a/", "b", "c/", "d"]


async def test_pagination_of_many_keys(store: ObjectStore) -> None:
    keys = [f"k/{n:05d}" for n in range(2500)]
    for key in keys:
        await put(store, key, b"")
    seen: list[str] = []
    after = ""
    while True:
        page = await store.list_objects(BUCKET, prefix="k/", after=after, max_keys=1000)
        seen += [o.key for o in page.objects]
        if not page.is_truncated:
            break
        after = page.next_marker or ""
    assert seen == keys
    assert (await store.list_objects(BUCKET, max_keys=0)).objects == []


async def test_listing_reports_what_head_reports(store: ObjectStore) -> None:
    await put(store, "k", b"abc", content_type="text/plain")
    [listed] = (await store.list_objects(BUCKET)).objects
    assert listed == await store.head_object(BUCKET, "k")


# --- copy --------------------------------------------------------------------------------------


async def test_copy_keeps_or_replaces_metadata(store: ObjectStore) -> None:
    await store.create_bucket("other-bucket")
    etag = await put(store, "src", b"content", content_type="text/plain", metadata={"a": "1"})
    copied = await store.copy_object(BUCKET, "src", "other-bucket", "dst", None)
    assert (copied.etag, copied.content_type, copied.metadata) == (etag, "text/plain", {"a": "1"})
    replaced = await store.copy_object(
        BUCKET, "src", BUCKET, "src", PutOptions(content_type="x/y", metadata={"b": "2"})
    )
    assert (replaced.content_type, replaced.metadata) == ("x/y", {"b": "2"})
    _, body = await store.get_object("other-bucket", "dst")
    assert b"".join([c async for c in body]) == b"content"


async def test_copy_errors(store: ObjectStore) -> None:
    await put(store, "src")
    with pytest.raises(errors.NoSuchKey):
        await store.copy_object(BUCKET, "missing", BUCKET, "dst", None)
    with pytest.raises(errors.NoSuchBucket):
        await store.copy_object(BUCKET, "src", "nope-bucket", "dst", None)


# --- multipart ---------------------------------------------------------------------------------


async def upload(store: ObjectStore, key: str, *parts: bytes) -> tuple[str, list[str]]:
    upload_id = await store.create_multipart(BUCKET, key, PutOptions(content_type="a/b"))
    etags = []
    for number, data in enumerate(parts, start=1):
        etags.append((await store.upload_part(BUCKET, key, upload_id, number, chunks(data))).etag)
    return upload_id, etags


async def test_multipart_upload(store: ObjectStore) -> None:
    parts = [os.urandom(5 * MiB), os.urandom(5 * MiB + 1), b"tail"]
    upload_id, etags = await upload(store, "big", *parts)
    listed = await store.list_parts(BUCKET, "big", upload_id)
    assert [(p.number, p.size, p.etag) for p in listed] == [
        (n, len(d), e) for n, (d, e) in enumerate(zip(parts, etags, strict=True), start=1)
    ]
    info = await store.complete_multipart(BUCKET, "big", upload_id, list(enumerate(etags, 1)))
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    assert info.etag == f'"{hashlib.md5(digests).hexdigest()}-3"'
    assert (info.size, info.content_type) == (sum(map(len, parts)), "a/b")
    assert await read(store, "big") == b"".join(parts)
    assert await store.head_object(BUCKET, "big") == info
    with pytest.raises(errors.NoSuchUpload):
        await store.list_parts(BUCKET, "big", upload_id)


async def test_multipart_may_skip_and_replace_parts(store: ObjectStore) -> None:
    upload_id, _ = await upload(store, "k", b"first", os.urandom(5 * MiB), b"x")
    replaced = await store.upload_part(BUCKET, "k", upload_id, 3, chunks(b"third"))
    info = await store.complete_multipart(BUCKET, "k", upload_id, [(3, replaced.etag)])
    assert info.etag.endswith('-1"')
    assert await read(store, "k") == b"third"


async def test_multipart_rules(store: ObjectStore) -> None:
    upload_id, etags = await upload(store, "k", b"small", b"last")
    with pytest.raises(errors.EntityTooSmall):
        await store.complete_multipart(BUCKET, "k", upload_id, [(1, etags[0]), (2, etags[1])])
    with pytest.raises(errors.InvalidPartOrder):
        await store.complete_multipart(BUCKET, "k", upload_id, [(2, etags[1]), (1, etags[0])])
    with pytest.raises(errors.InvalidPartOrder):
        await store.complete_multipart(BUCKET, "k", upload_id, [(1, etags[0]), (1, etags[0])])
    with pytest.raises(errors.InvalidPart):
        await store.complete_multipart(BUCKET, "k", upload_id, [(1, etags[1])])
    with pytest.raises(errors.InvalidPart):
        await store.complete_multipart(BUCKET, "k", upload_id, [(7, etags[0])])
    with pytest.raises(errors.MalformedXML):
        await store.complete_multipart(BUCKET, "k", upload_id, [])
    for number in (0, 10001):
        with pytest.raises(errors.InvalidArgument):
            await store.upload_part(BUCKET, "k", upload_id, number, chunks(b"x"))
    with pytest.raises(errors.NoSuchKey):
        await store.head_object(BUCKET, "k")


async def test_unknown_uploads(store: ObjectStore) -> None:
    upload_id, etags = await upload(store, "k", b"x")
    for bad_id in ("0" * 32, "../../buckets", "", upload_id.upper()):
        with pytest.raises(errors.NoSuchUpload):
            await store.upload_part(BUCKET, "k", bad_id, 1, chunks(b"x"))
    with pytest.raises(errors.NoSuchUpload):
        await store.list_parts(BUCKET, "other-key", upload_id)
    await store.abort_multipart(BUCKET, "k", upload_id)
    with pytest.raises(errors.NoSuchUpload):
        await store.complete_multipart(BUCKET, "k", upload_id, [(1, etags[0])])
    with pytest.raises(errors.NoSuchUpload):
        await store.abort_multipart(BUCKET, "k", upload_id)
    assert await all_keys(store) == []


async def completed(store: ObjectStore, key: str, *parts: bytes) -> str:
    upload_id, etags = await upload(store, key, *parts)
    info = await store.complete_multipart(BUCKET, key, upload_id, list(enumerate(etags, 1)))
    return info.etag


def four_parts() -> list[bytes]:
    return [os.urandom(5 * MiB), os.urandom(5 * MiB + 1), os.urandom(5 * MiB), b"tail!!!"]


def multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(part).digest() for part in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


async def test_multipart_object_reads_whole_and_in_ranges(store: ObjectStore) -> None:
    parts = four_parts()
    data = b"".join(parts)
    etag = await completed(store, "mp", *parts)
    assert etag == multipart_etag(parts)
    head = await store.head_object(BUCKET, "mp")
    assert (head.etag, head.size, head.content_type) == (etag, len(data), "a/b")
    assert (await store.list_objects(BUCKET)).objects == [head]
    assert await read(store, "mp") == data
    first, second, third = (sum(map(len, parts[:n])) for n in (1, 2, 3))  # where parts begin
    ranges = [
        (0, 0),  # the first byte
        (len(data) - 1, None),  # the last byte
        (len(data) - 1, len(data) + 100),
        (first - 1, first),  # across one boundary
        (first - 10, second + 10),  # over three parts
        (0, len(data) - 1),
        (first, second - 1),  # exactly one part
        (third, None),  # the short last part
        (len(data) - 12, None),  # a suffix over the last two parts
        (MiB - 3, 2 * MiB + 4),  # across read chunks inside one part
    ]
    for start, end in ranges:
        stop = None if end is None else end + 1
        assert await read(store, "mp", start, end) == data[start:stop], (start, end)
    with pytest.raises(errors.InvalidRange):
        await store.get_object(BUCKET, "mp", len(data))


async def test_multipart_object_overwritten_and_deleted(store: ObjectStore) -> None:
    await completed(store, "k", *four_parts())
    await put(store, "k", b"simple")
    assert await read(store, "k") == b"simple"
    parts = four_parts()
    await completed(store, "k", *parts)
    assert await read(store, "k") == b"".join(parts)
    parts = [os.urandom(5 * MiB), b"end"]
    etag = await completed(store, "k", *parts)
    assert await read(store, "k") == b"".join(parts)
    assert (await store.head_object(BUCKET, "k")).etag == etag
    await store.delete_object(BUCKET, "k")
    with pytest.raises(errors.NoSuchKey):
        await store.get_object(BUCKET, "k")
    assert await all_keys(store) == []
    await store.delete_bucket(BUCKET)


async def test_copy_of_a_multipart_object(store: ObjectStore) -> None:
    await store.create_bucket("other-bucket")
    parts = four_parts()
    data = b"".join(parts)
    await completed(store, "src", *parts)
    copied = await store.copy_object(BUCKET, "src", "other-bucket", "dst", None)
    # as S3's CopyObject: a copy made in one request has the MD5 of its bytes as its ETag
    assert (copied.etag, copied.size, copied.content_type) == (
        f'"{hashlib.md5(data).hexdigest()}"',
        len(data),
        "a/b",
    )
    await store.delete_object(BUCKET, "src")
    _, body = await store.get_object("other-bucket", "dst")
    assert b"".join([c async for c in body]) == data


# --- backend specifics -------------------------------------------------------------------------


async def test_local_store_reopens_from_disk(tmp_path: Path) -> None:
    first = LocalObjectStore(tmp_path)
    await first.create_bucket(BUCKET)
    await first.put_object(BUCKET, "a//b", chunks(b"data"), PutOptions(metadata={"m": "v"}))
    del first
    gc.collect()  # drop the shared index: the next store must rebuild it from the files
    again = open_store(f"file://{tmp_path}")
    assert [b.name for b in await again.list_buckets()] == [BUCKET]
    listing = await again.list_objects(BUCKET)
    assert [(o.key, o.metadata) for o in listing.objects] == [("a//b", {"m": "v"})]


async def test_local_stores_on_one_root_share_their_index(tmp_path: Path) -> None:
    first, second = LocalObjectStore(tmp_path), LocalObjectStore(tmp_path)
    await first.create_bucket(BUCKET)
    assert (await second.list_objects(BUCKET)).objects == []
    await first.put_object(BUCKET, "k", chunks(b""), PutOptions())
    assert [o.key for o in (await second.list_objects(BUCKET)).objects] == ["k"]


def test_open_store() -> None:
    assert isinstance(open_store("memory://"), MemoryObjectStore)
    with pytest.raises(ConfigError, match="unknown scheme 'ftp'"):
        open_store("ftp://host/x")
    with pytest.raises(ConfigError, match="absolute"):
        open_store("file://relative/path")


async def test_memory_store_inspection() -> None:
    store = MemoryObjectStore()
    await store.create_bucket(BUCKET)
    await store.put_object(BUCKET, "k", chunks(b"v"), PutOptions())
    assert store.objects == {(BUCKET, "k"): b"v"}
    store.reset()
    assert store.objects == {}
