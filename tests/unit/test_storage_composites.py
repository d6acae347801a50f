"""Composite objects of ``LocalObjectStore``: multipart completion that refers to the parts."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import hashlib
import os
import resource
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from inferq.aws import errors
from inferq.errors import StorageError
from inferq.storage import composites, files, rules
from inferq.storage.base import PutOptions
from inferq.storage.local import LocalObjectStore

MiB = 1024 * 1024
BUCKET = "composite-bucket"
DAY = 24 * 3600


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
async def store(tmp_path: Path) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "root")
    await store.create_bucket(BUCKET)
    return store


def bucket_dir(store: LocalObjectStore) -> Path:
    return store.root / "buckets" / BUCKET


def composite_dirs(store: LocalObjectStore) -> list[Path]:
    directory = bucket_dir(store) / "composites"
    return sorted(directory.iterdir()) if directory.exists() else []


def object_file(store: LocalObjectStore, key: str) -> Path:
    return bucket_dir(store) / "objects" / hashlib.sha256(key.encode()).hexdigest()


def parts_of(size: int = 5 * MiB) -> list[bytes]:
    return [os.urandom(size), os.urandom(size), b"tail"]


async def complete(store: LocalObjectStore, key: str, parts: list[bytes]) -> str:
    upload_id = await store.create_multipart(BUCKET, key, PutOptions())
    etags = []
    for number, data in enumerate(parts, start=1):
        part = await store.upload_part(BUCKET, key, upload_id, number, chunks(data))
        etags.append((number, part.etag))
    info = await store.complete_multipart(BUCKET, key, upload_id, etags)
    return info.etag


async def read(store: LocalObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    _, body = await store.get_object(BUCKET, key, start, end)
    return b"".join([chunk async for chunk in body])


def open_composite_fds() -> int:
    fds = Path("/proc/self/fd").iterdir()
    return sum("/composites/" in os.readlink(fd) for fd in fds if fd.exists())


async def test_completion_moves_no_bytes(store: LocalObjectStore) -> None:
    parts = parts_of()
    upload_id = await store.create_multipart(BUCKET, "k", PutOptions())
    inodes = []
    for number, data in enumerate(parts, start=1):
        await store.upload_part(BUCKET, "k", upload_id, number, chunks(data))
        part_file = bucket_dir(store) / "uploads" / upload_id / f"{number:05d}"
        inodes.append(part_file.stat().st_ino)
    listed = await store.list_parts(BUCKET, "k", upload_id)
    await store.complete_multipart(BUCKET, "k", upload_id, [(p.number, p.etag) for p in listed])
    [directory] = composite_dirs(store)
    assert [path.stat().st_ino for path in sorted(directory.iterdir())] == inodes
    assert directory.name.startswith(object_file(store, "k").name + "-")
    record, content_size = files.read_record(files.open_for_read(object_file(store, "k")))
    assert content_size == 0
    assert record["parts"] == [["00001", 5 * MiB], ["00002", 5 * MiB], ["00003", 4]]
    assert not (bucket_dir(store) / "uploads" / upload_id).exists()
    assert list((store.root / "tmp").iterdir()) == []


async def test_replacing_or_deleting_removes_the_parts(store: LocalObjectStore) -> None:
    await complete(store, "k", parts_of())
    [first] = composite_dirs(store)
    await complete(store, "k", parts_of())
    [second] = composite_dirs(store)
    assert second != first
    await store.put_object(BUCKET, "k", chunks(b"simple"), PutOptions())
    assert composite_dirs(store) == []
    await complete(store, "k", parts_of())
    await store.delete_object(BUCKET, "k")
    assert composite_dirs(store) == []
    assert trash(store) == []  # no reader: removed at once
    await store.delete_bucket(BUCKET)


async def test_a_reader_keeps_the_version_it_opened(store: LocalObjectStore) -> None:
    old = parts_of()
    await complete(store, "k", old)
    _, whole = await store.get_object(BUCKET, "k")
    _, ranged = await store.get_object(BUCKET, "k", 5 * MiB - 2, 5 * MiB + 1)
    first_chunk = await anext(whole)
    await complete(store, "k", parts_of())
    await store.put_object(BUCKET, "k", chunks(b"new"), PutOptions())
    await store.delete_object(BUCKET, "k")
    assert composite_dirs(store) == []
    assert len(trash(store)) == 1  # the first version's parts, until its readers are done
    rest = b"".join([chunk async for chunk in whole])
    assert first_chunk + rest == b"".join(old)
    assert len(trash(store)) == 1
    assert b"".join([chunk async for chunk in ranged]) == old[0][-2:] + old[1][:2]
    assert trash(store) == []


async def test_a_read_holds_one_part_open_at_a_time(store: LocalObjectStore) -> None:
    await complete(store, "k", parts_of())
    _, body = await store.get_object(BUCKET, "k", 5 * MiB + 1, 5 * MiB + 10)
    assert open_composite_fds() == 2  # the directory and the one part
    await files.aclose(body)
    assert open_composite_fds() == 0
    _, body = await store.get_object(BUCKET, "k")
    assert open_composite_fds() == 2
    async for _ in body:
        assert open_composite_fds() <= 2
    assert open_composite_fds() == 0


@contextlib.contextmanager
def soft_open_file_limit(limit: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def install_composite(store: LocalObjectStore, key: str, parts: list[bytes]) -> None:
    """A composite object of any number of parts, however small, built on disk directly (the
    store's checks want 5 MiB parts); part files hold only content, which is all a read uses."""
    name = composites.new_directory_name(files.object_name(key))
    directory = bucket_dir(store) / "composites" / name
    directory.mkdir()
    for number, data in enumerate(parts, start=1):
        (directory / f"{number:05d}").write_bytes(data)
    composite = composites.Composite(
        name, tuple((f"{n:05d}", len(p)) for n, p in enumerate(parts, 1))
    )
    info = rules.new_object_info(
        BUCKET, key, size=composite.size, etag=f'"x-{len(parts)}"', options=PutOptions()
    )
    spool = files.Spool(store.root / "tmp")
    spool.seal({**files.object_record(info), **composite.record()})
    os.replace(spool.path, object_file(store, key))


async def test_thousands_of_parts_under_a_low_open_file_limit(store: LocalObjectStore) -> None:
    parts = [bytes([number % 256]) for number in range(3000)]
    install_composite(store, "many", parts)
    with soft_open_file_limit(256):
        _, body = await store.get_object(BUCKET, "many")
        chunks_read = []
        most = 0
        async for chunk in body:
            chunks_read.append(chunk)
            most = max(most, open_composite_fds())
        assert b"".join(chunks_read) == b"".join(parts)
        assert most <= 2
        assert await read(store, "many", 1000, 1999) == b"".join(parts[1000:2000])
    assert open_composite_fds() == 0


async def test_a_retired_directory_goes_with_its_last_reader(store: LocalObjectStore) -> None:
    await complete(store, "k", parts_of())
    _, finished = await store.get_object(BUCKET, "k")
    _, closed = await store.get_object(BUCKET, "k", 0, 9)
    _, dropped = await store.get_object(BUCKET, "k", 5 * MiB, None)
    await store.delete_object(BUCKET, "k")
    assert composite_dirs(store) == []
    await store.delete_bucket(BUCKET)  # the parts are out of the bucket already
    [doomed] = trash(store)
    await files.aclose(closed)
    assert len(b"".join([chunk async for chunk in finished])) == 10 * MiB + 4
    assert trash(store) == [doomed]
    with store._state.lock:  # the body's last resort runs where the lock is held: no deadlock
        del dropped
        gc.collect()
    await wait_for(lambda: trash(store) == [])


async def test_a_retired_directory_without_readers_goes_at_once(store: LocalObjectStore) -> None:
    await complete(store, "k", parts_of())
    _, body = await store.get_object(BUCKET, "k")
    await files.aclose(body)
    await complete(store, "k", parts_of())
    assert len(composite_dirs(store)) == 1
    assert trash(store) == []


async def test_a_retired_directory_in_use_outlives_a_start_up_sweep(
    store: LocalObjectStore,
) -> None:
    parts = parts_of()
    await complete(store, "k", parts)
    [directory] = composite_dirs(store)
    old = time.time() - 2 * DAY
    os.utime(directory, (old, old))  # completed long ago
    _, body = await store.get_object(BUCKET, "k")
    await store.delete_object(BUCKET, "k")
    LocalObjectStore(store.root)  # sweeps tmp/ for what a crash left
    assert b"".join([chunk async for chunk in body]) == b"".join(parts)
    assert trash(store) == []


async def test_reads_racing_replaces_each_see_one_whole_version(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "MIN_PART_SIZE", 1)  # small parts: many versions, quickly
    versions = [[bytes([version, part]) * 500 for part in range(4)] for version in range(8)]
    await complete(store, "k", versions[0])
    whole = {b"".join(parts) for parts in versions}
    writing = True

    async def replace() -> None:
        nonlocal writing
        for parts in versions[1:]:
            await complete(store, "k", parts)
        writing = False

    async def reader() -> int:
        reads = 0
        while writing:
            assert await read(store, "k") in whole
            reads += 1
        return reads

    *reads, _ = await asyncio.gather(*(reader() for _ in range(4)), replace())
    assert sum(reads) > 0
    assert len(composite_dirs(store)) == 1
    assert trash(store) == []


def trash(store: LocalObjectStore) -> list[Path]:
    return sorted((store.root / "tmp").iterdir())


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - a file system condition, no event to wait on
            await asyncio.sleep(0.01)


async def test_a_replace_between_record_and_parts_is_retried(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await complete(store, "k", parts_of())
    new = parts_of()
    open_version = store._open_version
    calls = 0

    def replacing_open_version(*args: object) -> object:
        nonlocal calls
        calls += 1
        found = open_version(*args)  # type: ignore[arg-type]
        if calls == 1:  # the old record is read; now the object changes under the reader
            asyncio.run(complete(store, "k", new))  # runs in the reader's worker thread
        return found

    monkeypatch.setattr(store, "_open_version", replacing_open_version)
    assert await read(store, "k") == b"".join(new)
    assert calls == 2


async def test_missing_parts_are_an_error_not_a_loop(store: LocalObjectStore) -> None:
    await complete(store, "k", parts_of())
    [directory] = composite_dirs(store)
    (directory / "00002").unlink()
    with pytest.raises(StorageError, match="missing"):
        await store.get_object(BUCKET, "k", 5 * MiB)
    _, body = await store.get_object(BUCKET, "k")  # opens a part only once it gets there
    with pytest.raises(StorageError, match="missing"):
        [chunk async for chunk in body]
    assert (await store.head_object(BUCKET, "k")).size == 10 * MiB + 4
    assert await read(store, "k", 0, 9) != b""  # the parts still there still serve
    assert open_composite_fds() == 0


async def test_a_failed_completion_keeps_the_upload(store: LocalObjectStore) -> None:
    upload_id = await store.create_multipart(BUCKET, "k", PutOptions())
    small = await store.upload_part(BUCKET, "k", upload_id, 1, chunks(b"small"))
    last = await store.upload_part(BUCKET, "k", upload_id, 2, chunks(b"last"))
    requested = [(1, small.etag), (2, last.etag)]
    with pytest.raises(errors.EntityTooSmall):
        await store.complete_multipart(BUCKET, "k", upload_id, requested)
    with pytest.raises(errors.InvalidPart):
        await store.complete_multipart(BUCKET, "k", upload_id, [(1, small.etag), (3, "x")])
    assert composite_dirs(store) == []
    await store.complete_multipart(BUCKET, "k", upload_id, [(2, last.etag)])
    assert await read(store, "k") == b"last"


async def test_buckets_from_before_composites(store: LocalObjectStore) -> None:
    (bucket_dir(store) / "composites").rmdir()
    parts = parts_of()
    await complete(store, "k", parts)
    assert await read(store, "k") == b"".join(parts)


async def test_without_hard_links_completion_copies(
    store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "hard links not supported")

    monkeypatch.setattr(composites.os, "link", no_links)
    parts = parts_of()
    etag = await complete(store, "k", parts)
    assert etag.endswith('-3"')
    assert composite_dirs(store) == []
    assert object_file(store, "k").stat().st_size > 10 * MiB
    assert await read(store, "k") == b"".join(parts)


async def test_startup_removes_only_old_orphan_composites(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    await store.create_bucket(BUCKET)
    await complete(store, "live", parts_of(5 * MiB))
    [live] = composite_dirs(store)
    orphans = []
    for key in ("live", "gone"):  # a stale version of a live key, a key never installed
        orphan = live.parent / composites.new_directory_name(object_file(store, key).name)
        orphan.mkdir()
        (orphan / "00001").write_bytes(b"x")
        orphans.append(orphan)
    young = live.parent / composites.new_directory_name(object_file(store, "young").name)
    young.mkdir()
    foreign = live.parent / "not-a-composite"
    foreign.mkdir()
    old = time.time() - 2 * DAY
    for directory in (live, *orphans, foreign):
        os.utime(directory, (old, old))
    del store
    gc.collect()

    again = LocalObjectStore(tmp_path)
    assert composite_dirs(again) == sorted([live, young, foreign])
    _, body = await again.get_object(BUCKET, "live")
    assert len(b"".join([chunk async for chunk in body])) == 10 * MiB + 4
