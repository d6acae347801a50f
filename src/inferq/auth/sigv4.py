"""AWS Signature Version 4, server side: pure functions, no I/O.

The canonical request is rebuilt from what the client sent: the raw path and the raw query
string as bytes, and the raw header values. S3 signs the path as sent; every other service signs
it with dot segments and repeated slashes removed, then percent-encoded again (so ``%20`` on the
wire is ``%2520`` in the canonical request). Query keys and values are decoded, encoded the AWS
way and sorted.

Errors are neutral ``SigV4Error`` subclasses; the middleware turns them into the AWS error each
protocol expects.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_tz
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from inferq.errors import InferqError

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
#: the longest validity of a presigned URL, in seconds (seven days)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
#: a presigned URL is accepted this many seconds before its X-Amz-Date
PRESIGN_EARLY_SECONDS = 900

_UNRESERVED = re.compile(rb"[A-Za-z0-9\-._~]*")
_PLAIN_PATH = re.compile(rb"[A-Za-z0-9\-._~/]*")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
_AMZ_DATE = re.compile(r"(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z")
#: characters RFC 3986 allows unencoded in a path; S3 paths keep them as sent
_PATH_CHARACTERS = "/%!$&'()*+,;=:@-._~"


# --- errors ----------------------------------------------------------------------------------


class SigV4Error(InferqError):
    """The request's AWS Signature Version 4 authentication is invalid."""


class MissingAuthentication(SigV4Error):
    """The request carries no authentication."""


class MalformedAuthorization(SigV4Error):
    """The authorization header or query parameters are malformed."""

    def __init__(self, message: str | None = None, *, presigned: bool = False) -> None:
        super().__init__(message)
        self.presigned = presigned


class UnsupportedAuthorization(MalformedAuthorization):
    """The request is signed with another mechanism than AWS4-HMAC-SHA256."""

    def __init__(self, *, presigned: bool = False) -> None:
        super().__init__(
            "The authorization mechanism you have provided is not supported. Please use "
            "AWS4-HMAC-SHA256.",
            presigned=presigned,
        )


class UnknownAccessKey(SigV4Error):
    """The access key id is not known."""

    def __init__(self, access_key_id: str) -> None:
        super().__init__(f"The AWS Access Key Id you provided does not exist: {access_key_id}")
        self.access_key_id = access_key_id


class UnsignedHeaders(SigV4Error):
    """There were headers present in the request which were not signed"""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__()
        self.names = names


class WrongRegion(SigV4Error):
    """The credential scope names another region."""

    def __init__(self, given: str, expected: str) -> None:
        super().__init__(f"the region '{given}' is wrong; expecting '{expected}'")
        self.given = given
        self.expected = expected


class SignatureMismatch(SigV4Error):
    """The signature we calculated does not match the one provided."""

    def __init__(self, canonical_request: str, string_to_sign: str, provided: str) -> None:
        super().__init__()
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.provided = provided


class ClockSkewed(SigV4Error):
    """The request time is too far from ours."""

    def __init__(self, request_time: str, server_time: float, max_skew: float) -> None:
        super().__init__()
        self.request_time = request_time
        self.server_time = server_time
        self.max_skew = max_skew


class PresignExpired(SigV4Error):
    """The presigned URL has expired."""

    def __init__(self, request_time: str, expires: int, server_time: float) -> None:
        super().__init__()
        self.request_time = request_time
        self.expires = expires
        self.server_time = server_time


class PresignNotYetValid(PresignExpired):
    """The presigned URL is not valid yet."""


