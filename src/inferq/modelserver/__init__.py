"""inferq's model server: the SageMaker inference toolkit's handler contract, on uvicorn.

A user's ``inference.py`` written for the SageMaker PyTorch, scikit-learn, XGBoost or
HuggingFace images (``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn`` or
``transform_fn``) is served unchanged on ``GET /ping`` and ``POST /invocations``. Start it with
``inferq model-server`` or ``python -m inferq.modelserver``; ``main`` is the entry point.
"""

from __future__ import annotations

from inferq.modelserver.server import main

__all__ = ["main"]
