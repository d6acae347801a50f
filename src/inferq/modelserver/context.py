"""The ``context`` a user function may take as its last argument.

It answers what handlers written for the SageMaker PyTorch/HuggingFace images ask of
TorchServe's context: ``request_processor[0].get_request_properties()``,
``get_request_header(0, name)``, ``system_properties``, ``model_name``, ``manifest``, and the
response setters. Each invocation gets its own context, so concurrent workers never share one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

INFERENCE_ID_HEADER = "x-amzn-sagemaker-inference-id"

_CANONICAL_NAMES = {
    "content-type": "Content-Type",
    "content-length": "Content-Length",
    "accept": "Accept",
    "x-amzn-sagemaker-custom-attributes": "X-Amzn-SageMaker-Custom-Attributes",
    "x-amzn-sagemaker-target-model": "X-Amzn-SageMaker-Target-Model",
    "x-amzn-sagemaker-target-variant": "X-Amzn-SageMaker-Target-Variant",
    "x-amzn-sagemaker-inference-id": "X-Amzn-SageMaker-Inference-Id",
    "x-amzn-sagemaker-enable-explanations": "X-Amzn-SageMaker-Enable-Explanations",
}


def canonical_name(lower_name: str) -> str:
    """``x-amzn-sagemaker-custom-attributes`` -> ``X-Amzn-SageMaker-Custom-Attributes``."""
    known = _CANONICAL_NAMES.get(lower_name)
    return known or "-".join(part.capitalize() for part in lower_name.split("-"))


class RequestHeaders(dict[str, str]):
    """Each request header under its lower-case and its canonical spelling; lookups ignore case.

    The HTTP server hands us lower-cased names, so "as sent" is the canonical spelling.
    """

    @classmethod
    def from_raw(cls, raw: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
        headers = cls()
        for raw_name, raw_value in raw:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name in headers:
                value = f"{headers[name]},{value}"
            dict.__setitem__(headers, name, value)
            dict.__setitem__(headers, canonical_name(name), value)
        return headers

    def __missing__(self, key: str) -> str:
        lower = key.lower()
        if lower != key and dict.__contains__(self, lower):
            return dict.__getitem__(self, lower)
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class RequestProcessor:
    """One request's headers, and the status and headers its response should carry."""

    def __init__(self, request_headers: Mapping[str, str]) -> None:
        self._request_headers = request_headers
        self._status_code = 200
        self._reason_phrase: str | None = None
        self._response_headers: dict[str, str] = {}

    def get_request_property(self, key: str) -> str | None:
        return self._request_headers.get(key)

    def get_request_properties(self) -> Mapping[str, str]:
        return self._request_headers

    def report_status(self, code: int, reason_phrase: str | None = None) -> None:
        self._status_code = code
        self._reason_phrase = reason_phrase

    def get_response_status_code(self) -> int:
        return self._status_code

    def get_response_status_phrase(self) -> str | None:
        return self._reason_phrase

    def add_response_property(self, key: str, value: str) -> None:
        self._response_headers[key] = value

    def get_response_headers(self) -> dict[str, str]:
        return self._response_headers

    def get_response_header(self, key: str) -> str | None:
        return self._response_headers.get(key)


class Context:
    """What TorchServe tells a handler about the model and the request being served."""

    def __init__(
        self,
        *,
        model_name: str,
        system_properties: dict[str, Any],
        manifest: dict[str, Any],
        request_processor: list[RequestProcessor] | None = None,
    ) -> None:
        self.model_name = model_name
        self.manifest = manifest
        self.metrics: Any = None
        self.request_processor = request_processor
        self._system_properties = system_properties
        self._request_ids: dict[int, str] | None = None

    @classmethod
    def for_model(cls, *, model_name: str, model_dir: str, handler: str) -> Context:
        """The load-time context ``model_fn`` sees; it has no request yet."""
        properties = {"model_dir": model_dir, "gpu_id": None, "batch_size": 1}
        properties |= {"server_name": "inferq", "limit_max_image_pixels": True}
        manifest = {"model": {"modelName": model_name, "handler": handler}, "runtime": "python"}
        return cls(model_name=model_name, system_properties=properties, manifest=manifest)

    def for_request(self, headers: Mapping[str, str]) -> Context:
        """A context for one invocation, sharing this one's model facts."""
        return Context(
            model_name=self.model_name,
            system_properties=self._system_properties,
            manifest=self.manifest,
            request_processor=[RequestProcessor(headers)],
        )

    @property
    def system_properties(self) -> dict[str, Any]:
        return self._system_properties

    @property
    def request_ids(self) -> dict[int, str] | None:
        if self._request_ids is None and self.request_processor:
            sent = self.request_processor[0].get_request_property(INFERENCE_ID_HEADER)
            self._request_ids = {0: sent or uuid.uuid4().hex}
        return self._request_ids

    def get_request_id(self, idx: int = 0) -> str | None:
        return (self.request_ids or {}).get(idx)

    def _processor(self, idx: int) -> RequestProcessor:
        if not self.request_processor:
            raise RuntimeError("this context belongs to model loading and has no request")
        return self.request_processor[idx]

    def get_request_header(self, idx: int, key: str) -> str | None:
        return self._processor(idx).get_request_property(key)

    def get_all_request_header(self, idx: int) -> Mapping[str, str]:
        return self._processor(idx).get_request_properties()

    def set_response_content_type(self, idx: int, value: str) -> None:
        self.set_response_header(idx, "content-type", value)

    def get_response_content_type(self, idx: int) -> str | None:
        return self.get_response_headers(idx).get("content-type")

    def get_response_status(self, idx: int) -> tuple[int, str | None]:
        processor = self._processor(idx)
        return processor.get_response_status_code(), processor.get_response_status_phrase()

    def set_response_status(self, code: int = 200, phrase: str = "", idx: int = 0) -> None:
        if self.request_processor:
            self._processor(idx).report_status(code, reason_phrase=phrase)

    def set_all_response_status(self, code: int = 200, phrase: str = "") -> None:
        for processor in self.request_processor or ():
            processor.report_status(code, reason_phrase=phrase)

    def get_response_headers(self, idx: int) -> dict[str, str]:
        return self._processor(idx).get_response_headers()

    def set_response_header(self, idx: int, key: str, value: str) -> None:
        self._processor(idx).add_response_property(key, value)
