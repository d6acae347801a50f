"""Which runtime serves a ``PrimaryContainer.Image``.

TensorFlow Serving images (``input_handler``/``output_handler``) are a different contract and
are refused with a clear reason rather than run wrongly.

SageMaker framework inference images (the deep learning containers and the first-party
scikit-learn/XGBoost images) run the inference toolkit's handler contract, which inferq's own
model server implements; ``http(s)://host:port`` names an already-running container.
"""

from __future__ import annotations

import re
from enum import StrEnum

from inferq import errors

#: repository names of SageMaker inference images whose entrypoint is the handler toolkit
_FRAMEWORK_REPOSITORY = re.compile(
    r"(?:^|/)(?:"
    r"pytorch-inference(?:-[a-z0-9]+)?|huggingface-pytorch-inference(?:-[a-z0-9]+)?"
    r"|mxnet-inference"
    r"|sagemaker-scikit-learn|sagemaker-xgboost|sklearn-inference|xgboost-inference"
    r"|inferq(?:-model-server)?"
    r")(?::[\w.-]+|@sha256:[0-9a-f]+)?$"
)


class Runtime(StrEnum):
    MODEL_SERVER = "model-server"
    URL = "url"


def runtime_for(image: str | None) -> Runtime:
    """Raise ``ModelLoadError`` (the endpoint's FailureReason) for images we cannot run."""
    if image is None or image in ("inferq", "inferq-model-server"):
        return Runtime.MODEL_SERVER
    if image.startswith(("http://", "https://")):
        return Runtime.URL
    if _FRAMEWORK_REPOSITORY.search(image):
        return Runtime.MODEL_SERVER
    raise errors.ModelLoadError(
        f"Image {image!r} cannot be run here: use a SageMaker framework inference image "
        "(e.g. 763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3-cpu-py311), "
        "the name 'inferq', or the http://host:port URL of a running container that speaks the "
        "SageMaker container contract."
    )
