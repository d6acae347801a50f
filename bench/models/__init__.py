"""The ``code/inference.py`` of each benchmark model, in the SageMaker handler contract."""

from __future__ import annotations

from pathlib import Path


def source(name: str) -> str:
    """The text of ``bench/models/<name>.py``, deployed as ``code/inference.py``."""
    return Path(__file__).with_name(f"{name}.py").read_text()
