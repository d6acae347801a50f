"""MemoryObjectStore: the reference semantics, kept in dicts (unit tests and ``inferq dev``)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from inferq.aws import errors
from inferq.storage import rules
from inferq.storage.base import (
    Body,
    BucketInfo,
    Listing,
    ObjectInfo,
    PartInfo,
    PutOptions,
)


@dataclass
class _Upload:
    key: str
    options: PutOptions
    parts: dict[int, tuple[PartInfo, bytes]] = field(default_factory=dict)


@dataclass
class _Bucket:
    info: BucketInfo
    index: rules.KeyIndex = field(default_factory=rules.KeyIndex)
    data: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, _Upload] = field(default_factory=dict)


class MemoryObjectStore:
    """Everything in process memory; a fresh, empty store per instance."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}

    @classmethod
    def from_url(cls, url: str) -> MemoryObjectStore:
        return cls()

    @property
    def objects(self) -> dict[tuple[str, str], bytes]:
        """A snapshot of every stored object's content by (bucket, key), for assertions."""
        return {
            (name, key): data
            for name, bucket in self._buckets.items()
            for key, data in bucket.data.items()
        }

    def reset(self) -> None:
        self._buckets.clear()

    async def list_buckets(self) -> list[BucketInfo]:
        return [self._buckets[name].info for name in sorted(self._buckets)]

    async def create_bucket(self, bucket: str) -> None:
        rules.validate_bucket_name(bucket)
        if bucket in self._buckets:
            raise errors.BucketAlreadyOwnedByYou(BucketName=bucket)
        self._buckets[bucket] = _Bucket(BucketInfo(name=bucket, created=rules.now()))

    async def head_bucket(self, bucket: str) -> BucketInfo:
        return self._bucket(bucket).info

    async def delete_bucket(self, bucket: str) -> None:
        if len(self._bucket(bucket).index):
            raise errors.BucketNotEmpty(BucketName=bucket)
        del self._buckets[bucket]

    async def put_object(
        self, bucket: str, key: str, body: Body, options: PutOptions
    ) -> ObjectInfo:
        rules.validate_key(key)
        self._bucket(bucket)
        data = await _collect(body)
        etag = rules.quote_etag(hashlib.md5(data).hexdigest())
        info = rules.new_object_info(bucket, key, size=len(data), etag=etag, options=options)
        return self._store(info, data)

    def _store(self, info: ObjectInfo, data: bytes) -> ObjectInfo:
        target = self._bucket(info.bucket)  # it may have been deleted while the body streamed
        target.index.put(info)
        target.data[info.key] = data
        return info

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        info = self._bucket(bucket).index.get(key)
        if info is None:
            raise errors.NoSuchKey(Key=key)
        return info

    async def get_object(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, Body]:
        info = await self.head_object(bucket, key)
        first, last = rules.resolve_range(info.size, start, end)
        return info, _chunks(self._bucket(bucket).data[key], first, last + 1)

    async def delete_object(self, bucket: str, key: str) -> None:
        target = self._bucket(bucket)
        target.index.remove(key)
        target.data.pop(key, None)

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> Listing:
        return self._bucket(bucket).index.list(prefix, delimiter, after, max_keys)

    async def copy_object(
        self, src_bucket: str, src_key: str, bucket: str, key: str, options: PutOptions | None
    ) -> ObjectInfo:
        source, body = await self.get_object(src_bucket, src_key)
        return await self.put_object(bucket, key, body, options or rules.options_of(source))

    async def create_multipart(self, bucket: str, key: str, options: PutOptions) -> str:
        rules.validate_key(key)
        upload_id = uuid.uuid4().hex
        self._bucket(bucket).uploads[upload_id] = _Upload(key, options)
        return upload_id

    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: Body
    ) -> PartInfo:
        rules.validate_part_number(number)
        self._upload(bucket, key, upload_id)
        data = await _collect(body)
        part = PartInfo(
            number=number,
            size=len(data),
            etag=rules.quote_etag(hashlib.md5(data).hexdigest()),
            last_modified=rules.now(),
        )
        self._upload(bucket, key, upload_id).parts[number] = (part, data)
        return part

    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]:
        parts = self._upload(bucket, key, upload_id).parts
        return [parts[number][0] for number in sorted(parts)]

    async def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo:
        upload = self._upload(bucket, key, upload_id)
        stored = {number: part for number, (part, _) in upload.parts.items()}
        chosen = rules.select_parts(parts, stored)
        data = b"".join(upload.parts[part.number][1] for part in chosen)
        etag = rules.multipart_etag(part.etag for part in chosen)
        info = rules.new_object_info(bucket, key, size=len(data), etag=etag, options=upload.options)
        del self._bucket(bucket).uploads[upload_id]
        return self._store(info, data)

    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        self._upload(bucket, key, upload_id)
        del self._bucket(bucket).uploads[upload_id]

    async def close(self) -> None:
        return None

    def _bucket(self, bucket: str) -> _Bucket:
        found = self._buckets.get(bucket)
        if found is None:
            raise errors.NoSuchBucket(BucketName=bucket)
        return found

    def _upload(self, bucket: str, key: str, upload_id: str) -> _Upload:
        upload = self._bucket(bucket).uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return upload


async def _collect(body: Body) -> bytes:
    return b"".join([chunk async for chunk in body])


async def _chunks(data: bytes, start: int, stop: int) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for offset in range(start, stop, rules.CHUNK_SIZE):
        yield bytes(view[offset : min(offset + rules.CHUNK_SIZE, stop)])
