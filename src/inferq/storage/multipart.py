"""Multipart uploads of ``LocalObjectStore``: parts under ``uploads/<id>/``, completed into a
composite object that refers to them (see ``inferq.storage.composites``), or by copying where the
filesystem has no hard links."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from inferq.aws import errors
from inferq.storage import composites, files, rules
from inferq.storage.base import Body, ObjectInfo, PartInfo, PutOptions

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"[0-9]{5}")

#: renames a sealed object file into place (``LocalObjectStore._install``)
Install = Callable[[str, ObjectInfo], None]
#: the shared group-commit fsync of a directory
DirSyncOf = Callable[[str], files.DirSync]


class Uploads:
    """The multipart uploads under ``buckets``; every blocking call runs in a worker thread."""

    def __init__(self, buckets: Path, tmp: Path, install: Install, dir_sync: DirSyncOf) -> None:
        self._buckets, self._tmp = buckets, tmp
        self._tmp_str = os.fspath(tmp)
        self._install, self._dir_sync = install, dir_sync

    async def create(self, bucket: str, key: str, options: PutOptions) -> str:
        rules.validate_key(key)
        return await asyncio.to_thread(self._create, bucket, key, options)

    def _create(self, bucket: str, key: str, options: PutOptions) -> str:
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
        with spool.discarded_on_error():
            await files.fill(spool, body)
            return await asyncio.to_thread(self._commit_part, spool, directory, number, upload_id)

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

    async def complete(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        return await asyncio.to_thread(self._complete, bucket, key, upload_id, parts)

    def _complete(
        self, bucket: str, key: str, upload_id: str, requested: list[tuple[int, str]]
    ) -> ObjectInfo:
        record = self._upload_record(bucket, key, upload_id)
        options = files.options_from_record(record["options"])
        directory = self._upload_dir(bucket, upload_id)
        try:
            info = self._complete_by_links(bucket, key, directory, requested, options)
        except composites.LinksUnsupported:
            info = self._complete_by_copy(bucket, key, directory, requested, options)
        shutil.rmtree(directory, ignore_errors=True)
        return info

    def _complete_by_links(
        self,
        bucket: str,
        key: str,
        upload: Path,
        requested: list[tuple[int, str]],
        options: PutOptions,
    ) -> ObjectInfo:
        """Complete in O(parts): hard-link the chosen parts into a new composite directory and
        install an object file that names them. The upload keeps its parts until the object is
        in place, so a completion that fails can be retried."""
        parent = self._make_composites_dir(bucket)
        name = composites.new_directory_name(files.object_name(key))
        numbers = {number for number, _ in requested if 1 <= number <= rules.MAX_PART_NUMBER}
        stored = composites.assemble(upload, parent / name, numbers)
        try:
            chosen = rules.select_parts(requested, stored)
            composite = composites.Composite.of_parts(name, chosen)
            etag = rules.multipart_etag(part.etag for part in chosen)
            info = rules.new_object_info(
                bucket, key, size=composite.size, etag=etag, options=options
            )
            files.fsync_dir(parent / name)
            self._dir_sync(os.fspath(parent)).sync()
            spool = self._sealed({**files.object_record(info), **composite.record()})
        except BaseException:
            composites.remove(parent / name)
            raise
        # on failure the parts stay: the object names them, or the sweep finds them
        with spool.discarded_on_error():
            self._install(spool.path, info)
        return info

    def _sealed(self, record: files.Record) -> files.Spool:
        """A spool holding only ``record``: the object file of a composite."""
        with files.Spool(self._tmp_str).discarded_on_error() as spool:
            spool.seal(record)
        return spool

    def _complete_by_copy(
        self,
        bucket: str,
        key: str,
        upload: Path,
        requested: list[tuple[int, str]],
        options: PutOptions,
    ) -> ObjectInfo:
        """Complete in O(bytes), for filesystems without hard links."""
        chosen = rules.select_parts(requested, _stored_parts(upload, requested))
        with files.Spool(self._tmp_str).discarded_on_error() as spool:
            for part in chosen:
                spool.append_file(upload / f"{part.number:05d}", part.size)
            etag = rules.multipart_etag(part.etag for part in chosen)
            info = rules.new_object_info(bucket, key, size=spool.size, etag=etag, options=options)
            spool.seal(files.object_record(info))
            self._install(spool.path, info)
        return info

    def _make_composites_dir(self, bucket: str) -> Path:
        """``composites/`` of ``bucket``; buckets made before composite objects lack it."""
        parent = self._bucket_dir(bucket) / "composites"
        try:
            os.mkdir(parent)
        except FileExistsError:
            return parent
        except FileNotFoundError:
            raise errors.NoSuchBucket(BucketName=bucket) from None
        files.fsync_dir(parent.parent)
        return parent

    async def abort(self, bucket: str, key: str, upload_id: str) -> None:
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

    def _bucket_dir(self, bucket: str) -> Path:
        rules.validate_bucket_name(bucket)
        return self._buckets / bucket

    def _upload_dir(self, bucket: str, upload_id: str) -> Path:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise errors.NoSuchUpload(UploadId=upload_id)
        return self._bucket_dir(bucket) / "uploads" / upload_id

    def _upload_record(self, bucket: str, key: str, upload_id: str) -> files.Record:
        try:
            record = files.read_json(self._upload_dir(bucket, upload_id) / "upload.json")
        except FileNotFoundError:
            if not (self._bucket_dir(bucket) / "bucket.json").is_file():
                raise errors.NoSuchBucket(BucketName=bucket) from None
            raise errors.NoSuchUpload(UploadId=upload_id) from None
        if record["key"] != key:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return record


def _stored_parts(directory: Path, requested: list[tuple[int, str]]) -> dict[int, PartInfo]:
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