# --- parsed authentication -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credential:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True, slots=True)
class Authorization:
    """What the client claims: from an ``Authorization`` header or presigned query parameters."""

    credential: Credential
    signed_headers: tuple[str, ...]
    signature: str
    #: X-Amz-Date of a presigned URL; header authentication takes it from the headers
    timestamp: str | None = None
    #: X-Amz-Expires; None for header authentication
    expires: int | None = None

    @property
    def presigned(self) -> bool:
        return self.expires is not None


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The parts of an HTTP request that SigV4 covers, as the client sent them."""

    method: str
    raw_path: bytes
    raw_query: bytes
    headers: Sequence[tuple[bytes, bytes]]


def parse_authorization_header(value: str) -> Authorization:
    # SDKs send the same Credential and SignedHeaders on every call; only the trailing
    # signature differs. When the header ends in ", Signature=<64 hex digits>", the parse of
    # the rest is cached: it is the parse of the same text with any valid signature.
    text = value.strip()
    head, found, signature = text.rpartition("Signature=")
    if found and head.rstrip().endswith(",") and _SIGNATURE.fullmatch(signature):
        parsed = _parse_authorization_head(head)
        return Authorization(
            credential=parsed.credential,
            signed_headers=parsed.signed_headers,
            signature=signature,
        )
    return _parse_authorization_header(text)


@lru_cache(maxsize=256)
def _parse_authorization_head(head: str) -> Authorization:
    return _parse_authorization_header(head + "Signature=" + "0" * 64)


def _parse_authorization_header(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise UnsupportedAuthorization()
    fields = _comma_separated_fields(rest)
    missing = [
        name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)
    ]
    if missing:
        raise MalformedAuthorization(f"Authorization header requires '{missing[0]}' parameter.")
    return Authorization(
        credential=parse_credential(fields["Credential"]),
        signed_headers=parse_signed_headers(fields["SignedHeaders"]),
        signature=parse_signature(fields["Signature"]),
    )


def _comma_separated_fields(text: str) -> dict[str, str]:
    fields = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    return fields


def parse_presigned_query(raw_query: bytes) -> Authorization | None:
    """The presigned authentication of a query string, or None when it has none."""
    if b"X-Amz-" not in raw_query:
        if b"Signature=" in raw_query and b"AWSAccessKeyId=" in raw_query:
            raise UnsupportedAuthorization(presigned=True)
        return None
    params = _auth_params(raw_query)
    if "X-Amz-Algorithm" not in params and "X-Amz-Signature" not in params:
        return None
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise UnsupportedAuthorization(presigned=True)
    for name in ("X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"):
        if not params.get(name):
            raise MalformedAuthorization(
                f"Query-string authentication requires the {name} parameter.", presigned=True
            )
    return Authorization(
        credential=parse_credential(params["X-Amz-Credential"], presigned=True),
        signed_headers=parse_signed_headers(params["X-Amz-SignedHeaders"], presigned=True),
        signature=parse_signature(params.get("X-Amz-Signature", ""), presigned=True),
        timestamp=params["X-Amz-Date"],
        expires=_parse_expires(params["X-Amz-Expires"]),
    )


def parse_credential(value: str, *, presigned: bool = False) -> Credential:
    parts = value.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
        raise MalformedAuthorization(
            f"Credential is malformed: expecting "
            f"'<KEY>/<YYYYMMDD>/<REGION>/<SERVICE>/aws4_request', got "
            f"'{value}'.",
            presigned=presigned,
        )
    return Credential(*parts[:4])


def parse_signed_headers(value: str, *, presigned: bool = False) -> tuple[str, ...]:
    names = tuple(value.lower().split(";"))
    if "host" not in names:
        raise MalformedAuthorization("SignedHeaders must include host.", presigned=presigned)
    return names


def parse_signature(value: str, *, presigned: bool = False) -> str:
    if not _SIGNATURE.fullmatch(value):
        raise MalformedAuthorization(
            "Signature must be 64 lower-case hexadecimal digits.", presigned=presigned
        )
    return value


def _auth_params(raw_query: bytes) -> dict[str, str]:
    params = {}
    for piece in raw_query.split(b"&"):
        key, _, value = piece.partition(b"=")
        if key.startswith(b"X-Amz-"):
            params[key.decode("ascii", "replace")] = unquote_to_bytes(value).decode(
                "utf-8", "replace"
            )
    return params


def _parse_expires(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) <= MAX_PRESIGN_EXPIRES:
        raise MalformedAuthorization(
            f"X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGN_EXPIRES} (a week).",
            presigned=True,
        )
    return int(value)


# --- time ------------------------------------------------------------------------------------


def parse_amz_date(value: str) -> float:
    """Seconds since the epoch of an ISO 8601 basic timestamp such as ``20150830T123600Z``."""
    match = _AMZ_DATE.fullmatch(value)
    if match is None:
        raise MalformedAuthorization(
            f"X-Amz-Date must be in the form YYYYMMDD'T'HHMMSS'Z', got '{value}'."
        )
    year, month, day, hour, minute, second = map(int, match.groups())
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


def amz_date_from_http_date(value: str) -> str:
    """The ISO 8601 basic form of an RFC 7231 ``Date`` header, which SigV4 accepts too."""
    parsed = parsedate_tz(value)
    if parsed is None:
        raise MalformedAuthorization(f"The Date header is malformed: '{value}'.")
    return format_amz_date(calendar.timegm(parsed[:9]) - (parsed[9] or 0))


def format_amz_date(epoch: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def check_request_time(timestamp: str, now: float, max_skew: float) -> None:
    """Header authentication: the request time must be within ``max_skew`` seconds of ours."""
    if abs(now - parse_amz_date(timestamp)) > max_skew:
        raise ClockSkewed(timestamp, now, max_skew)


def check_presigned_time(timestamp: str, expires: int, now: float) -> None:
    """Presigned URLs are valid from 15 minutes before their date until date + expires."""
    signed_at = parse_amz_date(timestamp)
    if now > signed_at + expires:
        raise PresignExpired(timestamp, expires, now)
    if now < signed_at - PRESIGN_EARLY_SECONDS:
        raise PresignNotYetValid(timestamp, expires, now)


# --- canonical request -----------------------------------------------------------------------


def canonical_uri(raw_path: bytes, *, s3: bool) -> str:
    if not raw_path:
        return "/"
    if s3:
        if _PLAIN_PATH.fullmatch(raw_path):
            return raw_path.decode("ascii")
        return quote(raw_path, safe=_PATH_CHARACTERS)
    if _PLAIN_PATH.fullmatch(raw_path) and b"//" not in raw_path and b"/." not in raw_path:
        return raw_path.decode("ascii")
    return quote(remove_dot_segments(raw_path), safe="/")


def remove_dot_segments(path: bytes) -> bytes:
    """RFC 3986 dot-segment removal, also collapsing repeated slashes as AWS requires."""
    segments: list[bytes] = []
    for segment in path.split(b"/"):
        if segment == b"..":
            if segments:
                segments.pop()
        elif segment and segment != b".":
            segments.append(segment)
    normalised = b"/" + b"/".join(segments)
    if segments and path.endswith(b"/"):
        normalised += b"/"
    return normalised


def canonical_query(raw_query: bytes, *, presigned: bool = False) -> str:
    if not raw_query:
        return ""
    pairs = []
    for piece in raw_query.split(b"&"):
        if not piece:
            continue
        key, _, value = piece.partition(b"=")
        if presigned and key == b"X-Amz-Signature":
            continue
        pairs.append((_uri_encode(key), _uri_encode(value)))
    pairs.sort()
    return "&".join(f"{key}={value}" for key, value in pairs)


def _uri_encode(raw: bytes) -> str:
    if _UNRESERVED.fullmatch(raw):
        return raw.decode("ascii")
    return quote(unquote_to_bytes(raw), safe="")


def canonical_headers(headers: Iterable[tuple[bytes, bytes]], signed_headers: Sequence[str]) -> str:
    """``name:value\\n`` for each signed header, values trimmed and repeated ones joined by ','."""
    names, wanted = _signed_names(tuple(signed_headers))
    values: dict[bytes, str] = {}
    for name, value in headers:
        if name not in wanted:
            name = name.lower()
            if name not in wanted:
                continue
        # clients sign the bytes they send (UTF-8 for non-ASCII values); keep them intact
        text = " ".join(value.decode("utf-8", "surrogateescape").split())
        previous = values.get(name)
        values[name] = text if previous is None else f"{previous},{text}"
    return "".join([f"{text_name}:{values.get(name, '')}\n" for name, text_name in names])


@lru_cache(maxsize=256)
def _signed_names(
    signed_headers: tuple[str, ...],
) -> tuple[tuple[tuple[bytes, str], ...], frozenset[bytes]]:
    """The signed header names, sorted and unique, as (bytes, text) pairs; and their bytes."""
    encoded = {name.encode("latin-1"): None for name in sorted(signed_headers)}
    names = tuple((name, name.decode("latin-1")) for name in encoded)
    return names, frozenset(encoded)


def canonical_request(
    request: SignedRequest, auth: Authorization, payload_hash: str, *, s3: bool
) -> str:
    return "\n".join(
        (
            request.method,
            canonical_uri(request.raw_path, s3=s3),
            canonical_query(request.raw_query, presigned=auth.presigned),
            canonical_headers(request.headers, auth.signed_headers),
            ";".join(auth.signed_headers),
            payload_hash,
        )
    )


def string_to_sign(timestamp: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{timestamp}\n{scope}\n{digest}"


@lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.digest(key, part.encode("utf-8"), "sha256")
    return key


def sign(key: bytes, text: str) -> str:
    """Hex HMAC-SHA256 of ``text``: RFC 2104 from SHA-256 states already fed the padded key,
    which spares OpenSSL's per-call HMAC set-up (the keys repeat: see ``signing_key``)."""
    inner_pad, outer_pad = _hmac_pads(key)
    inner = inner_pad.copy()
    inner.update(text.encode("utf-8"))
    outer = outer_pad.copy()
    outer.update(inner.digest())
    return outer.hexdigest()


