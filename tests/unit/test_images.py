"""Which runtime serves a ``PrimaryContainer.Image`` (``runners/images.py``)."""

from __future__ import annotations

import pytest

from inferq import errors
from inferq.runners.images import Runtime, runtime_for

ECR = "763104351884.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    "image",
    [
        None,
        "inferq",
        "inferq-model-server",
        "inferq:latest",
        f"{ECR}/pytorch-inference:2.3.0-cpu-py311",
        f"{ECR}/pytorch-inference:2.1.0-gpu-py310-cu118-ubuntu20.04-sagemaker",
        f"{ECR}/pytorch-inference-neuronx:1.13.1-neuronx-py310-sdk2.18.0-ubuntu20.04",
        f"{ECR}/huggingface-pytorch-inference:2.1.0-transformers4.37.0-cpu-py310-ubuntu22.04",
        f"{ECR}/pytorch-inference@sha256:{'ab' * 32}",
        f"{ECR}/mxnet-inference:1.9.0-cpu-py38",
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        "pytorch-inference",
        "registry.example.com/team/pytorch-inference:2.3",
    ],
)
def test_handler_toolkit_images_run_on_inferqs_model_server(image: str | None) -> None:
    assert runtime_for(image) is Runtime.MODEL_SERVER


@pytest.mark.parametrize("image", ["http://127.0.0.1:9000", "https://models.internal/sentiment"])
def test_a_url_names_a_running_container(image: str) -> None:
    assert runtime_for(image) is Runtime.URL


@pytest.mark.parametrize(
    "image",
    [
        "nginx:latest",
        "nginx",
        f"{ECR}/pytorch-training:2.3.0-cpu-py311",
        f"{ECR}/huggingface-pytorch-tgi-inference:2.1.1-tgi1.4.0-gpu-py310-cu121-ubuntu20.04",
        f"{ECR}/djl-inference:0.27.0-deepspeed0.12.6-cu121",
        f"{ECR}/tensorflow-inference:2.14-cpu",
        f"{ECR}/my-pytorch-inference:1",
        "pytorch-inference-but-not:really/x",
        "ftp://models.internal/x",
    ],
)
def test_other_images_are_refused_with_what_would_work(image: str) -> None:
    with pytest.raises(errors.ModelLoadError) as raised:
        runtime_for(image)

    message = raised.value.message
    assert f"Image {image!r} cannot be run here" in message
    assert "pytorch-inference" in message and "'inferq'" in message
    assert "http://host:port" in message
