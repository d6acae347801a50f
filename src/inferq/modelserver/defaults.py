"""Framework defaults for the handlers a user module leaves out, and how they are chosen.

The generic defaults are the inference toolkit's: ``input_fn`` decodes JSON/CSV/NPY/NPZ,
``output_fn`` encodes JSON/CSV/NPY by Accept; there is no default ``model_fn`` or
``predict_fn``. The PyTorch defaults (``pytorch_defaults``) add TorchScript loading and
prediction; they apply when asked for, or when the model dir holds ``.pt``/``.pth`` files.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from inferq.modelserver import codecs, content_types
from inferq.modelserver.errors import UnsupportedAcceptError
from inferq.modelserver.handlers import Defaults


class Framework(StrEnum):
    AUTO = "auto"
    PYTORCH = "pytorch"
    GENERIC = "generic"


def default_input_fn(input_data: Any, content_type: str | None) -> Any:
    """Decode the body of a toolkit content type into a numpy array."""
    return codecs.decode(input_data, content_type)


def default_output_fn(prediction: Any, accept: str) -> tuple[str | bytes, str]:
    """Encode ``prediction`` as the first type in ``accept`` that has an encoder."""
    for content_type in content_types.parse_accept(accept):
        if content_type in codecs.SUPPORTED_CONTENT_TYPES:
            return codecs.encode(prediction, content_type), content_type
    raise UnsupportedAcceptError(accept)


GENERIC = Defaults(
    label="the inference toolkit's defaults",
    model_fn=None,
    input_fn=default_input_fn,
    predict_fn=None,
    output_fn=default_output_fn,
    model_fn_hint=(
        "define model_fn(model_dir) (the PyTorch default model_fn applies only to a model "
        "dir holding model.pt or a single .pt/.pth file)"
    ),
)


def defaults_for(framework: Framework, model_dir: Path) -> Defaults:
    """The defaults for ``framework``; AUTO means PyTorch when ``model_dir`` holds .pt/.pth."""
    from inferq.modelserver import pytorch_defaults

    if framework is Framework.PYTORCH:
        return pytorch_defaults.DEFAULTS
    if framework is Framework.AUTO and pytorch_defaults.model_files(model_dir):
        return pytorch_defaults.DEFAULTS
    return GENERIC
