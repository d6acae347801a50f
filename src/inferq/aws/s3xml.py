"""S3's XML documents: responses written, request documents parsed (defensively).

Request documents come from the network, so parsing refuses DTDs (no entity expansion) and
anything over ``MAX_DOCUMENT_BYTES``, and every failure is a ``MalformedXML``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

from inferq.aws import errors

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
#: DeleteObjects: 1000 keys of up to 1024 bytes, escaped; CompleteMultipartUpload: 10000 parts
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
MAX_DELETE_KEYS = 1000
MAX_PARTS = 10_000
OWNER_ID = "inferq"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def iso_time(moment: datetime) -> str:
    """S3's timestamp in XML bodies: ``2025-01-31T12:00:00.000Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --- what is written (the object store's value types fit these; aws sits below storage) --


class Bucket(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def created(self) -> datetime: ...


class Stored(Protocol):
    @property
    def size(self) -> int: ...
    @property
    def etag(self) -> str: ...
    @property
    def last_modified(self) -> datetime: ...


class Object(Stored, Protocol):
    @property
    def bucket(self) -> str: ...
    @property
    def key(self) -> str: ...


class Part(Stored, Protocol):
    @property
    def number(self) -> int: ...


class Listing(Protocol):
    @property
    def objects(self) -> Sequence[Object]: ...
    @property
    def common_prefixes(self) -> Sequence[str]: ...
    @property
    def is_truncated(self) -> bool: ...
    @property
    def next_marker(self) -> str | None: ...


# --- writing ---------------------------------------------------------------------------------


def _document(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=NAMESPACE)


def _add(parent: ET.Element, tag: str, text: str | int | bool | None = None) -> ET.Element:
    child = ET.SubElement(parent, tag)
    if isinstance(text, bool):
        child.text = "true" if text else "false"
    elif text is not None:
        child.text = str(text)
    return child


def _serialize(root: ET.Element) -> bytes:
    return XML_DECLARATION + ET.tostring(root, encoding="unicode").encode()


def _owner(parent: ET.Element, tag: str = "Owner") -> None:
    owner = _add(parent, tag)
    _add(owner, "ID", OWNER_ID)
    _add(owner, "DisplayName", OWNER_ID)


def list_buckets(buckets: Sequence[Bucket]) -> bytes:
    root = _document("ListAllMyBucketsResult")
    _owner(root)
    container = _add(root, "Buckets")
    for bucket in buckets:
        entry = _add(container, "Bucket")
        _add(entry, "Name", bucket.name)
        _add(entry, "CreationDate", iso_time(bucket.created))
    return _serialize(root)


@dataclass(frozen=True, kw_only=True, slots=True)
class ListRequest:
    """The ListObjects(V2) parameters that responses echo."""

    bucket: str
    prefix: str = ""
    delimiter: str = ""
    max_keys: int = 1000
    url_encoded: bool = False
    start_after: str = ""  # V2
    continuation_token: str = ""  # V2
    marker: str = ""  # V1


def list_objects_v2(request: ListRequest, listing: Listing, next_token: str | None) -> bytes:
    root = _list_head("ListBucketResult", request, listing)
    _add(root, "KeyCount", len(listing.objects) + len(listing.common_prefixes))
    if request.continuation_token:
        _add(root, "ContinuationToken", request.continuation_token)
    if next_token:
        _add(root, "NextContinuationToken", next_token)
    if request.start_after:
        _add(root, "StartAfter", _encoded(request, request.start_after))
    _list_entries(root, request, listing)
    return _serialize(root)


def list_objects_v1(request: ListRequest, listing: Listing) -> bytes:
    root = _list_head("ListBucketResult", request, listing)
    _add(root, "Marker", _encoded(request, request.marker))
    if listing.is_truncated and listing.next_marker:
        _add(root, "NextMarker", _encoded(request, listing.next_marker))
    _list_entries(root, request, listing)
    return _serialize(root)


def _list_head(tag: str, request: ListRequest, listing: Listing) -> ET.Element:
    root = _document(tag)
    _add(root, "Name", request.bucket)
    _add(root, "Prefix", _encoded(request, request.prefix))
    if request.delimiter:
        _add(root, "Delimiter", _encoded(request, request.delimiter))
    _add(root, "MaxKeys", request.max_keys)
    if request.url_encoded:
        _add(root, "EncodingType", "url")
    _add(root, "IsTruncated", listing.is_truncated)
    return root


def _list_entries(root: ET.Element, request: ListRequest, listing: Listing) -> None:
    for info in listing.objects:
        entry = _add(root, "Contents")
        _add(entry, "Key", _encoded(request, info.key))
        _add(entry, "LastModified", iso_time(info.last_modified))
        _add(entry, "ETag", info.etag)
        _add(entry, "Size", info.size)
        _add(entry, "StorageClass", "STANDARD")
    for prefix in listing.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", _encoded(request, prefix))


def _encoded(request: ListRequest, value: str) -> str:
    """``EncodingType=url``: keys may hold characters XML 1.0 cannot carry."""
    return quote(value, safe="/") if request.url_encoded else value


def initiate_multipart_upload(bucket: str, key: str, upload_id: str) -> bytes:
    root = _document("InitiateMultipartUploadResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    return _serialize(root)


def complete_multipart_upload(location: str, info: Object) -> bytes:
    root = _document("CompleteMultipartUploadResult")
    _add(root, "Location", location)
    _add(root, "Bucket", info.bucket)
    _add(root, "Key", info.key)
    _add(root, "ETag", info.etag)
    return _serialize(root)


@dataclass(frozen=True, kw_only=True, slots=True)
class PartsPage:
    bucket: str
    key: str
    upload_id: str
    parts: Sequence[Part]
    marker: int
    max_parts: int
    is_truncated: bool


def list_parts(page: PartsPage) -> bytes:
    root = _document("ListPartsResult")
    for tag, value in (("Bucket", page.bucket), ("Key", page.key), ("UploadId", page.upload_id)):
        _add(root, tag, value)
    _add(root, "PartNumberMarker", page.marker)
    if page.parts:
        _add(root, "NextPartNumberMarker", page.parts[-1].number)
    _add(root, "MaxParts", page.max_parts)
    _add(root, "IsTruncated", page.is_truncated)
    for part in page.parts:
        entry = _add(root, "Part")
        _add(entry, "PartNumber", part.number)
        _add(entry, "LastModified", iso_time(part.last_modified))
        _add(entry, "ETag", part.etag)
        _add(entry, "Size", part.size)
    _owner(root, "Initiator")
    _owner(root)
    _add(root, "StorageClass", "STANDARD")
    return _serialize(root)


def copy_result(tag: str, etag: str, last_modified: datetime) -> bytes:
    """``CopyObjectResult`` or ``CopyPartResult``."""
    root = _document(tag)
    _add(root, "ETag", etag)
    _add(root, "LastModified", iso_time(last_modified))
    return _serialize(root)


def delete_result(deleted: Sequence[str], failed: Sequence[tuple[str, errors.AwsError]]) -> bytes:
    root = _document("DeleteResult")
    for key in deleted:
        _add(_add(root, "Deleted"), "Key", key)
    for key, error in failed:
        entry = _add(root, "Error")
        _add(entry, "Key", key)
        _add(entry, "Code", error.code)
        _add(entry, "Message", error.message)
    return _serialize(root)


def location_constraint(region: str) -> bytes:
    """GetBucketLocation; the empty constraint means us-east-1."""
    root = _document("LocationConstraint")
    root.text = region if region != "us-east-1" else None
    return _serialize(root)


def versioning_configuration() -> bytes:
    """GetBucketVersioning of a bucket that never had versioning: no Status."""
    return _serialize(_document("VersioningConfiguration"))


# --- parsing ---------------------------------------------------------------------------------


def parse_complete_multipart_upload(body: bytes) -> list[tuple[int, str]]:
    """The (PartNumber, ETag) pairs, in document order."""
    root = _parse(body, "CompleteMultipartUpload")
    parts = [_part(element) for element in _children(root, "Part")]
    if len(parts) > MAX_PARTS:
        raise errors.MalformedXML()
    return parts


def _part(element: ET.Element) -> tuple[int, str]:
    number = _text(element, "PartNumber")
    if not number.isdigit():
        raise errors.MalformedXML()
    return int(number), _text(element, "ETag")


def parse_delete(body: bytes) -> tuple[list[str], bool]:
    """The keys of a DeleteObjects request and whether it asked for a quiet answer."""
    root = _parse(body, "Delete")
    keys = [_text(element, "Key") for element in _children(root, "Object")]
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise errors.MalformedXML()
    quiet = _optional_text(root, "Quiet").strip().lower() == "true"
    return keys, quiet


def parse_create_bucket(body: bytes) -> str:
    """The LocationConstraint of a CreateBucket body ("" when there is none)."""
    if not body.strip():
        return ""
    return _optional_text(_parse(body, "CreateBucketConfiguration"), "LocationConstraint")


def _parse(body: bytes, root_tag: str) -> ET.Element:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise errors.MaxMessageLengthExceeded()
    try:
        text = body.decode("utf-8")
        if "<!" in text:  # DOCTYPE, ENTITY: entity expansion; CDATA is not needed either
            raise errors.MalformedXML()
        root = ET.fromstring(text)
    except (UnicodeDecodeError, ET.ParseError):
        raise errors.MalformedXML() from None
    if _local(root.tag) != root_tag:
        raise errors.MalformedXML()
    return root


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(parent: ET.Element, tag: str) -> list[ET.Element]:
    return [child for child in parent if _local(child.tag) == tag]


def _optional_text(parent: ET.Element, tag: str) -> str:
    found = _children(parent, tag)
    return (found[0].text or "") if found else ""


def _text(parent: ET.Element, tag: str) -> str:
    found = _children(parent, tag)
    if not found or found[0].text is None:
        raise errors.MalformedXML()
    return found[0].text
