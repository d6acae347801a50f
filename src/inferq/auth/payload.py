"""Request-body integrity, checked while the body streams through ASGI ``receive``.

``plan_body`` reads what the headers promise (an ``x-amz-content-sha256`` digest, an aws-chunked
encoding with or without chunk signatures and trailers, ``x-amz-checksum-*`` values or
``Content-MD5``); ``BodyVerifier`` wraps ``receive`` to decode the body and check each promise
without ever holding the whole body. Every end-of-body check runs inside the ``receive()`` call
that would deliver the final message (``more_body=False``) and raises before delivering it, so a
consumer that commits only on the final message never commits a bad body. Errors are the S3
``AwsError`` subclasses, raised into the application.

Once the final message has passed, ``scope["inferq.checksums"]`` maps the verified flexible
checksum (``CRC32``, ``CRC32C``, ``CRC64NVME``, ``SHA1`` or ``SHA256``) to its base64 value, and
``scope["inferq.decoded_length"]`` holds the number of body bytes delivered. ``Content-MD5`` is
verified but not recorded there: it is no S3 checksum algorithm.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.types import Message, Receive, Scope

from inferq.auth import checksums, sigv4
from inferq.aws import errors

CHECKSUMS_KEY = "inferq.checksums"
DECODED_LENGTH_KEY = "inferq.decoded_length"

Headers = Mapping[bytes, bytes]
"""Request headers by lower-case name; a repeated header keeps its last value."""

_ALGORITHMS = ("CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256")
_CHECKSUM_HEADERS = {f"x-amz-checksum-{name.lower()}": name for name in _ALGORITHMS}
_CHECKSUM_RAW_HEADERS = tuple(
    (name.encode(), algorithm) for name, algorithm in _CHECKSUM_HEADERS.items()
)
_SHA256_HEX = re.compile(rb"[0-9a-fA-F]{64}")
_CHUNK_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_PAYLOAD_CONSTANTS = {
    sigv4.UNSIGNED_PAYLOAD,
    sigv4.STREAMING_PAYLOAD,
    sigv4.STREAMING_PAYLOAD_TRAILER,
    sigv4.STREAMING_UNSIGNED_TRAILER,
}
_SIGNED_STREAMING = {sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER}
_MAX_LINE = 4096
_MAX_TRAILERS = 16


@dataclass(frozen=True, slots=True)
class BodyPlan:
    """The checks a request body must pass, as its headers dictate."""

    #: hex SHA-256 the raw body must have
    content_sha256: str | None = None
    #: the body is aws-chunked and is delivered decoded
    chunked: bool = False
    #: verifies chunk signatures (signed aws-chunked only)
    chain: sigv4.ChunkChain | None = None
    #: the trailer carries x-amz-trailer-signature
    signed_trailer: bool = False
    #: algorithm -> expected base64 value, or None when it comes in the trailer
    expected: Mapping[str, str | None] = field(default_factory=dict)
    #: x-amz-decoded-content-length
    decoded_length: int | None = None


def is_valid_payload_hash(value: str) -> bool:
    return value in _PAYLOAD_CONSTANTS or bool(_SHA256_HEX.fullmatch(value.encode("latin-1")))


def plan_body(
    headers: Headers, payload_hash: str, *, chain: sigv4.ChunkChain | None, verify_sha256: bool
) -> BodyPlan:
    """What to check, given the headers and the payload hash the signature covered.

    ``verify_sha256`` is false when the caller hashed the body itself already.
    """
    chunked = payload_hash.startswith("STREAMING-") or _is_aws_chunked(headers)
    if payload_hash in _SIGNED_STREAMING and chain is None:
        raise errors.S3InvalidRequest(f"{payload_hash} needs an Authorization header.")
    expected = _expected_checksums(headers, chunked)
    hex_digest = payload_hash if _SHA256_HEX.fullmatch(payload_hash.encode("latin-1")) else None
    return BodyPlan(
        content_sha256=hex_digest.lower() if hex_digest and verify_sha256 else None,
        chunked=chunked,
        chain=chain if payload_hash in _SIGNED_STREAMING else None,
        signed_trailer=payload_hash == sigv4.STREAMING_PAYLOAD_TRAILER,
        expected=expected,
        decoded_length=_decoded_length(headers),
    )


def _is_aws_chunked(headers: Headers) -> bool:
    return b"aws-chunked" in headers.get(b"content-encoding", b"").lower()


def _expected_checksums(headers: Headers, chunked: bool) -> dict[str, str | None]:
    expected: dict[str, str | None] = {}
    for raw_name, algorithm in _CHECKSUM_RAW_HEADERS:
        value = headers.get(raw_name)
        if value is not None:
            expected[algorithm] = _checked_checksum(algorithm, value.decode("latin-1"), "header")
    for name in _announced_trailers(headers):
        if name not in _CHECKSUM_HEADERS:
            raise errors.S3InvalidRequest(f"The trailing header {name} is not supported.")
        if not chunked:
            raise errors.S3InvalidRequest("x-amz-trailer needs an aws-chunked body.")
        expected[_CHECKSUM_HEADERS[name]] = None
    if len(expected) > 1:
        raise errors.S3InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    md5 = headers.get(b"content-md5")
    if md5 is not None:
        expected["MD5"] = _checked_md5(md5.decode("latin-1"))
    return expected


def _announced_trailers(headers: Headers) -> list[str]:
    value = headers.get(b"x-amz-trailer", b"").decode("latin-1")
    return [name.strip().lower() for name in value.split(",") if name.strip()]


def _checked_checksum(algorithm: str, value: str, where: str) -> str:
    if _b64_size(value) != checksums.DIGEST_SIZES[algorithm]:
        raise errors.S3InvalidRequest(
            f"Value for x-amz-checksum-{algorithm.lower()} {where} is invalid."
        )
    return value


def _checked_md5(value: str) -> str:
    if _b64_size(value) != checksums.DIGEST_SIZES["MD5"]:
        raise errors.InvalidDigest()
    return value


def _b64_size(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return -1


def _decoded_length(headers: Headers) -> int | None:
    value = headers.get(b"x-amz-decoded-content-length")
    if value is None:
        return None
    if not value.isdigit():
        raise errors.S3InvalidRequest("x-amz-decoded-content-length must be a number.")
    return int(value)


def without_chunked_encoding(
    headers: list[tuple[bytes, bytes]], decoded_length: int | None
) -> list[tuple[bytes, bytes]]:
    """Headers as the application should see a decoded aws-chunked body.

    ``aws-chunked`` leaves Content-Encoding, and Content-Length becomes the decoded length.
    """
    kept = []
    for name, value in headers:
        if name == b"content-encoding":
            codings = [c for c in value.split(b",") if c.strip().lower() != b"aws-chunked"]
            value = b",".join(codings).strip()
            if not value:
                continue
        if name != b"content-length":
            kept.append((name, value))
    if decoded_length is not None:
        kept.append((b"content-length", str(decoded_length).encode()))
    return kept


class BodyVerifier:
    """Wraps ``receive``: decodes aws-chunked bodies and raises before a bad body ends."""

    def __init__(self, receive: Receive, scope: Scope, plan: BodyPlan) -> None:
        self._receive = receive
        self._scope = scope
        self._plan = plan
        self._decoder = (
            AwsChunkedDecoder(plan.chain, signed_trailer=plan.signed_trailer)
            if plan.chunked
            else None
        )
        self._raw_sha256 = hashlib.sha256() if plan.content_sha256 else None
        self._checksums = {name: checksums.new_checksum(name) for name in plan.expected}
        self._length = 0
        self._finished = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or self._finished:
            return message
        body: bytes = message.get("body", b"")
        more_body: bool = message.get("more_body", False)
        if self._raw_sha256 is not None:
            self._raw_sha256.update(body)
        if self._decoder is not None:
            body = self._decoder.feed(body)
        for checksum in self._checksums.values():
            checksum.update(body)
        self._length += len(body)
        if not more_body:
            self._finish()
        return {"type": "http.request", "body": body, "more_body": more_body}

    def _finish(self) -> None:
        self._check_sha256()
        trailers = self._decoder.close() if self._decoder is not None else {}
        if self._plan.decoded_length not in (None, self._length):
            raise errors.IncompleteBody(
                f"The body has {self._length} bytes but x-amz-decoded-content-length says "
                f"{self._plan.decoded_length}."
            )
        verified = {name: self._check_checksum(name, trailers) for name in self._checksums}
        verified.pop("MD5", None)
        self._finished = True
        self._scope[CHECKSUMS_KEY] = verified
        self._scope[DECODED_LENGTH_KEY] = self._length

    def _check_sha256(self) -> None:
        if self._raw_sha256 is None:
            return
        computed = self._raw_sha256.hexdigest()
        if computed != self._plan.content_sha256:
            raise errors.XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=self._plan.content_sha256,
                S3ComputedContentSHA256=computed,
            )

    def _check_checksum(self, algorithm: str, trailers: Mapping[str, str]) -> str:
        expected = self._plan.expected[algorithm]
        if expected is None:
            expected = self._trailer_checksum(algorithm, trailers)
        computed = base64.b64encode(self._checksums[algorithm].digest()).decode("ascii")
        if base64.b64decode(expected) != base64.b64decode(computed):
            if algorithm == "MD5":
                raise errors.BadDigest(
                    "The Content-MD5 you specified did not match what we received."
                )
            raise errors.BadDigest(
                f"The {algorithm} you specified did not match the calculated checksum."
            )
        return computed

    @staticmethod
    def _trailer_checksum(algorithm: str, trailers: Mapping[str, str]) -> str:
        name = f"x-amz-checksum-{algorithm.lower()}"
        if name not in trailers:
            raise errors.MalformedTrailerError(f"The announced trailing header {name} is missing.")
        return _checked_checksum(algorithm, trailers[name], "trailing header")


class _State(enum.Enum):
    SIZE = enum.auto()
    DATA = enum.auto()
    DATA_END = enum.auto()
    TRAILER = enum.auto()
    DONE = enum.auto()


class AwsChunkedDecoder:
    """Decodes an aws-chunked body fed in pieces of any size, checking chunk signatures.

    A chunk is ``<hex size>[;chunk-signature=<sig>]\\r\\n<data>\\r\\n``; a zero-size chunk ends
    the data and is followed by trailer lines ``name:value\\r\\n`` and an empty line.
    """

    def __init__(
        self, chain: sigv4.ChunkChain | None = None, *, signed_trailer: bool = False
    ) -> None:
        self._chain = chain
        self._signed_trailer = signed_trailer
        self._state = _State.SIZE
        self._line = bytearray()
        self._remaining = 0
        self._chunk_sha256 = hashlib.sha256()
        self._chunk_signature = ""
        self._trailers: dict[str, str] = {}
        self._trailer_signature = ""

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of ``data``; raises as soon as the encoding is known bad."""
        pieces: list[memoryview] = []
        view = memoryview(data)
        position = 0
        while position < len(data):
            if self._state is _State.DATA:
                position = self._take_data(view, position, pieces)
            elif self._state is _State.DONE:
                raise errors.S3InvalidRequest("There is data after the final aws-chunked chunk.")
            else:
                position = self._take_line(data, position)
        return b"".join(pieces)

    def close(self) -> dict[str, str]:
        """The trailers, once the whole body was fed."""
        if self._state is not _State.DONE:
            raise errors.IncompleteBody("The aws-chunked body ended before its final chunk.")
        return self._trailers

    def _take_data(self, view: memoryview, position: int, pieces: list[memoryview]) -> int:
        end = min(len(view), position + self._remaining)
        piece = view[position:end]
        pieces.append(piece)
        self._remaining -= end - position
        if self._chain is not None:
            self._chunk_sha256.update(piece)
            if not self._remaining:
                self._verify_chunk(self._chunk_sha256.hexdigest())
        if not self._remaining:
            self._state = _State.DATA_END
        return end

    def _take_line(self, data: bytes, position: int) -> int:
        end = data.find(b"\n", position)
        stop = len(data) if end < 0 else end + 1
        self._line += data[position:stop]
        if len(self._line) > _MAX_LINE:
            raise errors.S3InvalidRequest("An aws-chunked chunk header is too long.")
        if end >= 0:
            line = bytes(self._line).removesuffix(b"\n").removesuffix(b"\r")
            self._line.clear()
            self._on_line(line)
        return stop

    def _on_line(self, line: bytes) -> None:
        if self._state is _State.SIZE:
            self._start_chunk(line)
        elif self._state is _State.DATA_END:
            if line:
                raise errors.S3InvalidRequest("An aws-chunked chunk is longer than its size.")
            self._state = _State.SIZE
        elif line:
            self._add_trailer(line)
        else:
            self._end_trailers()

    def _start_chunk(self, line: bytes) -> None:
        size, _, extensions = line.partition(b";")
        if not _CHUNK_SIZE.fullmatch(size):
            raise errors.S3InvalidRequest("An aws-chunked chunk size is malformed.")
        self._remaining = int(size, 16)
        if self._chain is not None:
            self._chunk_signature = _chunk_signature(extensions)
            self._chunk_sha256 = hashlib.sha256()
        if self._remaining:
            self._state = _State.DATA
            return
        if self._chain is not None:
            self._verify_chunk(sigv4.EMPTY_SHA256)
        self._state = _State.TRAILER

    def _verify_chunk(self, chunk_sha256: str) -> None:
        assert self._chain is not None
        if not self._chain.verify_chunk(chunk_sha256, self._chunk_signature):
            raise errors.SignatureDoesNotMatch("The chunk signature does not match.")

    def _add_trailer(self, line: bytes) -> None:
        name, colon, value = line.decode("latin-1").partition(":")
        if not colon or len(self._trailers) >= _MAX_TRAILERS:
            raise errors.MalformedTrailerError()
        name = name.strip().lower()
        if name == "x-amz-trailer-signature":
            self._trailer_signature = value.strip()
        else:
            self._trailers[name] = value.strip()

    def _end_trailers(self) -> None:
        if self._signed_trailer:
            canonical = "".join(
                f"{name}:{value}\n" for name, value in sorted(self._trailers.items())
            )
            assert self._chain is not None
            if not self._chain.verify_trailer(canonical.encode("latin-1"), self._trailer_signature):
                raise errors.SignatureDoesNotMatch("The trailer signature does not match.")
        self._state = _State.DONE


def _chunk_signature(extensions: bytes) -> str:
    for extension in extensions.split(b";"):
        name, _, value = extension.partition(b"=")
        if name.strip() == b"chunk-signature":
            return value.strip().decode("latin-1")
    raise errors.SignatureDoesNotMatch("A chunk of a signed aws-chunked body has no signature.")
