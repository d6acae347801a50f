"""S3 naming, listing and multipart rules, shared by every object-store backend.

Backends store bytes; what a valid name is, how a listing pages and when a multipart upload may
complete is decided here once, so the memory and file backends cannot disagree.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import re
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import pairwise

from inferq.aws import errors
from inferq.storage.base import Listing, ObjectInfo, PartInfo, PutOptions

MAX_KEY_BYTES = 1024
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PART_NUMBER = 10_000
CHUNK_SIZE = 1024 * 1024
DEFAULT_CONTENT_TYPE = "binary/octet-stream"

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def now() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def validate_bucket_name(bucket: str) -> None:
    """S3's general-purpose bucket naming rules."""
    if not _valid_bucket_name(bucket):
        raise errors.InvalidBucketName(BucketName=bucket)


@functools.lru_cache(maxsize=4096)
def _valid_bucket_name(bucket: str) -> bool:
    """Cached: every object operation checks its bucket's name again."""
    return not (
        not _BUCKET_NAME.fullmatch(bucket)
        or ".." in bucket
        or ".-" in bucket
        or "-." in bucket
        or bucket.startswith("xn--")
        or _is_ip_address(bucket)
    )


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def validate_key(key: str) -> None:
    """Any UTF-8 string of 1 to 1024 bytes is a key; stores never derive paths from it."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise errors.InvalidArgument("Object key is not valid UTF-8") from None
    if size == 0:
        raise errors.InvalidArgument("Object key must not be empty")
    if size > MAX_KEY_BYTES:
        raise errors.KeyTooLongError(Size=size, MaxSizeAllowed=MAX_KEY_BYTES)


def validate_part_number(number: int) -> None:
    if not 1 <= number <= MAX_PART_NUMBER:
        raise errors.InvalidArgument(
            f"Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive",
            ArgumentName="partNumber",
            ArgumentValue=str(number),
        )


def resolve_range(size: int, start: int, end: int | None) -> tuple[int, int]:
    """Clamp an inclusive byte range to the object; the result may be empty only for size 0."""
    if size == 0 and start == 0:
        return 0, -1
    if start < 0 or start >= size or (end is not None and end < start):
        raise errors.InvalidRange(ActualObjectSize=size)
    return start, size - 1 if end is None or end >= size else end


def quote_etag(md5_hex: str) -> str:
    return f'"{md5_hex}"'


def bare_etag(etag: str) -> str:
    return etag.strip().strip('"')


def multipart_etag(part_etags: Iterable[str]) -> str:
    """S3's multipart ETag: the MD5 of the parts' binary MD5s, then ``-<count>``."""
    digests = [bytes.fromhex(bare_etag(etag)) for etag in part_etags]
    return quote_etag(f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}")


def select_parts(requested: list[tuple[int, str]], stored: dict[int, PartInfo]) -> list[PartInfo]:
    """The parts a CompleteMultipartUpload names, checked as S3 checks them."""
    if not requested:
        raise errors.MalformedXML()
    numbers = [number for number, _ in requested]
    if any(later <= earlier for earlier, later in pairwise(numbers)):
        raise errors.InvalidPartOrder()
    chosen = [_matching_part(number, etag, stored) for number, etag in requested]
    for part in chosen[:-1]:
        if part.size < MIN_PART_SIZE:
            raise errors.EntityTooSmall(
                ProposedSize=part.size, MinSizeAllowed=MIN_PART_SIZE, PartNumber=part.number
            )
    return chosen


def _matching_part(number: int, etag: str, stored: dict[int, PartInfo]) -> PartInfo:
    part = stored.get(number)
    if part is None or bare_etag(part.etag) != bare_etag(etag):
        raise errors.InvalidPart(PartNumber=number, ETag=etag)
    return part


class KeyIndex:
    """The keys of one bucket in UTF-8 (= code point) order, for ListObjects."""

    def __init__(self, infos: Iterable[ObjectInfo] = ()) -> None:
        self._infos = {info.key: info for info in infos}
        self._keys = sorted(self._infos)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: str) -> ObjectInfo | None:
        return self._infos.get(key)

    def put(self, info: ObjectInfo) -> None:
        if info.key not in self._infos:
            insort(self._keys, info.key)
        self._infos[info.key] = info

    def remove(self, key: str) -> None:
        if self._infos.pop(key, None) is not None:
            del self._keys[bisect_left(self._keys, key)]

    def list(self, prefix: str, delimiter: str, after: str, max_keys: int) -> Listing:
        page = _Page(prefix, delimiter, after)
        if max_keys <= 0:
            return page.listing(truncated=False)
        position = max(bisect_left(self._keys, prefix), bisect_right(self._keys, after))
        while position < len(self._keys) and self._keys[position].startswith(prefix):
            if page.count >= max_keys:
                return page.listing(truncated=True)
            position = page.take(self._keys, position, self._infos)
        return page.listing(truncated=False)


class _Page:
    """One listing page being filled; ``take`` consumes a key or a whole common prefix."""

    def __init__(self, prefix: str, delimiter: str, after: str) -> None:
        self.prefix, self.delimiter, self.after = prefix, delimiter, after
        self.objects: list[ObjectInfo] = []
        self.prefixes: list[str] = []
        self.last: str | None = None

    @property
    def count(self) -> int:
        return len(self.objects) + len(self.prefixes)

    def take(self, keys: list[str], position: int, infos: dict[str, ObjectInfo]) -> int:
        key = keys[position]
        common = self._common_prefix(key)
        if common is None:
            self.objects.append(infos[key])
            self.last = key
            return position + 1
        if common > self.after:  # a continuation that ended on this prefix must not repeat it
            self.prefixes.append(common)
            self.last = common
        return _skip_prefix(keys, position, common)

    def _common_prefix(self, key: str) -> str | None:
        if not self.delimiter:
            return None
        found = key.find(self.delimiter, len(self.prefix))
        return None if found < 0 else key[: found + len(self.delimiter)]

    def listing(self, *, truncated: bool) -> Listing:
        return Listing(
            objects=self.objects,
            common_prefixes=self.prefixes,
            is_truncated=truncated,
            next_marker=self.last if truncated else None,
        )


def _skip_prefix(keys: list[str], position: int, common: str) -> int:
    """The first position after every key that starts with ``common``."""
    last_char = ord(common[-1])
    if last_char < 0x10FFFF:
        return bisect_left(keys, common[:-1] + chr(last_char + 1), position)
    while position < len(keys) and keys[position].startswith(common):
        position += 1
    return position


def new_object_info(
    bucket: str, key: str, *, size: int, etag: str, options: PutOptions
) -> ObjectInfo:
    """Call only once the body is exhausted: trailing checksums land in ``options`` late."""
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=size,
        etag=etag,
        last_modified=now(),
        content_type=options.content_type or DEFAULT_CONTENT_TYPE,
        metadata=dict(options.metadata),
        checksums=dict(options.checksums),
        headers=dict(options.headers),
    )


def options_of(info: ObjectInfo) -> PutOptions:
    """The PutOptions that recreate ``info``'s metadata (CopyObject with COPY directive)."""
    return PutOptions(
        content_type=info.content_type,
        metadata=dict(info.metadata),
        checksums=dict(info.checksums),
        headers=dict(info.headers),
    )
