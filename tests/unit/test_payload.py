"""Streaming body checks: aws-chunked decoding, chunk signatures, checksums, digests."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import zlib
from collections.abc import Callable
from typing import Any

import pytest
from starlette.types import Message, Receive

from inferq.auth import checksums, payload, sigv4
from inferq.aws import errors

KEY = sigv4.signing_key("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "20130524", "us-east-1", "s3")
TIMESTAMP = "20130524T000000Z"
SCOPE = "20130524/us-east-1/s3/aws4_request"
SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SPLITS = [1, 7, 8192, None]


def chain() -> sigv4.ChunkChain:
    return sigv4.ChunkChain(KEY, TIMESTAMP, SCOPE, SEED)


def aws_example_body() -> bytes:
    """The body of AWS's published signed streaming PUT: 65536 + 1024 bytes of 'a'."""
    return b"".join(
        b"%x;chunk-signature=%s\r\n%s\r\n" % (size, signature.encode(), b"a" * size)
        for size, signature in (
            (65536, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
            (1024, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
            (0, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"),
        )
    )


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def crc32(data: bytes) -> str:
    return b64(zlib.crc32(data).to_bytes(4, "big"))


def signed_chunks(data: bytes, chunk_size: int, trailers: dict[str, str] | None = None) -> bytes:
    """Sign ``data`` as a client would, chaining from the seed; trailers are signed too."""
    previous, out = SEED, bytearray()
    pieces = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] + [b""]
    for piece in pieces:
        text = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{TIMESTAMP}\n{SCOPE}\n{previous}\n"
            f"{sigv4.EMPTY_SHA256}\n{hashlib.sha256(piece).hexdigest()}"
        )
        previous = sigv4.sign(KEY, text)
        out += b"%x;chunk-signature=%s\r\n" % (len(piece), previous.encode())
        if piece:
            out += piece + b"\r\n"
    if trailers is not None:
        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(trailers.items()))
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        signature = sigv4.sign(
            KEY, f"AWS4-HMAC-SHA256-TRAILER\n{TIMESTAMP}\n{SCOPE}\n{previous}\n{digest}"
        )
        out += canonical.replace("\n", "\r\n").encode()
        out += f"x-amz-trailer-signature:{signature}\r\n".encode()
    return bytes(out + b"\r\n")


def unsigned_chunks(data: bytes, chunk_size: int, trailers: dict[str, str]) -> bytes:
    out = bytearray()
    for i in range(0, len(data), chunk_size):
        piece = data[i : i + chunk_size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    out += b"0\r\n"
    out += "".join(f"{name}:{value}\r\n" for name, value in trailers.items()).encode()
    return bytes(out + b"\r\n")


def messages_of(body: bytes, split: int | None) -> list[Message]:
    size = split or max(len(body), 1)
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    return [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1}
        for i, piece in enumerate(pieces)
    ]


def receiver(body: bytes, split: int | None = None) -> Receive:
    queue = messages_of(body, split)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


async def read_all(receive: Receive) -> bytes:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body)


def verifier(
    headers: dict[str, str],
    body: bytes,
    split: int | None = None,
    payload_hash: str = sigv4.UNSIGNED_PAYLOAD,
    scope: dict[str, Any] | None = None,
) -> payload.BodyVerifier:
    raw = {name.encode(): value.encode() for name, value in headers.items()}
    signed = payload_hash in (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER)
    plan = payload.plan_body(
        raw, payload_hash, chain=chain() if signed else None, verify_sha256=True
    )
    return payload.BodyVerifier(receiver(body, split), {} if scope is None else scope, plan)


# --- signed aws-chunked ----------------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
async def test_the_aws_streaming_example_decodes(split: int | None) -> None:
    scope: dict[str, Any] = {}
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "66560"}
    body = verifier(headers, aws_example_body(), split, sigv4.STREAMING_PAYLOAD, scope)
    assert await read_all(body) == b"a" * 66560
    assert scope == {payload.CHECKSUMS_KEY: {}, payload.DECODED_LENGTH_KEY: 66560}


@pytest.mark.parametrize("split", [1, None])
async def test_a_changed_chunk_fails_its_signature(split: int | None) -> None:
    body = aws_example_body().replace(b"a\r\n0;", b"b\r\n0;")
    with pytest.raises(errors.SignatureDoesNotMatch):
        await read_all(verifier({}, body, split, sigv4.STREAMING_PAYLOAD))


