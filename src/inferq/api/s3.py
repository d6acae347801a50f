"""The S3 API (path-style) over an ObjectStore: one thin handler per S3 operation.

Routing follows S3's REST model: the method, whether the path names a bucket or an object, and
the sub-resource in the query string (``?uploads``, ``?uploadId=``, ``?delete``, ...) pick the
operation. Handlers parse the wire shape, call the store and write the output shape.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from inferq.api import asgi, s3objects
from inferq.api.s3http import (
    Response,
    S3Request,
    close_body,
    error_response,
    int_param,
    parse_request,
    read_document,
    request_body,
    respond_when_done,
    send_response,
    verified_checksums,
    xml_response,
)
from inferq.aws import errors, s3xml
from inferq.storage.base import Body, ObjectInfo, ObjectStore

#: a suffix range is worked out again at most this often while its object keeps being replaced
SUFFIX_ATTEMPTS = 5

T = TypeVar("T")
Handler = Callable[["S3Api", S3Request], Awaitable[Response]]

#: query keys that name a sub-resource; those without a route below are not implemented
SUBRESOURCES = frozenset(
    {
        "accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
        "intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
        "metrics", "notification", "object-lock", "ownershipControls", "policy",
        "policyStatus", "publicAccessBlock", "replication", "requestPayment", "restore",
        "retention", "select", "tagging", "torrent", "uploadId", "uploads", "versioning",
        "versions", "website",
    }
)  # fmt: skip


class S3Api:
    """A pure ASGI app serving path-style S3 from ``store``."""

    def __init__(self, store: ObjectStore, *, region: str = "us-east-1") -> None:
        self.store = store
        self.region = region
        self._background: set[asyncio.Task[Any]] = set()

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http":
            return
        request_id = asgi.request_id(scope)
        head = scope["method"] == "HEAD"
        try:
            request = parse_request(scope, receive, request_id)
            response = await route(request)(self, request)
        except Exception as error:
            response = error_response(error, request_id, scope.get("path", ""), head=head)
        await send_response(send, receive, response, request_id=request_id, head=head)

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run store work that must finish even if the client goes away."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- service and buckets ---------------------------------------------------------------

    async def list_buckets(self, request: S3Request) -> Response:
        return xml_response(s3xml.list_buckets(await self.store.list_buckets()))

    async def create_bucket(self, request: S3Request) -> Response:
        s3xml.parse_create_bucket(await read_document(request, s3xml.MAX_DOCUMENT_BYTES))
        await self.store.create_bucket(request.bucket)
        return Response(headers=[("location", f"/{request.bucket}")])

    async def head_bucket(self, request: S3Request) -> Response:
        await self.store.head_bucket(request.bucket)
        return Response(headers=[("x-amz-bucket-region", self.region)])

    async def delete_bucket(self, request: S3Request) -> Response:
        await self.store.delete_bucket(request.bucket)
        return Response(status=204)

    async def get_bucket_location(self, request: S3Request) -> Response:
        await self.store.head_bucket(request.bucket)
        return xml_response(s3xml.location_constraint(self.region))

    async def get_bucket_versioning(self, request: S3Request) -> Response:
        await self.store.head_bucket(request.bucket)
        return xml_response(s3xml.versioning_configuration())

    async def list_objects_v2(self, request: S3Request) -> Response:
        params = _list_request(request, version=2)
        after = _decode_token(params.continuation_token) or params.start_after
        listing = await self.store.list_objects(
            request.bucket,
            prefix=params.prefix,
            delimiter=params.delimiter,
            after=after,
            max_keys=params.max_keys,
        )
        token = _encode_token(listing.next_marker) if listing.is_truncated else None
        return xml_response(s3xml.list_objects_v2(params, listing, token))

    async def list_objects(self, request: S3Request) -> Response:
        params = _list_request(request, version=1)
        listing = await self.store.list_objects(
            request.bucket,
            prefix=params.prefix,
            delimiter=params.delimiter,
            after=params.marker,
            max_keys=params.max_keys,
        )
        return xml_response(s3xml.list_objects_v1(params, listing))

    async def delete_objects(self, request: S3Request) -> Response:
        keys, quiet = s3xml.parse_delete(await read_document(request, s3xml.MAX_DOCUMENT_BYTES))
        await self.store.head_bucket(request.bucket)
        deleted, failed = [], []
        for key in keys:
            try:
                await self.store.delete_object(request.bucket, key)
                deleted.append(key)
            except errors.S3Error as error:
                failed.append((key, error))
        return xml_response(s3xml.delete_result([] if quiet else deleted, failed))

    # --- objects ---------------------------------------------------------------------------

    async def put_object(self, request: S3Request) -> Response:
        s3objects.check_put_size(request.headers)
        options = s3objects.put_options(request.headers)
        body = request_body(request, options)
        info = await self.store.put_object(request.bucket, _key(request), body, options)
        headers = {"etag": info.etag, **s3objects.checksum_headers(info.checksums)}
        return Response(headers=[*headers.items(), *_sse_echo(request)])

    async def get_object(self, request: S3Request) -> Response:
        requested = s3objects.parse_range(request.headers.get("range"))
        info, body = await self._open(request, requested)
        try:
            s3objects.check_preconditions(request.headers, info)
            span = requested.resolve(info.size) if requested else None
        except BaseException:
            await close_body(body)
            raise
        headers = s3objects.object_headers(
            request.query, info, span, checksums=_checksum_mode(request)
        )
        return Response(status=206 if span else 200, headers=headers, body=body)

    async def _open(
        self, request: S3Request, requested: s3objects.ByteRange | None
    ) -> tuple[ObjectInfo, Body]:
        """The object and the body of the requested bytes, all from one version of it.

        A suffix (``bytes=-N``) starts where the size says, which a HEAD tells first: when the
        object was replaced before the GET opened it, the suffix is worked out again."""
        bucket, key = request.bucket, _key(request)
        if requested is None:
            return await self.store.get_object(bucket, key)
        if requested.start is not None:
            return await self.store.get_object(bucket, key, requested.start, requested.end)
        for _ in range(SUFFIX_ATTEMPTS):
            seen = await self.store.head_object(bucket, key)
            start, end = requested.resolve(seen.size)
            try:
                info, body = await self.store.get_object(bucket, key, start, end)
            except errors.InvalidRange:
                continue  # it shrank since the HEAD: a new version, whose size to ask again
            if (info.etag, info.size, info.last_modified) == (
                seen.etag,
                seen.size,
                seen.last_modified,
            ):
                return info, body
            await close_body(body)
        raise errors.SlowDown()  # replaced on every try: SDKs retry a SlowDown

    async def head_object(self, request: S3Request) -> Response:
        info = await self.store.head_object(request.bucket, _key(request))
        s3objects.check_preconditions(request.headers, info)
        requested = s3objects.parse_range(request.headers.get("range"))
        span = requested.resolve(info.size) if requested else None
        headers = s3objects.object_headers(
            request.query, info, span, checksums=_checksum_mode(request)
        )
        return Response(status=206 if span else 200, headers=headers)

    async def delete_object(self, request: S3Request) -> Response:
        await self.store.delete_object(request.bucket, _key(request))
        return Response(status=204)

    async def copy_object(self, request: S3Request) -> Response:
        source_bucket, source_key = s3objects.copy_source(request.headers)
        replace = request.headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
        if (source_bucket, source_key) == (request.bucket, request.key) and not replace:
            raise errors.S3InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes."
            )
        options = s3objects.put_options(request.headers) if replace else None
        task = self._spawn(
            self.store.copy_object(
                source_bucket, source_key, request.bucket, _key(request), options
            )
        )
        return await respond_when_done(
            task,
            lambda info: s3xml.copy_result("CopyObjectResult", info.etag, info.last_modified),
            request,
        )

    # --- multipart uploads -----------------------------------------------------------------

    async def create_multipart_upload(self, request: S3Request) -> Response:
        options = s3objects.put_options(request.headers)
        upload_id = await self.store.create_multipart(request.bucket, _key(request), options)
        document = s3xml.initiate_multipart_upload(request.bucket, _key(request), upload_id)
        return xml_response(document)

    async def upload_part(self, request: S3Request) -> Response:
        s3objects.check_put_size(request.headers)
        part = await self.store.upload_part(
            request.bucket,
            _key(request),
            request.query["uploadId"],
            int_param(request, "partNumber"),
            request_body(request, None),
        )
        checksums = s3objects.checksum_headers(verified_checksums(request.scope))
        return Response(headers=[("etag", part.etag), *checksums.items(), *_sse_echo(request)])

    async def upload_part_copy(self, request: S3Request) -> Response:
        source_bucket, source_key = s3objects.copy_source(request.headers)
        start, end = s3objects.copy_source_range(request.headers)
        _, body = await self.store.get_object(source_bucket, source_key, start, end)
        try:
            part = await self.store.upload_part(
                request.bucket,
                _key(request),
                request.query["uploadId"],
                int_param(request, "partNumber"),
                body,
            )
        finally:
            await close_body(body)
        return xml_response(s3xml.copy_result("CopyPartResult", part.etag, part.last_modified))

    async def list_parts(self, request: S3Request) -> Response:
        upload_id = request.query["uploadId"]
        parts = await self.store.list_parts(request.bucket, _key(request), upload_id)
        marker = int_param(request, "part-number-marker", 0)
        max_parts = min(int_param(request, "max-parts", 1000), 1000)
        remaining = [part for part in parts if part.number > marker]
        page = s3xml.PartsPage(
            bucket=request.bucket,
            key=_key(request),
            upload_id=upload_id,
            parts=remaining[:max_parts],
            marker=marker,
            max_parts=max_parts,
            is_truncated=len(remaining) > max_parts,
        )
        return xml_response(s3xml.list_parts(page))

    async def complete_multipart_upload(self, request: S3Request) -> Response:
        document = await read_document(request, s3xml.MAX_DOCUMENT_BYTES)
        parts = s3xml.parse_complete_multipart_upload(document)
        task = self._spawn(
            self.store.complete_multipart(
                request.bucket, _key(request), request.query["uploadId"], parts
            )
        )
        location = f"/{request.bucket}/{request.key}"
        return await respond_when_done(
            task, lambda info: s3xml.complete_multipart_upload(location, info), request
        )

    async def abort_multipart_upload(self, request: S3Request) -> Response:
        await self.store.abort_multipart(request.bucket, _key(request), request.query["uploadId"])
        return Response(status=204)


# --- routing ---------------------------------------------------------------------------------

BUCKET_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", ""): S3Api.list_objects,
    ("GET", "location"): S3Api.get_bucket_location,
    ("GET", "versioning"): S3Api.get_bucket_versioning,
    ("PUT", ""): S3Api.create_bucket,
    ("HEAD", ""): S3Api.head_bucket,
    ("DELETE", ""): S3Api.delete_bucket,
    ("POST", "delete"): S3Api.delete_objects,
}
OBJECT_ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", ""): S3Api.get_object,
    ("GET", "uploadId"): S3Api.list_parts,
    ("HEAD", ""): S3Api.head_object,
    ("PUT", ""): S3Api.put_object,
    ("PUT", "uploadId"): S3Api.upload_part,
    ("DELETE", ""): S3Api.delete_object,
    ("DELETE", "uploadId"): S3Api.abort_multipart_upload,
    ("POST", "uploads"): S3Api.create_multipart_upload,
    ("POST", "uploadId"): S3Api.complete_multipart_upload,
}
#: a PUT carrying x-amz-copy-source copies instead
COPY_ROUTES: dict[Handler, Handler] = {
    S3Api.put_object: S3Api.copy_object,
    S3Api.upload_part: S3Api.upload_part_copy,
}


def route(request: S3Request) -> Handler:
    if not request.bucket:
        if request.method != "GET":
            raise errors.MethodNotAllowed()
        return S3Api.list_buckets
    routes = BUCKET_ROUTES if request.key is None else OBJECT_ROUTES
    subresource = next((name for name in request.query if name in SUBRESOURCES), "")
    handler = routes.get((request.method, subresource))
    if handler is None:
        raise errors.S3NotImplemented() if subresource else errors.MethodNotAllowed()
    if handler is S3Api.list_objects and request.query.get("list-type") == "2":
        return S3Api.list_objects_v2
    if "x-amz-copy-source" in request.headers:
        return COPY_ROUTES.get(handler, handler)
    return handler


# --- small wire helpers ----------------------------------------------------------------------


def _key(request: S3Request) -> str:
    assert request.key is not None, "object routes always have a key"
    return request.key


def _checksum_mode(request: S3Request) -> bool:
    return request.headers.get("x-amz-checksum-mode", "").upper() == "ENABLED"


def _sse_echo(request: S3Request) -> list[tuple[str, str]]:
    name = "x-amz-server-side-encryption"
    return [(name, request.headers[name])] if name in request.headers else []


def _list_request(request: S3Request, *, version: int) -> s3xml.ListRequest:
    encoding = request.query.get("encoding-type")
    if encoding not in (None, "url"):
        raise errors.InvalidArgument(
            "Invalid Encoding Method specified in Request", ArgumentName="encoding-type"
        )
    query = request.query
    return s3xml.ListRequest(
        bucket=request.bucket,
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        max_keys=min(int_param(request, "max-keys", 1000), 1000),
        url_encoded=encoding == "url",
        start_after=query.get("start-after", "") if version == 2 else "",
        continuation_token=query.get("continuation-token", "") if version == 2 else "",
        marker=query.get("marker", "") if version == 1 else "",
    )


def _encode_token(key: str | None) -> str | None:
    return base64.urlsafe_b64encode(key.encode()).decode() if key else None


def _decode_token(token: str) -> str:
    """ContinuationToken: opaque to clients; here the base64 of the last key or prefix sent."""
    if not token:
        return ""
    try:
        return base64.b64decode(token, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.InvalidArgument(
            "The continuation token provided is incorrect", ArgumentName="continuation-token"
        ) from None
