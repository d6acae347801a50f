"""A small model in the SageMaker inference toolkit's handler contract.

It counts words and scores sentiment from two word lists: enough to see real input turn into
real output, with no dependencies.
"""

import json

POSITIVE = {"good", "great", "love", "excellent", "happy", "fast", "nice", "best"}
NEGATIVE = {"bad", "awful", "hate", "terrible", "sad", "slow", "worst", "broken"}


def model_fn(model_dir):
    return {"positive": POSITIVE, "negative": NEGATIVE}


def input_fn(input_data, content_type):
    if content_type in ("application/json", None, ""):
        data = json.loads(input_data)
        return data["text"] if isinstance(data, dict) else str(data)
    if content_type.startswith("text/"):
        return input_data if isinstance(input_data, str) else input_data.decode()
    raise ValueError(f"Unsupported content type {content_type}: send application/json or text/*")


def predict_fn(text, model):
    words = [w.strip(".,!?;:").lower() for w in text.split()]
    score = sum(w in model["positive"] for w in words) - sum(w in model["negative"] for w in words)
    label = "positive" if score > 0 else "negative" if score < 0 else "neutral"
    return {"words": len(words), "score": score, "label": label}


def output_fn(prediction, accept):
    return json.dumps(prediction)