async def test_a_wrong_or_missing_chunk_signature_fails() -> None:
    wrong = aws_example_body().replace(b"=0055627c", b"=1055627c")
    with pytest.raises(errors.SignatureDoesNotMatch):
        await read_all(verifier({}, wrong, None, sigv4.STREAMING_PAYLOAD))
    missing = signed_chunks(b"hello", 8).split(b";", 1)[1]
    with pytest.raises(errors.SignatureDoesNotMatch):
        await read_all(verifier({}, b"5" + missing[80:], None, sigv4.STREAMING_PAYLOAD))


async def test_reordered_chunks_fail() -> None:
    body = signed_chunks(b"x" * 100 + b"y" * 100 + b"z" * 100, 100)
    chunk = len(b"64;chunk-signature=") + 64 + 2 + 100 + 2
    swapped = body[chunk : 2 * chunk] + body[:chunk] + body[2 * chunk :]
    with pytest.raises(errors.SignatureDoesNotMatch):
        await read_all(verifier({}, swapped, None, sigv4.STREAMING_PAYLOAD))
    assert await read_all(verifier({}, body, None, sigv4.STREAMING_PAYLOAD)) == (
        b"x" * 100 + b"y" * 100 + b"z" * 100
    )


@pytest.mark.parametrize("split", SPLITS)
async def test_signed_chunks_with_a_signed_trailer(split: int | None) -> None:
    data = os.urandom(20000)
    body = signed_chunks(data, 8192, {"x-amz-checksum-crc32": crc32(data)})
    headers = {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-decoded-content-length": "20000"}
    scope: dict[str, Any] = {}
    received = verifier(headers, body, split, sigv4.STREAMING_PAYLOAD_TRAILER, scope)
    assert await read_all(received) == data
    assert scope[payload.CHECKSUMS_KEY] == {"CRC32": crc32(data)}


async def test_a_tampered_signed_trailer_fails() -> None:
    data = b"hello world"
    body = signed_chunks(data, 8192, {"x-amz-checksum-crc32": crc32(data)})
    body = body.replace(crc32(data).encode(), crc32(b"other").encode())
    headers = {"x-amz-trailer": "x-amz-checksum-crc32"}
    with pytest.raises(errors.SignatureDoesNotMatch):
        await read_all(verifier(headers, body, None, sigv4.STREAMING_PAYLOAD_TRAILER))


# --- unsigned aws-chunked with trailers ------------------------------------------------------


CHECKSUM_FUNCTIONS: dict[str, Callable[[bytes], bytes]] = {
    "CRC32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "CRC32C": lambda d: checksums.PURE_CRC32C(d).to_bytes(4, "big"),
    "CRC64NVME": lambda d: checksums.PURE_CRC64NVME(d).to_bytes(8, "big"),
    "SHA1": lambda d: hashlib.sha1(d).digest(),
    "SHA256": lambda d: hashlib.sha256(d).digest(),
}


@pytest.mark.parametrize("algorithm", sorted(CHECKSUM_FUNCTIONS))
@pytest.mark.parametrize("split", [1, 1000, None])
async def test_unsigned_trailer_checksums(algorithm: str, split: int | None) -> None:
    data = os.urandom(3000)
    name = f"x-amz-checksum-{algorithm.lower()}"
    expected = b64(CHECKSUM_FUNCTIONS[algorithm](data))
    body = unsigned_chunks(data, 1024, {name: expected})
    headers = {"content-encoding": "aws-chunked", "x-amz-trailer": name}
    scope: dict[str, Any] = {}
    received = verifier(headers, body, split, sigv4.STREAMING_UNSIGNED_TRAILER, scope)
    assert await read_all(received) == data
    assert scope[payload.CHECKSUMS_KEY] == {algorithm: expected}
    assert scope[payload.DECODED_LENGTH_KEY] == 3000


async def test_a_wrong_trailer_checksum_is_a_bad_digest() -> None:
    body = unsigned_chunks(b"hello", 1024, {"x-amz-checksum-crc32c": crc32(b"hello")})
    headers = {"x-amz-trailer": "x-amz-checksum-crc32c"}
    with pytest.raises(errors.BadDigest, match="CRC32C"):
        await read_all(verifier(headers, body, None, sigv4.STREAMING_UNSIGNED_TRAILER))


async def test_a_missing_or_malformed_trailer_is_rejected() -> None:
    headers = {"x-amz-trailer": "x-amz-checksum-crc32"}
    for trailers, error in (
        ({}, errors.MalformedTrailerError),
        ({"x-amz-checksum-crc32": "not base64!"}, errors.S3InvalidRequest),
    ):
        body = unsigned_chunks(b"hello", 1024, trailers)
        with pytest.raises(error):
            await read_all(verifier(headers, body, None, sigv4.STREAMING_UNSIGNED_TRAILER))
    with pytest.raises(errors.MalformedTrailerError):
        body = b"5\r\nhello\r\n0\r\nno colon here\r\n\r\n"
        await read_all(verifier(headers, body, None, sigv4.STREAMING_UNSIGNED_TRAILER))


async def test_botocore_aws_chunked_encoding_decodes() -> None:
    from io import BytesIO

    from botocore.httpchecksum import AwsChunkedWrapper, Crc32Checksum

    data = os.urandom(3 * 1024 * 1024 + 17)
    wrapper = AwsChunkedWrapper(BytesIO(data), Crc32Checksum, "x-amz-checksum-crc32")
    headers = {"content-encoding": "aws-chunked", "x-amz-trailer": "x-amz-checksum-crc32"}
    scope: dict[str, Any] = {}
    received = verifier(headers, wrapper.read(), 65536, sigv4.STREAMING_UNSIGNED_TRAILER, scope)
    assert await read_all(received) == data
    assert scope[payload.CHECKSUMS_KEY] == {"CRC32": crc32(data)}


# --- framing errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"5\r\nhel", errors.IncompleteBody),
        (b"5\r\nhello\r\n", errors.IncompleteBody),
        (b"5\r\nhello\r\n0\r\n", errors.IncompleteBody),
        (b"zz\r\nhello\r\n0\r\n\r\n", errors.S3InvalidRequest),
        (b"1_0\r\nhello\r\n0\r\n\r\n", errors.S3InvalidRequest),
        (b"3\r\nhello\r\n0\r\n\r\n", errors.S3InvalidRequest),
        (b"5\r\nhello\r\n0\r\n\r\nmore", errors.S3InvalidRequest),
        (b"5" * 5000, errors.S3InvalidRequest),
    ],
    ids=["mid-data", "no-final", "no-end", "hex", "underscore", "long-data", "after", "long-line"],
)
async def test_malformed_aws_chunked_bodies_fail(body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        await read_all(verifier({"content-encoding": "aws-chunked"}, body, 2))


async def test_decoded_length_must_match() -> None:
    headers = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "6"}
    with pytest.raises(errors.IncompleteBody):
        await read_all(verifier(headers, b"5\r\nhello\r\n0\r\n\r\n"))


