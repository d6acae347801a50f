"""The real-model baseline: the same ``inference.py`` called in-process, one request at a time.

Run by the model venv's interpreter (it needs torch):
``python -m bench.peers.inprocess MODEL_PY BODY_FILE COUNT``; prints one JSON line with the
seconds of each call and the wall time of them all.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WARM_UP = 20


def load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("inference", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> None:
    handlers = load(Path(argv[0]))
    body, count = Path(argv[1]).read_bytes(), int(argv[2])
    with tempfile.TemporaryDirectory() as model_dir:
        model = handlers.model_fn(model_dir)
    for _ in range(WARM_UP):
        handlers.transform_fn(model, body, "application/json", "application/json")
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        call = time.perf_counter()
        handlers.transform_fn(model, body, "application/json", "application/json")
        latencies.append(time.perf_counter() - call)
    wall = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "wall": wall}))


if __name__ == "__main__":
    main(sys.argv[1:])
