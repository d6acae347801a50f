"""Object-level wire rules of the S3 API: stored headers, ranges, preconditions, copy sources."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import unquote

from inferq.api import asgi
from inferq.aws import errors
from inferq.storage import rules
from inferq.storage.base import ObjectInfo, PutOptions

META_PREFIX = "x-amz-meta-"
#: request headers kept with the object and returned by GetObject/HeadObject
STORED_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "x-amz-server-side-encryption",
)
#: GetObject query parameters that override a returned header
RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-language": "content-language",
    "response-expires": "expires",
    "response-cache-control": "cache-control",
    "response-content-disposition": "content-disposition",
    "response-content-encoding": "content-encoding",
}
MAX_PUT_SIZE = 5 * 1024**3
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def put_options(headers: dict[str, str]) -> PutOptions:
    stored = {name: headers[name] for name in STORED_HEADERS if name in headers}
    encoding = _without_aws_chunked(stored.pop("content-encoding", ""))
    if encoding:
        stored["content-encoding"] = encoding
    return PutOptions(
        content_type=headers.get("content-type") or None,
        metadata={
            name.removeprefix(META_PREFIX): value
            for name, value in headers.items()
            if name.startswith(META_PREFIX)
        },
        headers=stored,
    )


def _without_aws_chunked(encoding: str) -> str:
    """``aws-chunked`` describes the transfer, not the object, and is not stored."""
    codings = [coding.strip() for coding in encoding.split(",")]
    return ", ".join(coding for coding in codings if coding and coding != "aws-chunked")


def check_put_size(headers: dict[str, str]) -> None:
    size = headers.get("x-amz-decoded-content-length", headers.get("content-length", ""))
    if size.isdigit() and int(size) > MAX_PUT_SIZE:
        raise errors.EntityTooLarge(ProposedSize=size, MaxSizeAllowed=MAX_PUT_SIZE)


# --- ranges ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ByteRange:
    """``bytes=a-b``, ``bytes=a-`` (end None) or ``bytes=-n`` (start None, end = n)."""

    start: int | None
    end: int | None

    def resolve(self, size: int) -> tuple[int, int]:
        """The inclusive span within an object of ``size`` bytes; raises InvalidRange."""
        if size == 0 or (self.start is None and self.end == 0):
            raise errors.InvalidRange(ActualObjectSize=size)
        if self.start is None:
            return max(0, size - (self.end or 0)), size - 1
        return rules.resolve_range(size, self.start, self.end)


def parse_range(value: str | None) -> ByteRange | None:
    """A single byte range; anything else is ignored (the whole object is sent), as S3 does."""
    match = _RANGE.fullmatch((value or "").strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None
    start, end = (int(group) if group else None for group in match.groups())
    if start is not None and end is not None and end < start:
        return None
    return ByteRange(start, end)


# --- responses -------------------------------------------------------------------------------


def object_headers(
    query: dict[str, str], info: ObjectInfo, span: tuple[int, int] | None, *, checksums: bool
) -> asgi.Headers:
    """GetObject/HeadObject headers; ``span`` is the inclusive range sent, None for all."""
    first, last = span if span is not None else (0, info.size - 1)
    headers: dict[str, str] = {
        "content-type": info.content_type,
        "content-length": str(last - first + 1),
        "etag": info.etag,
        "last-modified": http_date(info.last_modified),
        "accept-ranges": "bytes",
        **info.headers,
        **{META_PREFIX + name: value for name, value in info.metadata.items()},
    }
    headers.update(
        {RESPONSE_OVERRIDES[name]: query[name] for name in RESPONSE_OVERRIDES.keys() & query.keys()}
    )
    if span is not None:
        headers["content-range"] = f"bytes {first}-{last}/{info.size}"
    elif checksums:  # a checksum describes the whole object, never a range of it
        headers.update(checksum_headers(info.checksums))
    return list(headers.items())


def checksum_headers(checksums: dict[str, str]) -> dict[str, str]:
    return {f"x-amz-checksum-{name.lower()}": value for name, value in checksums.items()}


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


# --- preconditions ---------------------------------------------------------------------------


def check_preconditions(headers: dict[str, str], info: ObjectInfo) -> None:
    """RFC 7232 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since."""
    if_match, if_none_match = headers.get("if-match"), headers.get("if-none-match")
    if if_match is not None and not _etag_listed(if_match, info.etag):
        raise errors.PreconditionFailed(Condition="If-Match")
    since = _http_time(headers.get("if-unmodified-since"))
    if if_match is None and since is not None and _seconds(info) > since:
        raise errors.PreconditionFailed(Condition="If-Unmodified-Since")
    if if_none_match is not None and _etag_listed(if_none_match, info.etag):
        raise errors.NotModified()
    since = _http_time(headers.get("if-modified-since"))
    if if_none_match is None and since is not None and _seconds(info) <= since:
        raise errors.NotModified()


def _etag_listed(header: str, etag: str) -> bool:
    listed = {rules.bare_etag(item.removeprefix("W/")) for item in header.split(",")}
    return "*" in listed or rules.bare_etag(etag) in listed


def _http_time(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None


def _seconds(info: ObjectInfo) -> datetime:
    return info.last_modified.replace(microsecond=0)


# --- copies ----------------------------------------------------------------------------------


def copy_source(headers: dict[str, str]) -> tuple[str, str]:
    """``x-amz-copy-source``: URL-encoded ``[/]bucket/key[?versionId=...]`` (version ignored)."""
    path = headers.get("x-amz-copy-source", "").partition("?")[0]
    try:
        bucket, _, key = unquote(path, errors="strict").removeprefix("/").partition("/")
    except UnicodeDecodeError:
        bucket = key = ""
    if not bucket or not key:
        raise errors.InvalidArgument(
            "Invalid copy source object key", ArgumentName="x-amz-copy-source"
        )
    return bucket, key


def copy_source_range(headers: dict[str, str]) -> tuple[int, int | None]:
    """UploadPartCopy's ``x-amz-copy-source-range: bytes=a-b`` (the whole source if absent)."""
    value = headers.get("x-amz-copy-source-range")
    if value is None:
        return 0, None
    parsed = parse_range(value)
    if parsed is None or parsed.start is None or parsed.end is None:
        raise errors.InvalidArgument(
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
            ArgumentName="x-amz-copy-source-range",
        )
    return parsed.start, parsed.end
