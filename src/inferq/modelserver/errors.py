"""Errors with the inference toolkit's semantics, and the model server's own startup error.

User code may raise ``GenericInferenceToolkitError(status_code, message)`` (or any exception
carrying an integer ``status_code`` and a ``message``, like the toolkit's own) to choose the
HTTP status of its response; every other exception becomes a 500 carrying its message.
"""

from __future__ import annotations

from http import HTTPStatus

from inferq import errors


class BaseInferenceToolkitError(Exception):
    """A problem during inference that knows its HTTP status."""

    def __init__(self, status_code: int, message: str, phrase: str) -> None:
        self.status_code = status_code
        self.message = message
        self.phrase = phrase
        super().__init__(status_code, message, phrase)


class GenericInferenceToolkitError(BaseInferenceToolkitError):
    """Any inference problem, re-raised with the status the client should see."""

    def __init__(
        self, status_code: int, message: str | None = None, phrase: str | None = None
    ) -> None:
        message = message or "Invalid Request"
        super().__init__(status_code, message, phrase or message)


class UnsupportedFormatError(BaseInferenceToolkitError):
    """The request's content type cannot be decoded by the default ``input_fn``."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE
    role = "input_fn to deserialize the request data"

    def __init__(self, content_type: str | None) -> None:
        message = (
            f"Content type {content_type} is not supported by this framework. "
            f"Please implement {self.role}."
        )
        super().__init__(int(self.status), message, message)


class UnsupportedAcceptError(UnsupportedFormatError):
    """None of the types in the request's Accept header can be produced by ``output_fn``."""

    status = HTTPStatus.NOT_ACCEPTABLE
    role = "output_fn to serialize the response"


class StartupError(errors.ModelLoadError):
    """The model server cannot serve this model: the message says which file and function."""


def status_and_message(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and body message an exception raised during an invocation maps to."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status <= 599:
        message = getattr(exc, "message", None)
        return status, str(message) if message else _phrase(status)
    return int(HTTPStatus.INTERNAL_SERVER_ERROR), str(exc) or type(exc).__name__


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"
