"""The SageMaker PyTorch image's default handlers; torch is imported when one first runs.

``model_fn`` loads TorchScript from ``model.pt`` (or the model dir's single .pt/.pth file) onto
CUDA when available; ``input_fn`` turns JSON/CSV/NPY into a tensor; ``predict_fn`` runs the model
in eval mode under ``torch.no_grad()``; ``output_fn`` encodes tensors as JSON/CSV/NPY.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from inferq.modelserver import codecs, content_types
from inferq.modelserver.defaults import default_output_fn
from inferq.modelserver.handlers import Defaults

MODEL_FILENAME = "model.pt"
MODEL_SUFFIXES = (".pt", ".pth")


def torch() -> ModuleType:
    """The torch module, or an error saying how to get it."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise RuntimeError(
            f"The PyTorch default handlers need torch, which is not installed for "
            f"{sys.executable}: install torch there (or list it in code/requirements.txt), "
            "or define model_fn, input_fn, predict_fn and output_fn yourself"
        ) from exc


def _device(torch_module: ModuleType) -> Any:
    return torch_module.device("cuda" if torch_module.cuda.is_available() else "cpu")


def model_files(model_dir: Path) -> list[str]:
    """The names of the .pt/.pth files directly inside ``model_dir``."""
    if not model_dir.is_dir():
        return []
    return sorted(
        path.name
        for path in model_dir.iterdir()
        if path.suffix in MODEL_SUFFIXES and path.is_file()
    )


def model_path(model_dir: Path) -> Path:
    """``model.pt``, else the single .pt/.pth file; anything else is an error."""
    if (model_dir / MODEL_FILENAME).is_file():
        return model_dir / MODEL_FILENAME
    candidates = model_files(model_dir)
    if len(candidates) != 1:
        raise ValueError(
            f"the PyTorch default model_fn needs {MODEL_FILENAME} or exactly one .pt/.pth file "
            f"in {model_dir}, found {candidates or 'none'}: save a TorchScript model as "
            f"{MODEL_FILENAME}, or define model_fn"
        )
    return model_dir / candidates[0]


def model_fn(model_dir: str) -> Any:
    torch_module = torch()
    path = model_path(Path(model_dir))
    device = _device(torch_module)
    try:
        model = torch_module.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise RuntimeError(
            f"cannot load {path} as TorchScript ({exc}): the PyTorch default model_fn loads "
            "only torch.jit.save'd models; for a state_dict or a pickled module define model_fn"
        ) from exc
    return model.to(device)


def input_fn(input_data: Any, content_type: str | None) -> Any:
    torch_module = torch()
    array = codecs.decode(input_data, content_type)
    if content_types.media_type(content_type) in content_types.UTF8_TYPES:
        tensor = torch_module.FloatTensor(array)
    else:
        tensor = torch_module.from_numpy(array)
    return tensor.to(_device(torch_module))


def predict_fn(data: Any, model: Any) -> Any:
    torch_module = torch()
    device = _device(torch_module)
    with torch_module.no_grad():
        model = model.to(device)
        model.eval()
        return model(data.to(device))


def output_fn(prediction: Any, accept: str) -> tuple[str | bytes, str]:
    torch_module = torch()
    if isinstance(prediction, torch_module.Tensor):
        prediction = prediction.detach().cpu().numpy().tolist()
    return default_output_fn(prediction, accept)


DEFAULTS = Defaults(
    label="the PyTorch defaults",
    model_fn=model_fn,
    input_fn=input_fn,
    predict_fn=predict_fn,
    output_fn=output_fn,
)
