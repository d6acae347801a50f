"""User model scripts the end-to-end tests deploy, in the SageMaker handler contract."""

from __future__ import annotations

BEHAVING = """
import json
import os
import threading
import time

_lock = threading.Lock()
_active = {}
_peak = {}


def model_fn(model_dir):
    return {"model_dir": model_dir}


def transform_fn(model, input_data, content_type, accept, context):
    text = input_data if isinstance(input_data, str) else input_data.decode()
    request = json.loads(text) if content_type == "application/json" else {"text": text}
    if request.get("action") == "fail":
        raise ValueError("the model refused: " + request.get("why", ""))
    group = request.get("group", "")
    with _lock:
        _active[group] = _active.get(group, 0) + 1
        _peak[group] = max(_peak.get(group, 0), _active[group])
    try:
        time.sleep(request.get("seconds", 0))
    finally:
        with _lock:
            _active[group] -= 1
    answer = {
        "echo": request,
        "content_type": content_type,
        "accept": accept,
        "custom_attributes": context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes"),
        "peak": _peak[group],
        "pid": os.getpid(),
    }
    return json.dumps(answer), "application/json"
"""
