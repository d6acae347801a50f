"""MIME types the inference toolkit knows, and how request headers name them."""

from __future__ import annotations

JSON = "application/json"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
ANY = "*/*"
NPY = "application/x-npy"
NPZ = "application/x-npz"

#: request bodies of exactly these types reach ``input_fn`` as ``str``, as in the toolkit
UTF8_TYPES = (JSON, CSV)


def media_type(value: str | None) -> str:
    """``'Application/JSON; charset=utf-8'`` -> ``'application/json'``; None -> ``''``."""
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def parse_accept(accept: str) -> list[str]:
    """The media types an Accept header lists, in the order given (parameters dropped)."""
    return [media_type(part) for part in accept.split(",") if part.strip()]