# --- plain bodies ----------------------------------------------------------------------------


async def test_sha256_mismatch_is_raised_before_the_final_message_is_delivered() -> None:
    claimed = hashlib.sha256(b"abcdef").hexdigest()
    received = verifier({}, b"abcdeX", 3, payload_hash=claimed)
    first = await received()
    assert first == {"type": "http.request", "body": b"abc", "more_body": True}
    with pytest.raises(errors.XAmzContentSHA256Mismatch) as failure:
        await received()
    assert failure.value.fields["ClientComputedContentSHA256"] == claimed


async def test_a_matching_sha256_passes() -> None:
    data = os.urandom(10000)
    received = verifier({}, data, 999, payload_hash=hashlib.sha256(data).hexdigest().upper())
    assert await read_all(received) == data


@pytest.mark.parametrize("algorithm", sorted(CHECKSUM_FUNCTIONS))
async def test_header_checksums(algorithm: str) -> None:
    data = os.urandom(5000)
    value = b64(CHECKSUM_FUNCTIONS[algorithm](data))
    scope: dict[str, Any] = {}
    headers = {f"x-amz-checksum-{algorithm.lower()}": value}
    assert await read_all(verifier(headers, data, 1500, scope=scope)) == data
    assert scope[payload.CHECKSUMS_KEY] == {algorithm: value}
    with pytest.raises(errors.BadDigest, match=algorithm):
        await read_all(verifier(headers, data[:-1] + b"!", 1500))


