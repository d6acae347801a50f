"""Large payloads: ``size=N`` as the input returns N bytes; any other input returns its length."""

from __future__ import annotations

import json


def model_fn(model_dir: str) -> None:
    return None


def transform_fn(model: None, data: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    if data.startswith(b"size="):
        return bytes(int(data[5:])), "application/octet-stream"
    return json.dumps({"bytes": len(data)}).encode(), "application/json"
