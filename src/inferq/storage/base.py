"""The object-store seam: an S3-shaped bucket/key store that streams bodies.

The embedded S3 API is a thin wire layer over this Protocol, and the dispatcher reads inputs and
writes results through it. Implementations hold no policy: naming rules, retries and
notifications live above.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

#: bodies travel as async iterators of byte chunks; nothing holds a whole payload in memory
Body = AsyncIterator[bytes]


@dataclass(frozen=True, kw_only=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    etag: str  # quoted, as S3 returns it: '"<md5hex>"' or '"<md5hex>-<parts>"'
    last_modified: datetime
    content_type: str = "binary/octet-stream"
    #: user metadata (x-amz-meta-*), keys lower-case without the prefix
    metadata: dict[str, str] = field(default_factory=dict)
    #: stored checksums by algorithm name upper-case ("CRC32", "CRC32C", "SHA256", ...): base64
    checksums: dict[str, str] = field(default_factory=dict)
    #: other stored headers (content-encoding, content-disposition, cache-control, ...)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class PutOptions:
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class BucketInfo:
    name: str
    created: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Listing:
    objects: list[ObjectInfo]
    common_prefixes: list[str]
    is_truncated: bool
    #: the last key (or common prefix) returned, to continue after
    next_marker: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class PartInfo:
    number: int
    size: int
    etag: str
    last_modified: datetime
    checksums: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    async def list_buckets(self) -> list[BucketInfo]: ...
    async def create_bucket(self, bucket: str) -> None: ...
    async def head_bucket(self, bucket: str) -> BucketInfo: ...
    async def delete_bucket(self, bucket: str) -> None: ...

    async def put_object(
        self, bucket: str, key: str, body: Body, options: PutOptions
    ) -> ObjectInfo:
        """Write atomically: readers see the old object or the whole new one, never a part.

        ``options`` is read only once ``body`` is exhausted, so a body may add checksums that
        arrive in a trailer to ``options.checksums`` (the S3 API does).
        """
        ...

    async def head_object(self, bucket: str, key: str) -> ObjectInfo: ...

    async def get_object(
        self, bucket: str, key: str, start: int = 0, end: int | None = None
    ) -> tuple[ObjectInfo, Body]:
        """Stream bytes ``start..end`` inclusive (``end=None``: to the last byte)."""
        ...

    async def delete_object(self, bucket: str, key: str) -> None:
        """Delete; deleting a missing key is not an error (as in S3)."""
        ...

    async def list_objects(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        after: str = "",
        max_keys: int = 1000,
    ) -> Listing: ...

    async def copy_object(
        self, src_bucket: str, src_key: str, bucket: str, key: str, options: PutOptions | None
    ) -> ObjectInfo:
        """Copy; ``options=None`` keeps the source's metadata (MetadataDirective COPY)."""
        ...

    async def create_multipart(self, bucket: str, key: str, options: PutOptions) -> str: ...
    async def upload_part(
        self, bucket: str, key: str, upload_id: str, number: int, body: Body
    ) -> PartInfo: ...
    async def list_parts(self, bucket: str, key: str, upload_id: str) -> list[PartInfo]: ...
    async def complete_multipart(
        self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> ObjectInfo: ...
    async def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None: ...

    async def close(self) -> None: ...
