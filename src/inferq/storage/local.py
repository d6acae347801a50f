"""LocalObjectStore: buckets and objects as files under one root directory (``file://``).

Layout under the root::

    tmp/                                        spools and staging; same filesystem as the rest
    buckets/<bucket>/bucket.json                creation time
    buckets/<bucket>/objects/<sha256 of key>    content + record (see ``inferq.storage.files``)
    buckets/<bucket>/uploads/<id>/upload.json   key and options of a multipart upload
    buckets/<bucket>/uploads/<id>/<part:05d>    part content + record

Keys never become paths: a file is named by the SHA-256 of its key and the key lives in the
file's record, so ``a//b``, ``a/``, ``../x`` or a 1024-byte key are all just names. Bucket names
and upload ids are validated before they touch a path. Listings come from an in-memory sorted
index per bucket, built from the files on first use; a root must therefore be written by one
process only (stores opened on the same root within a process share their index).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
import weakref
from pathlib import Path
from urllib.parse import unquote, urlsplit

from inferq.aws import errors
from inferq.errors import ConfigError, StorageError
from inferq.storage import files, rules
from inferq.storage.base import Body, BucketInfo, Listing, ObjectInfo, PartInfo, PutOptions

log = logging.getLogger("inferq.storage")

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[0-9]{5}")
_STALE_SPOOL_SECONDS = 24 * 3600


class _SharedState:
    """What every store on one root shares: the lock that orders renames with index updates."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.indexes: dict[str, rules.KeyIndex] = {}
        self.dir_syncs: dict[str, files.DirSync] = {}

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
            state = _STATES[root] = _SharedState()
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
        try:
            await files.fill(spool, files.prepend(head, body))
            return await asyncio.to_thread(self._commit_object, spool, bucket, key, options)
        except BaseException:
            spool.discard()
            raise

    def _put_whole(self, bucket: str, key: str, data: bytes, options: PutOptions) -> ObjectInfo:
        """A small object in one thread hop: no bucket check up front (the rename's ENOENT is
        ``NoSuchBucket``), string paths, one grouped directory fsync. ``_install`` validates the
        bucket name before it touches a path."""
        spool = files.Spool(self._tmp_str)
        try:
            spool.write(data)
            info = rules.new_object_info(
                bucket, key, size=spool.size, etag=spool.etag, options=options
            )
            spool.seal(files.object_record(info))
            self._install(spool.path, info)
        except BaseException:
            spool.discard()
            raise
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
        target = f"{directory}/{hashlib.sha256(info.key.encode()).hexdigest()}"
        with self._state.lock:
            try:
                os.replace(path, target)
            except FileNotFoundError:
                raise errors.NoSuchBucket(BucketName=info.bucket) from None
            if (index := self._state.indexes.get(info.bucket)) is not None:
                index.put(info)
        self._state.dir_sync(directory).sync()

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        fd, info, _ = await asyncio.to_thread(self._open_object, bucket, key)
        files.close(fd)
        return info

    async def get_object(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, Body]:
        fd, info, size = await asyncio.to_thread(self._open_object, bucket, key)
        try:
            first, last = rules.resolve_range(size, start, end)
        except BaseException:
            files.close(fd)
            raise
        return info, files.FileBody(fd, first, last + 1)

    def _open_object(self, bucket: str, key: str) -> tuple[int, ObjectInfo, int]:
        rules.validate_key(key)
        try:
            fd = files.open_for_read(self._object_path(bucket, key))
        except FileNotFoundError:
            self._bucket_info(bucket)
            raise errors.NoSuchKey(Key=key) from None
        try:
            record, size = files.read_record(fd)
        except BaseException:
            files.close(fd)
            raise
        return fd, files.object_from_record(bucket, record), size

    async def delete_object(self, bucket: str, key: str) -> None:
        rules.validate_key(key)
        await asyncio.to_thread(self._delete_object, bucket, key)

    def _delete_object(self, bucket: str, key: str) -> None:
        path = self._object_path(bucket, key)
        with self._state.lock:
            if not path.parent.is_dir():
                raise errors.NoSuchBucket(BucketName=bucket)
            path.unlink(missing_ok=True)
            if (index := self._state.indexes.get(bucket)) is not None:
                index.remove(key)
        files.fsync_dir(path.parent)

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

    # --- multipart -------------------------------------------------------------------------

    async def create_multipart(self, bucket: str, key: str, options: PutOptions) -> str:
        rules.validate_key(key)
        return await asyncio.to_thread(self._create_upload, bucket, key, options)

    def _create_upload(self, bucket: str, key: str, options: PutOptions) -> str:
        upload_id = uuid.uuid4().hex
        staging = self._tmp / upload_id
        staging.mkdir()
        record = {"key": key, "options": files.options_record(options)}
        files.write_json_durably(staging / "upload.json", record)
        try:
            staging.rename(self._bucket_dir(bucket) / "uploads" / upload_id)
        except FileNotFoundError:
            shutil.rmtree(staging)
            raise errors.NoSuchBucket(BucketName=bucket) from None
        return upload_id

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: Body
    ) -> PartInfo:
        rules.validate_part_number(number)
        spool = await asyncio.to_thread(self._spool_for_part, bucket, key, upload_id)
        directory = self._upload_dir(bucket, upload_id)
        try:
            await files.fill(spool, body)
            return await asyncio.to_thread(self._commit_part, spool, directory, number, upload_id)
        except BaseException:
            spool.discard()
            raise

    def _spool_for_part(self, bucket: str, key: str, upload_id: str) -> files.Spool:
        self._upload_record(bucket, key, upload_id)
        return files.Spool(self._tmp_str)

    def _commit_part(
        self, spool: files.Spool, directory: Path, number: int, upload_id: str
    ) -> PartInfo:
        part = PartInfo(number=number, size=spool.size, etag=spool.etag, last_modified=rules.now())
        spool.seal(files.part_record(part))
        try:
            os.replace(spool.path, directory / f"{number:05d}")
        except FileNotFoundError:
            raise errors.NoSuchUpload(UploadId=upload_id) from None
        files.fsync_dir(directory)
        return part

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        return await asyncio.to_thread(self._list_parts, bucket, key, upload_id)

    def _list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        self._upload_record(bucket, key, upload_id)
        directory = self._upload_dir(bucket, upload_id)
        paths = sorted(path for path in directory.iterdir() if _PART_FILE.fullmatch(path.name))
        return [files.part_from_record(files.read_record_at(path)) for path in paths]

    async def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._complete, bucket, key, upload_id, parts)

    def _complete(
        self, bucket: str, key: str, upload_id: str, requested: list[tuple[int, str]]
    ) -> ObjectInfo:
        record = self._upload_record(bucket, key, upload_id)
        options = files.options_from_record(record["options"])
        directory = self._upload_dir(bucket, upload_id)
        chosen = rules.select_parts(requested, self._stored_parts(directory, requested))
        spool = files.Spool(self._tmp_str)
        try:
            for part in chosen:
                spool.append_file(directory / f"{part.number:05d}", part.size)
            etag = rules.multipart_etag(part.etag for part in chosen)
            info = rules.new_object_info(bucket, key, size=spool.size, etag=etag, options=options)
            spool.seal(files.object_record(info))
            self._install(spool.path, info)
        except BaseException:
            spool.discard()
            raise
        shutil.rmtree(directory, ignore_errors=True)
        return info

    def _stored_parts(
        self, directory: Path, requested: list[tuple[int, str]]
    ) -> dict[int, PartInfo]:
        paths = {
            number: directory / f"{number:05d}"
            for number, _ in requested
            if 1 <= number <= rules.MAX_PART_NUMBER
        }
        return {
            number: files.part_from_record(files.read_record_at(path))
            for number, path in paths.items()
            if path.is_file()
        }

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        await asyncio.to_thread(self._abort, bucket, key, upload_id)

    def _abort(self, bucket: str, key: str, upload_id: str) -> None:
        self._upload_record(bucket, key, upload_id)
        directory = self._upload_dir(bucket, upload_id)
        trash = self._tmp / uuid.uuid4().hex
        try:
            directory.rename(trash)
        except FileNotFoundError:
            raise errors.NoSuchUpload(UploadId=upload_id) from None
        shutil.rmtree(trash)

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise errors.NoSuchUpload(UploadId=upload_id)
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _upload_record(self, bucket: str, key: str, upload_id: str) -> files.Record:
        try:
            record = files.read_json(self._upload_dir(bucket, upload_id) / "upload.json")
        except FileNotFoundError:
            self._bucket_info(bucket)
            raise errors.NoSuchUpload(UploadId=upload_id) from None
        if record["key"] != key:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return record

    async def close(self) -> None:
        return None

    # --- paths -----------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        rules.validate_bucket_name(bucket)
        return self._buckets / bucket

    def _objects_dir(self, bucket: str) -> Path:
        return self._bucket_dir(bucket) / "objects"

    def _object_path(self, bucket: str, key: str) -> Path:
        return self._objects_dir(bucket) / hashlib.sha256(key.encode()).hexdigest()


def _object_at(bucket: str, path: Path) -> ObjectInfo | None:
    try:
        return files.object_from_record(bucket, files.read_record_at(path))
    except (StorageError, ValueError, KeyError, TypeError):
        log.warning("foreign_file_skipped", extra={"path": str(path)})
        return None


def _remove_stale(directory: Path) -> None:
    """Drop spools and staging left by a crash; recent ones may belong to a live store."""
    cutoff = time.time() - _STALE_SPOOL_SECONDS
    for entry in directory.iterdir():
        if entry.stat().st_mtime < cutoff:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
