"""LocalObjectStore: buckets and objects as files under one root directory (``file://``).

Layout under the root::

    tmp/                                        spools and staging; same filesystem as the rest
    buckets/<bucket>/bucket.json                creation time
    buckets/<bucket>/objects/<sha256 of key>    content + record (see ``inferq.storage.files``)
    buckets/<bucket>/uploads/<id>/upload.json   key and options of a multipart upload
    buckets/<bucket>/uploads/<id>/<part:05d>    part content + record
    buckets/<bucket>/composites/<name>/<part:05d>
                                                the parts of a completed multipart upload, which
                                                its object file names (see ``composites``)

Keys never become paths: a file is named by the SHA-256 of its key and the key lives in the
file's record, so ``a//b``, ``a/``, ``../x`` or a 1024-byte key are all just names. Bucket names
and upload ids are validated before they touch a path. Listings come from an in-memory sorted
index per bucket, built from the files on first use; a root must therefore be written by one
process only (stores opened on the same root within a process share their index).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
import uuid
import weakref
from pathlib import Path
from urllib.parse import unquote, urlsplit

from inferq.aws import errors
from inferq.errors import ConfigError, StorageError
from inferq.storage import composites, files, multipart, rules
from inferq.storage.base import Body, BucketInfo, Listing, ObjectInfo, PartInfo, PutOptions

log = logging.getLogger("inferq.storage")

_STALE_SPOOL_SECONDS = 24 * 3600
#: tries to open a composite object whose parts vanish under a concurrent replace
_OPEN_ATTEMPTS = 5


class _SharedState:
    """What every store on one root shares: the lock that orders renames with index updates,
    and the count of readers of each composite object's parts."""

    def __init__(self, root: Path) -> None:
        self.lock = threading.Lock()
        self.indexes: dict[str, rules.KeyIndex] = {}
        self.dir_syncs: dict[str, files.DirSync] = {}
        self.readers = composites.Readers(self.lock, root / "tmp")

    def dir_sync(self, directory: str) -> files.DirSync:
        """The group-commit fsync of ``directory``, shared by every store on this root."""
        sync = self.dir_syncs.get(directory)
        if sync is None:
            with self.lock:
                sync = self.dir_syncs.setdefault(directory, files.DirSync(directory))
        return sync


_STATES: weakref.WeakValueDictionary[Path, _SharedState] = weakref.WeakValueDictionary()
_STATES_LOCK = threading.Lock()


def _shared_state(root: Path) -> _SharedState:
    with _STATES_LOCK:
        state = _STATES.get(root)
        if state is None:
            state = _STATES[root] = _SharedState(root)
        return state


