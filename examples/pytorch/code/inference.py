"""A PyTorch inference script as written for the SageMaker PyTorch inference image.

It runs unchanged on inferq's model server. ``model_fn`` loads the TorchScript model that
``make_model.py`` saved as ``model.pt``; ``input_fn`` reads a JSON list of floats (one row) or
a list of lists (a batch), or ``{"inputs": ...}``; ``predict_fn`` runs the model without
gradients; ``output_fn`` writes ``{"predictions": [[...], ...]}`` as JSON.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import torch

logger = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_fn(model_dir: str) -> torch.jit.ScriptModule:
    path = os.path.join(model_dir, "model.pt")
    logger.info("loading TorchScript model from %s", path)
    model = torch.jit.load(path, map_location=_device())
    model.eval()
    return model


def input_fn(request_body: str | bytes, request_content_type: str) -> torch.Tensor:
    if request_content_type != JSON_CONTENT_TYPE:
        raise ValueError(f"Unsupported content type {request_content_type}: send JSON")
    data: Any = json.loads(request_body)
    if isinstance(data, dict):
        data = data["inputs"]
    tensor = torch.tensor(data, dtype=torch.float32)
    return tensor.unsqueeze(0) if tensor.dim() == 1 else tensor


def predict_fn(input_data: torch.Tensor, model: torch.jit.ScriptModule) -> torch.Tensor:
    with torch.no_grad():
        return model(input_data.to(_device()))


def output_fn(prediction: torch.Tensor, accept: str) -> str:
    if accept not in (JSON_CONTENT_TYPE, "*/*"):
        raise ValueError(f"Unsupported accept {accept}: ask for application/json")
    return json.dumps({"predictions": prediction.cpu().tolist()})
