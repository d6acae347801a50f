"""The toolkit's default decoders and encoders; numpy is imported on first use.

``decode`` turns JSON, CSV and NPY bodies into numpy arrays (NPZ into a scipy sparse matrix,
or a dict of arrays where scipy is absent); ``encode`` writes JSON, CSV or NPY. The names
``decode``, ``encode`` and ``SUPPORTED_CONTENT_TYPES`` match the toolkit's modules, so user code
importing ``sagemaker_inference.decoder``/``encoder`` can be pointed here.
"""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

from inferq.modelserver import content_types
from inferq.modelserver.errors import UnsupportedAcceptError, UnsupportedFormatError


def numpy() -> ModuleType:
    """The numpy module, or an error that says how to get it."""
    try:
        return importlib.import_module("numpy")
    except ImportError as exc:
        raise RuntimeError(
            "The default decoders and encoders need numpy, which is not installed: "
            "add numpy to code/requirements.txt, or define input_fn and output_fn"
        ) from exc


def as_text(data: bytes | bytearray | memoryview | str) -> str:
    return data if isinstance(data, str) else bytes(data).decode("utf-8")


def as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


def _json_to_array(data: Any) -> Any:
    return numpy().array(json.loads(data))


def _csv_to_array(data: Any) -> Any:
    return numpy().genfromtxt(io.StringIO(as_text(data)), delimiter=",")


def _npy_to_array(data: Any) -> Any:
    return numpy().load(io.BytesIO(as_bytes(data)), allow_pickle=False)


def _npz_to_matrix(data: Any) -> Any:
    buffer = io.BytesIO(as_bytes(data))
    try:
        sparse = importlib.import_module("scipy.sparse")
    except ImportError:
        with numpy().load(buffer, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    return sparse.load_npz(buffer)


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback: array-likes (numpy, torch) serialize through ``tolist()``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _array_to_json(value: Any) -> str:
    return json.dumps(value, default=json_default)


def _array_to_csv(value: Any) -> str:
    stream = io.StringIO()
    numpy().savetxt(stream, value, delimiter=",", fmt="%s")
    return stream.getvalue()


def _array_to_npy(value: Any) -> bytes:
    buffer = io.BytesIO()
    numpy().save(buffer, value)
    return buffer.getvalue()


_DECODERS: dict[str, Callable[[Any], Any]] = {
    content_types.JSON: _json_to_array,
    content_types.CSV: _csv_to_array,
    content_types.NPY: _npy_to_array,
    content_types.NPZ: _npz_to_matrix,
}

_ENCODERS: dict[str, Callable[[Any], str | bytes]] = {
    content_types.JSON: _array_to_json,
    content_types.CSV: _array_to_csv,
    content_types.NPY: _array_to_npy,
}

SUPPORTED_CONTENT_TYPES = frozenset(_ENCODERS)


def decode(obj: Any, content_type: str | None) -> Any:
    """Decode a request body of one of the default content types."""
    decoder = _DECODERS.get(content_types.media_type(content_type))
    if decoder is None:
        raise UnsupportedFormatError(content_type)
    return decoder(obj)


def encode(array_like: Any, content_type: str) -> str | bytes:
    """Encode a prediction as one of the default content types."""
    encoder = _ENCODERS.get(content_types.media_type(content_type))
    if encoder is None:
        raise UnsupportedAcceptError(content_type)
    return encoder(array_like)