class LocalObjectStore:
    """Objects on the local filesystem; every blocking call runs in a worker thread."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._buckets = self.root / "buckets"
        self._tmp = self.root / "tmp"
        self._buckets.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(exist_ok=True)
        self._state = _shared_state(self.root)
        self._buckets_str = os.fspath(self._buckets)  # the put path uses strings, not pathlib
        self._tmp_str = os.fspath(self._tmp)
        _remove_stale(self._tmp)
        _remove_orphan_composites(self._buckets, self._state.readers)
        self._uploads = multipart.Uploads(
            self._buckets, self._tmp, self._install, self._state.dir_sync
        )

    @classmethod
    def from_url(cls, url: str) -> LocalObjectStore:
        parts = urlsplit(url)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigError(f"storage URL {url!r}: expected file:///absolute/path")
        return cls(Path(path))

    # --- buckets ---------------------------------------------------------------------------

    async def list_buckets(self) -> list[BucketInfo]:
        return await asyncio.to_thread(self._list_buckets)

    async def create_bucket(self, bucket: str) -> None:
        rules.validate_bucket_name(bucket)
        await asyncio.to_thread(self._create_bucket, bucket)

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return await asyncio.to_thread(self._bucket_info, bucket)

    async def delete_bucket(self, bucket: str) -> None:
        await asyncio.to_thread(self._delete_bucket, bucket)

    def _list_buckets(self) -> list[BucketInfo]:
        names = sorted(entry.name for entry in self._buckets.iterdir())
        return [self._bucket_info(name) for name in names]

    def _bucket_info(self, bucket: str) -> BucketInfo:
        try:
            record = files.read_json(self._bucket_dir(bucket) / "bucket.json")
        except FileNotFoundError:
            raise errors.NoSuchBucket(BucketName=bucket) from None
        return BucketInfo(name=bucket, created=rules.parse_time(record["created"]))

    def _create_bucket(self, bucket: str) -> None:
        staging = self._tmp / uuid.uuid4().hex
        (staging / "objects").mkdir(parents=True)
        (staging / "uploads").mkdir()
        (staging / "composites").mkdir()
        files.write_json_durably(staging / "bucket.json", {"created": rules.now().isoformat()})
        with self._state.lock:
            if self._bucket_dir(bucket).exists():
                shutil.rmtree(staging)
                raise errors.BucketAlreadyOwnedByYou(BucketName=bucket)
            staging.rename(self._bucket_dir(bucket))
            self._state.indexes[bucket] = rules.KeyIndex()
        files.fsync_dir(self._buckets)

    def _delete_bucket(self, bucket: str) -> None:
        trash = self._tmp / uuid.uuid4().hex
        with self._state.lock:
            if len(self._index(bucket)):
                raise errors.BucketNotEmpty(BucketName=bucket)
            self._bucket_dir(bucket).rename(trash)
            del self._state.indexes[bucket]
        files.fsync_dir(self._buckets)
        shutil.rmtree(trash)

    # --- objects ---------------------------------------------------------------------------

    async def put_object(
        self, bucket: str, key: str, body: Body, options: PutOptions
    ) -> ObjectInfo:
        rules.validate_key(key)
        head, exhausted = await files.read_head(body, rules.CHUNK_SIZE)
        if exhausted:  # small bodies (most results) cost one thread hop, not three
            return await asyncio.to_thread(self._put_whole, bucket, key, head, options)
        spool = await asyncio.to_thread(self._spool_for, bucket)
        with spool.discarded_on_error():
            await files.fill(spool, files.prepend(head, body))
            return await asyncio.to_thread(self._commit_object, spool, bucket, key, options)

    def _put_whole(self, bucket: str, key: str, data: bytes, options: PutOptions) -> ObjectInfo:
        """A small object in one thread hop: no bucket check up front (the rename's ENOENT is
        ``NoSuchBucket``), string paths, one grouped directory fsync. ``_install`` validates the
        bucket name before it touches a path."""
        with files.Spool(self._tmp_str).discarded_on_error() as spool:
            spool.write(data)
            info = rules.new_object_info(
                bucket, key, size=spool.size, etag=spool.etag, options=options
            )
            spool.seal(files.object_record(info))
            self._install(spool.path, info)
        return info

    def _spool_for(self, bucket: str) -> files.Spool:
        if not self._objects_dir(bucket).is_dir():
            raise errors.NoSuchBucket(BucketName=bucket)
        return files.Spool(self._tmp_str)

    def _commit_object(
        self, spool: files.Spool, bucket: str, key: str, options: PutOptions
    ) -> ObjectInfo:
        info = rules.new_object_info(bucket, key, size=spool.size, etag=spool.etag, options=options)
        spool.seal(files.object_record(info))
        self._install(spool.path, info)
        return info

    def _install(self, path: str, info: ObjectInfo) -> None:
        """Rename a sealed file into place; the index changes in the same critical section.

        Returns once the rename is durable: the directory's fsync is group-committed with the
        other puts into the same bucket (one fsync begun after this rename serves them all).
        """
        rules.validate_bucket_name(info.bucket)
        directory = f"{self._buckets_str}/{info.bucket}/objects"
        target = f"{directory}/{files.object_name(info.key)}"
        with self._state.lock:
            replaced = _open_if_present(target)
            try:
                os.replace(path, target)
            except FileNotFoundError:
                _close_if_open(replaced)
                raise errors.NoSuchBucket(BucketName=info.bucket) from None
            if (index := self._state.indexes.get(info.bucket)) is not None:
                index.put(info)
        try:
            self._state.dir_sync(directory).sync()
        except BaseException:
            _close_if_open(replaced)
            raise
        self._drop_composite_of(info.bucket, replaced)

    def _drop_composite_of(self, bucket: str, replaced: int) -> None:
        """Retire the parts of a replaced or deleted version (open on ``replaced``), if it was
        a composite; only once the change is durable, so a crash cannot bring it back without
        them. Readers of the parts keep reading them: the last one removes them."""
        if replaced < 0:
            return
        directory = composites.named_by_replaced(replaced)
        if directory is not None:
            self._state.readers.retire(self._composites_dir(bucket) / directory)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._head, bucket, key)

    def _head(self, bucket: str, key: str) -> ObjectInfo:
        fd = self._open_object_file(bucket, key)
        try:
            record, _ = files.read_record(fd)
        finally:
            files.close(fd)
        return files.object_from_record(bucket, record)

    async def get_object(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, Body]:
        return await asyncio.to_thread(self._open_object, bucket, key, start, end)

    def _open_object(
        self, bucket: str, key: str, start: int, end: int | None
    ) -> tuple[ObjectInfo, files.FileBody]:
        """Open the current version for reading bytes ``start..end``: the object file, or the
        parts of a composite that the range covers, one at a time as the stream reaches them."""
        missing: composites.Composite | None = None
        for _ in range(_OPEN_ATTEMPTS):
            info, body, composite, (first, stop) = self._open_version(bucket, key, start, end)
            if composite is None:
                return info, body
            if composite == missing:
                break  # the object still names parts that are gone: not a replace in flight
            parent = self._composites_dir(bucket)
            opened = self._state.readers.open(parent, composite, first, stop)
            if opened is not None:
                return info, opened
            missing = composite  # replaced since its record was read: read the new one
        raise StorageError(f"the parts of object {key!r} in bucket {bucket!r} are missing")

    def _open_version(
        self, bucket: str, key: str, start: int, end: int | None
    ) -> tuple[ObjectInfo, files.FileBody, composites.Composite | None, tuple[int, int]]:
        """The object's record and the range resolved; the body streams the object file unless
        the object is a composite (then it is empty and the file closed)."""
        fd = self._open_object_file(bucket, key)
        try:
            record, size = files.read_record(fd)
            info = files.object_from_record(bucket, record)
            composite = composites.of_record(record)
            first, last = rules.resolve_range(size if composite is None else info.size, start, end)
        except BaseException:
            files.close(fd)
            raise
        if composite is None:
            return info, files.FileBody([(fd, first, last + 1)]), None, (first, last + 1)
        files.close(fd)
        return info, files.FileBody([]), composite, (first, last + 1)

    def _open_object_file(self, bucket: str, key: str) -> int:
        rules.validate_key(key)
        try:
            return files.open_for_read(self._object_path(bucket, key))
        except FileNotFoundError:
            self._bucket_info(bucket)
            raise errors.NoSuchKey(Key=key) from None

    async def delete_object(self, bucket: str, key: str) -> None:
        rules.validate_key(key)
        await asyncio.to_thread(self._delete_object, bucket, key)

    def _delete_object(self, bucket: str, key: str) -> None:
        path = self._object_path(bucket, key)
        with self._state.lock:
            if not path.parent.is_dir():
                raise errors.NoSuchBucket(BucketName=bucket)
            deleted = _open_if_present(path)
            path.unlink(missing_ok=True)
            if (index := self._state.indexes.get(bucket)) is not None:
                index.remove(key)
        try:
            files.fsync_dir(path.parent)
        except BaseException:
            _close_if_open(deleted)
            raise
        self._drop_composite_of(bucket, deleted)

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> Listing:
        return await asyncio.to_thread(self._list, bucket, prefix, delimiter, after, max_keys)

    def _list(self, bucket: str, prefix: str, delimiter: str, after: str, limit: int) -> Listing:
        with self._state.lock:
            return self._index(bucket).list(prefix, delimiter, after, limit)

    def _index(self, bucket: str) -> rules.KeyIndex:
        """The bucket's index, built from its files on first use (caller holds the lock)."""
        index = self._state.indexes.get(bucket)
        if index is None:
            index = self._state.indexes[bucket] = rules.KeyIndex(self._scan(bucket))
        return index

    def _scan(self, bucket: str) -> list[ObjectInfo]:
        directory = self._objects_dir(bucket)
        if not directory.is_dir():
            raise errors.NoSuchBucket(BucketName=bucket)
        infos = (_object_at(bucket, path) for path in directory.iterdir())
        return [info for info in infos if info is not None]

    async def copy_object(
        self, src_bucket: str, src_key: str, bucket: str, key: str, options: PutOptions | None
    ) -> ObjectInfo:
        source, body = await self.get_object(src_bucket, src_key)
        try:
            return await self.put_object(bucket, key, body, options or rules.options_of(source))
        finally:
            await files.aclose(body)

    # --- multipart (see ``inferq.storage.multipart``) -------------------------------------

    async def create_multipart(self, bucket: str, key: str, options: PutOptions) -> str:
        return await self._uploads.create(bucket, key, options)

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: Body
    ) -> PartInfo:
        return await self._uploads.upload_part(bucket, key, upload_id, number, body)

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        return await self._uploads.list_parts(bucket, key, upload_id)

    async def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        return await self._uploads.complete(bucket, key, upload_id, parts)

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        await self._uploads.abort(bucket, key, upload_id)

    async def close(self) -> None:
        return None

    # --- paths -----------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        rules.validate_bucket_name(bucket)
        return self._buckets / bucket

    def _objects_dir(self, bucket: str) -> Path:
        return self._bucket_dir(bucket) / "objects"

    def _composites_dir(self, bucket: str) -> Path:
        return self._bucket_dir(bucket) / "composites"

    def _object_path(self, bucket: str, key: str) -> Path:
        return self._objects_dir(bucket) / files.object_name(key)


def _object_at(bucket: str, path: Path) -> ObjectInfo | None:
    try:
        return files.object_from_record(bucket, files.read_record_at(path))
    except (StorageError, ValueError, KeyError, TypeError):
        log.warning("foreign_file_skipped", extra={"path": str(path)})
        return None


def _open_if_present(path: str | Path) -> int:
    """A descriptor on the version about to be replaced or deleted, or -1 if there is none."""
    try:
        return files.open_for_read(path)
    except FileNotFoundError:
        return -1


def _close_if_open(fd: int) -> None:
    if fd >= 0:
        files.close(fd)


def _remove_orphan_composites(buckets: Path, readers: composites.Readers) -> None:
    cutoff = time.time() - _STALE_SPOOL_SECONDS
    for bucket in buckets.iterdir():
        composites.sweep(bucket, cutoff, readers)


def _remove_stale(directory: Path) -> None:
    """Drop spools and staging left by a crash; recent ones may belong to a live store."""
    cutoff = time.time() - _STALE_SPOOL_SECONDS
    for entry in directory.iterdir():
        if entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
