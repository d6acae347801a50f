"""AWS errors as the SDKs expect them, rendered in one place.

Every AWS error declares its ``code``, HTTP ``status`` and whether the sender is at fault.
``render_json`` serves both JSON protocols (rest-json for SageMaker Runtime, json 1.1 for the
control plane): botocore reads ``x-amzn-ErrorType`` for rest-json but only the body ``__type``
for json 1.1, so both are always written. ``render_xml`` serves the S3 API.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from xml.sax.saxutils import escape

from inferq.errors import InferqError


class AwsError(InferqError):
    """We encountered an internal error. Please try again."""

    code: ClassVar[str] = "InternalFailure"
    status: ClassVar[int] = 500
    sender_fault: ClassVar[bool] = False

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.fields = fields


# --- SageMaker Runtime (rest-json) ---------------------------------------------------------


class ValidationError(AwsError):
    """Inspect your request and try again."""

    code = "ValidationError"
    status = 400
    sender_fault = True


class ModelError(AwsError):
    """Model (owned by the customer in the container) returned an error."""

    code = "ModelError"
    status = 424
    sender_fault = True


class ModelNotReadyException(AwsError):
    """Either a serverless endpoint variant's resources are still being provisioned, or a
    multi-model endpoint is still downloading or loading the target model."""

    code = "ModelNotReadyException"
    status = 429
    sender_fault = True


class InternalFailure(AwsError):
    """An internal failure occurred."""


class ServiceUnavailable(AwsError):
    """The service is currently unavailable."""

    code = "ServiceUnavailable"
    status = 503


# --- SageMaker control plane (json 1.1) ----------------------------------------------------


class ValidationException(AwsError):
    """The request is invalid."""

    code = "ValidationException"
    status = 400
    sender_fault = True


class ResourceNotFound(AwsError):
    """Resource being accessed is not found."""

    code = "ResourceNotFound"
    status = 400
    sender_fault = True


class ResourceLimitExceeded(AwsError):
    """You have exceeded an SageMaker resource limit."""

    code = "ResourceLimitExceeded"
    status = 400
    sender_fault = True


class ResourceInUse(AwsError):
    """Resource being accessed is in use."""

    code = "ResourceInUse"
    status = 400
    sender_fault = True


class UnknownOperationException(AwsError):
    """The operation is not supported by this server."""

    code = "UnknownOperationException"
    status = 400
    sender_fault = True


# --- authentication (every service) --------------------------------------------------------


class SignatureDoesNotMatch(AwsError):
    """The request signature we calculated does not match the signature you provided. Check your
    AWS Secret Access Key and signing method."""

    code = "SignatureDoesNotMatch"
    status = 403
    sender_fault = True


class InvalidAccessKeyId(AwsError):
    """The AWS Access Key Id you provided does not exist in our records."""

    code = "InvalidAccessKeyId"
    status = 403
    sender_fault = True


class UnrecognizedClientException(AwsError):
    """The security token included in the request is invalid."""

    code = "UnrecognizedClientException"
    status = 403
    sender_fault = True


class RequestTimeTooSkewed(AwsError):
    """The difference between the request time and the current time is too large."""

    code = "RequestTimeTooSkewed"
    status = 403
    sender_fault = True


class MissingAuthenticationToken(AwsError):
    """Request is missing Authentication Token"""

    code = "MissingAuthenticationTokenException"
    status = 403
    sender_fault = True


class AccessDenied(AwsError):
    """Access Denied"""

    code = "AccessDenied"
    status = 403
    sender_fault = True


class IncompleteSignature(AwsError):
    """The request signature does not conform to AWS standards."""

    code = "IncompleteSignature"
    status = 400
    sender_fault = True


class InvalidSignatureException(AwsError):
    """The request signature we calculated does not match the signature you provided."""

    code = "InvalidSignatureException"
    status = 403
    sender_fault = True


# --- S3 (rest-xml) -------------------------------------------------------------------------


class S3Error(AwsError):
    """We encountered an internal error. Please try again."""

    code = "InternalError"


def _s3(code: str, status: int, doc: str) -> type[S3Error]:
    return type(
        code,
        (S3Error,),
        {"code": code, "status": status, "sender_fault": status < 500, "__doc__": doc},
    )


NoSuchBucket = _s3("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchKey = _s3("NoSuchKey", 404, "The specified key does not exist.")
NoSuchUpload = _s3(
    "NoSuchUpload",
    404,
    "The specified multipart upload does not exist. The "
    "upload ID might be invalid, or the multipart upload might have been aborted "
    "or completed.",
)
BucketAlreadyOwnedByYou = _s3(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketNotEmpty = _s3("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
InvalidBucketName = _s3("InvalidBucketName", 400, "The specified bucket is not valid.")
KeyTooLongError = _s3("KeyTooLongError", 400, "Your key is too long")
InvalidArgument = _s3("InvalidArgument", 400, "Invalid Argument")
S3InvalidRequest = _s3("InvalidRequest", 400, "Invalid Request")
InvalidRange = _s3("InvalidRange", 416, "The requested range is not satisfiable")
SlowDown = _s3("SlowDown", 503, "Please reduce your request rate.")
InvalidPart = _s3(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found. "
    "The part might not have been uploaded, or the specified entity tag might not "
    "have matched the part's entity tag.",
)
InvalidPartOrder = _s3(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. "
    "The parts list must be specified in order by part number.",
)
EntityTooSmall = _s3(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."
)
BadDigest = _s3(
    "BadDigest",
    400,
    "The Content-MD5 or checksum value that you specified did not match what the server received.",
)
InvalidDigest = _s3("InvalidDigest", 400, "The Content-MD5 you specified was invalid.")
XAmzContentSHA256Mismatch = _s3(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
IncompleteBody = _s3(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)
MalformedXML = _s3(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
MethodNotAllowed = _s3(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
S3NotImplemented = _s3(
    "NotImplemented", 501, "A header you provided implies functionality that is not implemented."
)
PreconditionFailed = _s3(
    "PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold"
)
EntityTooLarge = _s3(
    "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size."
)
AuthorizationHeaderMalformed = _s3(
    "AuthorizationHeaderMalformed", 400, "The authorization header you provided is invalid."
)
AuthorizationQueryParametersError = _s3(
    "AuthorizationQueryParametersError", 400, "The authorization query parameters are invalid."
)
MalformedTrailerError = _s3(
    "MalformedTrailerError",
    400,
    "The request contained trailing data that was not well-formed or did not conform to our "
    "published schema.",
)

MaxMessageLengthExceeded = _s3("MaxMessageLengthExceeded", 400, "Your request was too big.")
InvalidURI = _s3("InvalidURI", 400, "Couldn't parse the specified URI.")
#: a conditional GET found the client's copy current; rendered without a body
NotModified = _s3("NotModified", 304, "Not Modified")


# --- rendering -----------------------------------------------------------------------------

Headers = list[tuple[str, str]]


def render_json(
    error: AwsError, request_id: str, content_type: str = "application/json"
) -> tuple[int, Headers, bytes]:
    """Render for rest-json and json 1.1 clients alike (header and body both name the code)."""
    body: dict[str, Any] = {
        "__type": error.code,
        "message": error.message,
        "Message": error.message,
    }
    body.update(error.fields)
    headers = [
        ("content-type", content_type),
        ("x-amzn-errortype", error.code),
        ("x-amzn-requestid", request_id),
    ]
    return error.status, headers, json.dumps(body).encode()


def render_xml(error: AwsError, request_id: str, resource: str = "") -> tuple[int, Headers, bytes]:
    """Render the S3 ``<Error>`` document."""
    extra = "".join(
        f"<{escape(str(k))}>{escape(str(v))}</{escape(str(k))}>" for k, v in error.fields.items()
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{error.code}</Code><Message>{escape(error.message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{request_id}</RequestId>{extra}"
        "</Error>"
    )
    headers = [
        ("content-type", "application/xml"),
        ("x-amz-request-id", request_id),
        ("x-amzn-requestid", request_id),
    ]
    return error.status, headers, body.encode()