@lru_cache(maxsize=1024)
def _hmac_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    if len(key) > _SHA256_BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_SHA256_BLOCK, b"\0")
    return (
        hashlib.sha256(key.translate(_IPAD)),
        hashlib.sha256(key.translate(_OPAD)),
    )


_SHA256_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def authorization_header(auth: Authorization, signature: str) -> str:
    return (
        f"{ALGORITHM} Credential={auth.credential.access_key_id}/{auth.credential.scope}, "
        f"SignedHeaders={';'.join(auth.signed_headers)}, Signature={signature}"
    )


def verify(
    request: SignedRequest, auth: Authorization, timestamp: str, secret: str, payload_hash: str
) -> bytes:
    """Check the signature and return the signing key (chunk signatures chain from it)."""
    credential = auth.credential
    canonical = canonical_request(request, auth, payload_hash, s3=credential.service == "s3")
    to_sign = string_to_sign(timestamp, credential.scope, canonical)
    key = signing_key(secret, credential.date, credential.region, credential.service)
    if not hmac.compare_digest(sign(key, to_sign), auth.signature):
        raise SignatureMismatch(canonical, to_sign, auth.signature)
    return key


def check_amz_headers_signed(headers: Iterable[tuple[bytes, bytes]], auth: Authorization) -> None:
    """S3 requires every ``x-amz-*`` header of a header-signed request to be signed."""
    signed = auth.signed_headers
    unsigned = [
        name.decode("latin-1")
        for name, _ in headers
        if name.startswith(b"x-amz-") and name.decode("latin-1") not in signed
    ]
    if unsigned:
        raise UnsignedHeaders(unsigned)


# --- aws-chunked signatures ------------------------------------------------------------------


class ChunkChain:
    """Verifies the signatures of an aws-chunked body, each chained to the one before."""

    def __init__(self, key: bytes, timestamp: str, scope: str, seed_signature: str) -> None:
        self._key = key
        self._prefix = f"\n{timestamp}\n{scope}\n"
        self.previous = seed_signature

    def verify_chunk(self, chunk_sha256: str, signature: str) -> bool:
        text = f"{ALGORITHM}-PAYLOAD{self._prefix}{self.previous}\n{EMPTY_SHA256}\n{chunk_sha256}"
        return self._advance(text, signature)

    def verify_trailer(self, canonical_trailer: bytes, signature: str) -> bool:
        digest = hashlib.sha256(canonical_trailer).hexdigest()
        return self._advance(
            f"{ALGORITHM}-TRAILER{self._prefix}{self.previous}\n{digest}", signature
        )

    def _advance(self, text: str, signature: str) -> bool:
        expected = sign(self._key, text)
        if not hmac.compare_digest(expected, signature):
            return False
        self.previous = expected
        return True