async def test_content_md5() -> None:
    data = b"the quick brown fox"
    md5 = b64(hashlib.md5(data).digest())
    scope: dict[str, Any] = {}
    await read_all(verifier({"content-md5": md5}, data, scope=scope))
    assert scope[payload.CHECKSUMS_KEY] == {}
    with pytest.raises(errors.BadDigest, match="Content-MD5"):
        await read_all(verifier({"content-md5": md5}, data.upper()))
    with pytest.raises(errors.InvalidDigest):
        verifier({"content-md5": "c2hvcnQ="}, data)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-sha1": b64(bytes(20))},
        {"x-amz-checksum-crc32": "AAAA"},
        {"x-amz-checksum-crc32": "AAAAAAAA"},
        {"x-amz-trailer": "x-amz-checksum-crc32"},
        {"x-amz-trailer": "x-amz-meta-foo", "content-encoding": "aws-chunked"},
        {"x-amz-decoded-content-length": "ten"},
    ],
    ids=["two", "short", "long", "trailer-unchunked", "trailer-unknown", "decoded-length"],
)
def test_invalid_checksum_headers_are_rejected_up_front(headers: dict[str, str]) -> None:
    with pytest.raises(errors.S3InvalidRequest):
        verifier(headers, b"")


def test_checksum_type_and_algorithm_headers_are_not_checksums() -> None:
    headers = {"x-amz-checksum-algorithm": b"CRC32", "x-amz-checksum-type": b"FULL_OBJECT"}
    raw = {name.encode(): value for name, value in headers.items()}
    plan = payload.plan_body(raw, sigv4.UNSIGNED_PAYLOAD, chain=None, verify_sha256=True)
    assert plan.expected == {}


async def test_disconnects_pass_through() -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    plan = payload.plan_body({}, sigv4.UNSIGNED_PAYLOAD, chain=None, verify_sha256=True)
    assert await payload.BodyVerifier(receive, {}, plan)() == {"type": "http.disconnect"}


def test_chunked_headers_are_rewritten_for_the_application() -> None:
    headers = [
        (b"content-encoding", b"gzip,aws-chunked"),
        (b"content-length", b"200"),
        (b"host", b"x"),
        (b"x-amz-meta-empty", b""),
    ]
    rewritten = payload.without_chunked_encoding(headers, 150)
    assert rewritten == [
        (b"content-encoding", b"gzip"),
        (b"host", b"x"),
        (b"x-amz-meta-empty", b""),
        (b"content-length", b"150"),
    ]
    assert payload.without_chunked_encoding([(b"content-encoding", b"aws-chunked")], None) == []


# --- checksum engines ------------------------------------------------------------------------


def test_crc_check_values() -> None:
    assert checksums.PURE_CRC32C(b"123456789") == 0xE3069283
    assert checksums.PURE_CRC64NVME(b"123456789") == 0xAE8B14860A799888


@pytest.mark.parametrize("size", [0, 1, 16383, 16384, 16385, 262144, 262144 + 16384 + 7])
def test_the_lane_engine_agrees_with_zlib_and_with_the_byte_loop(size: int) -> None:
    data = os.urandom(size)
    assert checksums.ReflectedCrc(0xEDB88320, 32)(data) == zlib.crc32(data)
    for engine in (checksums.PURE_CRC32C, checksums.PURE_CRC64NVME):
        assert engine(data) == engine.bytewise(engine.mask, data) ^ engine.mask


def test_streamed_checksums_equal_one_shot_ones() -> None:
    data = os.urandom(700_000)
    for algorithm, function in CHECKSUM_FUNCTIONS.items():
        checksum = checksums.new_checksum(algorithm)
        for start in range(0, len(data), 65536):
            checksum.update(data[start : start + 65536])
        assert checksum.digest() == function(data)


def test_native_crc_packages_are_adapted_to_zlibs_convention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    google = type(sys)("google_crc32c")
    google.extend = lambda crc, data: checksums.PURE_CRC32C(data, crc)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "awscrt", None)
    monkeypatch.setitem(sys.modules, "crc32c", None)
    monkeypatch.setitem(sys.modules, "google_crc32c", google)
    native = checksums._native("crc32c")
    assert native is not None
    assert native(b"6789", native(b"12345", 0)) == 0xE3069283
    assert checksums._native("crc64nvme") is None
