"""SigV4 authentication of every HTTP request, as a pure-ASGI middleware.

A request is authenticated by its ``Authorization`` header or by presigned query parameters,
over the raw path, raw query string and raw header values it arrived with. A rejected request
is answered here, as S3 XML when the credential scope names ``s3`` (or, without usable
authentication, when the request is neither an ``X-Amz-Target`` call nor under
``/endpoints/``) and as AWS JSON otherwise.

An accepted request reaches the application with ``scope["inferq.request_id"]`` (also set on
rejected ones), ``scope["inferq.access_key"]``, ``scope["inferq.service"]`` and
``scope["inferq.region"]``, and with ``receive`` wrapped by ``payload.BodyVerifier`` whenever the
body carries something to check or decode. That wrapper raises ``AwsError`` from ``receive()``
while the application reads the body (a body that does not match its ``x-amz-content-sha256``,
chunk signatures, checksum or length), so these errors propagate into the application and its
exception handler renders them. An aws-chunked body is delivered decoded, with ``aws-chunked``
removed from Content-Encoding and Content-Length set to the decoded length.

Services other than S3 sign the body's SHA-256 without sending it in a header; such a body is
read whole (at most ``max_buffered_body`` bytes) before the signature can be checked.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferq import ids
from inferq.auth import payload, sigv4
from inferq.auth.credentials import CredentialStore
from inferq.aws import errors

REQUEST_ID_KEY = "inferq.request_id"
ACCESS_KEY_KEY = "inferq.access_key"
SERVICE_KEY = "inferq.service"
REGION_KEY = "inferq.region"

JSON_11 = "application/x-amz-json-1.1"
_SIGNED_STREAMING = (sigv4.STREAMING_PAYLOAD, sigv4.STREAMING_PAYLOAD_TRAILER)
#: the plan of a plain body with no checksum headers
_NOTHING_TO_CHECK = payload.BodyPlan()


class SigV4Middleware:
    """Authenticates every HTTP request but those to ``public_paths``; see the module."""

    def __init__(
        self,
        app: ASGIApp,
        credentials: CredentialStore,
        *,
        region: str | None = None,
        max_skew_seconds: float = 900,
        public_paths: Iterable[str] = ("/ping", "/healthz", "/metrics"),
        clock: Callable[[], float] = time.time,
        max_buffered_body: int = 8 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.region = region
        self.max_skew_seconds = max_skew_seconds
        self.public_paths = frozenset(public_paths)
        self.clock = clock
        self.max_buffered_body = max_buffered_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (
            scope["type"] == "http" and scope["path"] in self.public_paths
        ):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        scope[REQUEST_ID_KEY] = ids.uuid4()
        service = None
        try:
            headers: dict[bytes, bytes] = dict(scope["headers"])
            auth, timestamp = _claim(scope, headers)
            service = auth.credential.service
            receive = await self._authenticate(scope, headers, auth, timestamp, receive)
        except (errors.AwsError, sigv4.SigV4Error) as error:
            await _reject(scope, send, error, service)
            return
        await self.app(scope, receive, send)

    async def _authenticate(
        self,
        scope: Scope,
        headers: dict[bytes, bytes],
        auth: sigv4.Authorization,
        timestamp: str,
        receive: Receive,
    ) -> Receive:
        credential = auth.credential
        if self.region is not None and credential.region != self.region:
            raise sigv4.WrongRegion(credential.region, self.region)
        secret = self.credentials.secret_for(credential.access_key_id)
        if secret is None:
            raise sigv4.UnknownAccessKey(credential.access_key_id)
        self._check_time(auth, timestamp)
        payload_hash, receive, body = await self._payload_hash(headers, auth, receive)
        key = sigv4.verify(_signed_request(scope), auth, timestamp, secret, payload_hash)
        if credential.service == "s3" and not auth.presigned:
            sigv4.check_amz_headers_signed(scope["headers"], auth)
        scope[ACCESS_KEY_KEY] = credential.access_key_id
        scope[SERVICE_KEY] = credential.service
        scope[REGION_KEY] = credential.region
        chain = None
        if payload_hash in _SIGNED_STREAMING:
            chain = sigv4.ChunkChain(key, timestamp, credential.scope, auth.signature)
        plan = payload.plan_body(headers, payload_hash, chain=chain, verify_sha256=body is None)
        if body and plan == _NOTHING_TO_CHECK:
            # the body was read and hashed here whole: no need to stream it through a verifier
            scope[payload.CHECKSUMS_KEY] = {}
            scope[payload.DECODED_LENGTH_KEY] = len(body)
            return receive
        return _verified_receive(scope, headers, receive, plan)

    def _check_time(self, auth: sigv4.Authorization, timestamp: str) -> None:
        if auth.expires is not None:
            sigv4.check_presigned_time(timestamp, auth.expires, self.clock())
        else:
            sigv4.check_request_time(timestamp, self.clock(), self.max_skew_seconds)

    async def _payload_hash(
        self, headers: dict[bytes, bytes], auth: sigv4.Authorization, receive: Receive
    ) -> tuple[str, Receive, bytes | None]:
        """The payload hash the signature covers, the receive to use, and the body when it
        was hashed here already (None when it was not)."""
        declared = headers.get(b"x-amz-content-sha256")
        if declared is not None:
            value = declared.decode("latin-1")
            if not payload.is_valid_payload_hash(value):
                raise errors.InvalidArgument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-..., or a valid "
                    "sha256 value.",
                    ArgumentName="x-amz-content-sha256",
                    ArgumentValue=value,
                )
            return value, receive, None
        if auth.credential.service == "s3":
            if auth.presigned:
                return sigv4.UNSIGNED_PAYLOAD, receive, None
            raise errors.S3InvalidRequest(
                "Missing required header for this request: x-amz-content-sha256"
            )
        if not _has_body(headers):
            return sigv4.EMPTY_SHA256, receive, b""
        body = await _read_body(receive, self.max_buffered_body)
        return hashlib.sha256(body).hexdigest(), _replay(body, receive), body


def _claim(scope: Scope, headers: dict[bytes, bytes]) -> tuple[sigv4.Authorization, str]:
    """The authorization the request claims and its timestamp."""
    header = headers.get(b"authorization")
    if header is not None:
        if b"X-Amz-Algorithm=" in scope.get("query_string", b""):
            raise sigv4.MalformedAuthorization(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or "
                "the Authorization header should be specified."
            )
        auth = sigv4.parse_authorization_header(header.decode("latin-1"))
        timestamp = _header_timestamp(headers)
    else:
        presigned = sigv4.parse_presigned_query(scope.get("query_string", b""))
        if presigned is None or presigned.timestamp is None:
            raise sigv4.MissingAuthentication()
        auth, timestamp = presigned, presigned.timestamp
    if timestamp[:8] != auth.credential.date:
        raise sigv4.MalformedAuthorization(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
            presigned=auth.presigned,
        )
    return auth, timestamp


def _header_timestamp(headers: dict[bytes, bytes]) -> str:
    amz_date = headers.get(b"x-amz-date")
    if amz_date is not None:
        return amz_date.decode("latin-1")
    date = headers.get(b"date")
    if date is not None:
        return sigv4.amz_date_from_http_date(date.decode("latin-1"))
    raise sigv4.MalformedAuthorization(
        "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
    )


def _signed_request(scope: Scope) -> sigv4.SignedRequest:
    raw_path = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    return sigv4.SignedRequest(
        scope["method"], raw_path, scope.get("query_string", b""), scope["headers"]
    )


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise errors.ValidationError(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that first delivers ``body`` whole, then defers to the server's."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _verified_receive(
    scope: Scope, headers: dict[bytes, bytes], receive: Receive, plan: payload.BodyPlan
) -> Receive:
    if not (_has_body(headers) or plan.expected or plan.chunked):
        if plan.content_sha256 not in (None, sigv4.EMPTY_SHA256):
            raise errors.XAmzContentSHA256Mismatch(
                ClientComputedContentSHA256=plan.content_sha256,
                S3ComputedContentSHA256=sigv4.EMPTY_SHA256,
            )
        return receive
    if plan.chunked:
        scope["headers"] = payload.without_chunked_encoding(scope["headers"], plan.decoded_length)
    return payload.BodyVerifier(receive, scope, plan)


# --- rejection -------------------------------------------------------------------------------


async def _reject(
    scope: Scope, send: Send, error: errors.AwsError | sigv4.SigV4Error, service: str | None
) -> None:
    headers = dict(scope["headers"])
    if service is None:
        speaks_xml = b"x-amz-target" not in headers and not scope["path"].startswith("/endpoints/")
    else:
        speaks_xml = service == "s3"
    request_id = scope[REQUEST_ID_KEY]
    if speaks_xml:
        rendered = errors.render_xml(_as_s3_error(error), request_id, resource=scope["path"])
    else:
        content_type = JSON_11 if b"x-amz-target" in headers else "application/json"
        rendered = errors.render_json(_as_json_error(error), request_id, content_type)
    await _send_error(scope, send, *rendered)


async def _send_error(
    scope: Scope, send: Send, status: int, headers: errors.Headers, body: bytes
) -> None:
    if scope["method"] == "HEAD":
        body = b""
    raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    raw_headers.append((b"content-length", str(len(body)).encode("ascii")))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _as_s3_error(error: errors.AwsError | sigv4.SigV4Error) -> errors.AwsError:
    return _translate(error, _S3_ERRORS)


def _as_json_error(error: errors.AwsError | sigv4.SigV4Error) -> errors.AwsError:
    return _translate(error, _JSON_ERRORS)


def _translate(
    error: errors.AwsError | sigv4.SigV4Error, table: dict[type[sigv4.SigV4Error], _Factory]
) -> errors.AwsError:
    if isinstance(error, errors.AwsError):
        return error
    for cls in type(error).__mro__:
        factory = table.get(cls)
        if factory is not None:
            return factory(error)
    return errors.AccessDenied(error.message)


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _signature_expired(error: sigv4.ClockSkewed) -> str:
    now = sigv4.format_amz_date(error.server_time)
    minutes = round(error.max_skew / 60)
    if sigv4.parse_amz_date(error.request_time) < error.server_time:
        limit = sigv4.format_amz_date(error.server_time - error.max_skew)
        return (
            f"Signature expired: {error.request_time} is now earlier than {limit} "
            f"({now} - {minutes} min.)"
        )
    limit = sigv4.format_amz_date(error.server_time + error.max_skew)
    return (
        f"Signature not yet current: {error.request_time} is still later than {limit} "
        f"({now} + {minutes} min.)"
    )


def _presign_window(error: sigv4.PresignExpired) -> dict[str, Any]:
    expires_at = sigv4.parse_amz_date(error.request_time) + error.expires
    return {
        "X-Amz-Expires": error.expires,
        "Expires": _iso(expires_at),
        "ServerTime": _iso(error.server_time),
    }


_MISMATCH = "The request signature we calculated does not match the signature you provided."


def _mismatch_message(error: sigv4.SignatureMismatch) -> str:
    return (
        f"{_MISMATCH} Check your AWS Secret Access Key and signing method. Consult the service "
        "documentation for details."
        f"\n\nThe Canonical String for this request should have been\n'{error.canonical_request}'"
        f"\n\nThe String-to-Sign should have been\n'{error.string_to_sign}'\n"
    )


_Factory = Callable[[Any], errors.AwsError]

_S3_ERRORS: dict[type[sigv4.SigV4Error], _Factory] = {
    sigv4.MissingAuthentication: lambda e: errors.AccessDenied(),
    sigv4.UnsupportedAuthorization: lambda e: errors.S3InvalidRequest(e.message),
    sigv4.MalformedAuthorization: lambda e: (
        errors.AuthorizationQueryParametersError(e.message)
        if e.presigned
        else errors.AuthorizationHeaderMalformed(e.message)
    ),
    sigv4.UnknownAccessKey: lambda e: errors.InvalidAccessKeyId(AWSAccessKeyId=e.access_key_id),
    sigv4.WrongRegion: lambda e: errors.AuthorizationHeaderMalformed(
        f"The authorization header is malformed; {e.message}", Region=e.expected
    ),
    sigv4.UnsignedHeaders: lambda e: errors.AccessDenied(
        "There were headers present in the request which were not signed",
        HeadersNotSigned=", ".join(e.names),
    ),
    sigv4.SignatureMismatch: lambda e: errors.SignatureDoesNotMatch(
        f"{_MISMATCH} Check your key and signing method.",
        StringToSign=e.string_to_sign,
        SignatureProvided=e.provided,
        CanonicalRequest=e.canonical_request,
    ),
    sigv4.ClockSkewed: lambda e: errors.RequestTimeTooSkewed(
        RequestTime=e.request_time,
        ServerTime=_iso(e.server_time),
        MaxAllowedSkewMilliseconds=int(e.max_skew * 1000),
    ),
    sigv4.PresignExpired: lambda e: errors.AccessDenied(
        "Request has expired", **_presign_window(e)
    ),
    sigv4.PresignNotYetValid: lambda e: errors.AccessDenied(
        "Request is not valid yet", **_presign_window(e)
    ),
}

_JSON_ERRORS: dict[type[sigv4.SigV4Error], _Factory] = {
    sigv4.MissingAuthentication: lambda e: errors.MissingAuthenticationToken(),
    sigv4.MalformedAuthorization: lambda e: errors.IncompleteSignature(e.message),
    sigv4.UnknownAccessKey: lambda e: errors.UnrecognizedClientException(),
    sigv4.WrongRegion: lambda e: errors.InvalidSignatureException(
        f"Credential should be scoped to a valid region, not '{e.given}'."
    ),
    sigv4.SignatureMismatch: lambda e: errors.InvalidSignatureException(_mismatch_message(e)),
    sigv4.ClockSkewed: lambda e: errors.InvalidSignatureException(_signature_expired(e)),
    sigv4.PresignExpired: lambda e: errors.InvalidSignatureException(
        f"Signature expired: the presigned request was valid until {_presign_window(e)['Expires']}."
    ),
    sigv4.PresignNotYetValid: lambda e: errors.InvalidSignatureException(
        f"Signature not yet current: {e.request_time} is more than 15 min. ahead of "
        f"{sigv4.format_amz_date(e.server_time)}."
    ),
}
