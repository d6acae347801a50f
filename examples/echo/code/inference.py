"""A trivial model for inferq's own model server: it echoes the request JSON back.

``model_fn`` "loads" a dict; ``input_fn`` parses the JSON body; ``predict_fn`` returns the
request with an ``echoed_by`` field added; the default ``output_fn`` writes it as JSON.
Deploy it by packing this folder as ``code/`` in a model.tar.gz:

    tar -czf model.tar.gz -C examples/echo code
"""

from __future__ import annotations

import json
import os
from typing import Any

from sagemaker_inference import errors  # inferq stands in for it when it is not installed


def model_fn(model_dir: str) -> dict[str, Any]:
    return {"name": "echo", "model_dir": model_dir, "pid": os.getpid()}


def input_fn(input_data: str | bytes, content_type: str) -> Any:
    if content_type != "application/json":
        raise errors.UnsupportedFormatError(content_type)  # answered with 415
    return json.loads(input_data)


def predict_fn(data: Any, model: dict[str, Any]) -> dict[str, Any]:
    return {"input": data, "echoed_by": model["name"]}
