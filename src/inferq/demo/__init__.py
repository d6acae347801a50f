"""The demo endpoint ``inferq serve --demo`` deploys, through the same API a client would use:
a real ``model.tar.gz`` with ``code/inference.py`` in the embedded store, a Model naming a
PyTorch inference image, an async EndpointConfig, and an Endpoint."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import AsyncIterator
from importlib import resources
from typing import Any, cast

from inferq import errors
from inferq.aws import errors as aws_errors
from inferq.services.endpoints import EndpointService
from inferq.storage.base import ObjectStore, PutOptions

NAME = "demo"
BUCKET = "demo"
IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3.0-cpu-py311"

MODEL: dict[str, Any] = {
    "ModelName": NAME,
    "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz"},
}
ENDPOINT_CONFIG: dict[str, Any] = {
    "EndpointConfigName": NAME,
    "ProductionVariants": [
        {
            "VariantName": "AllTraffic",
            "ModelName": NAME,
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        }
    ],
    "AsyncInferenceConfig": {
        "OutputConfig": {
            "S3OutputPath": f"s3://{BUCKET}/output",
            "S3FailurePath": f"s3://{BUCKET}/failure",
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 4},
    },
}
ENDPOINT: dict[str, Any] = {"EndpointName": NAME, "EndpointConfigName": NAME}


def model_archive() -> bytes:
    """A model.tar.gz holding ``code/inference.py``, as the SageMaker SDK packs one."""
    source = resources.files("inferq.demo").joinpath("code/inference.py").read_bytes()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("code/inference.py")
        info.size = len(source)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(source))
    return buffer.getvalue()


async def deploy(store: ObjectStore, endpoints: EndpointService) -> None:
    """Create what is missing; an existing demo endpoint is left as it is."""
    await _ensure_bucket(store)
    await store.put_object(
        BUCKET,
        "model/model.tar.gz",
        _once(model_archive()),
        PutOptions(content_type="application/gzip"),
    )
    steps = (
        (endpoints.create_model, MODEL),
        (endpoints.create_endpoint_config, ENDPOINT_CONFIG),
        (endpoints.create_endpoint, ENDPOINT),
    )
    for create, request in steps:
        try:
            await create(cast(Any, request))
        except errors.Conflict:
            continue


async def _ensure_bucket(store: ObjectStore) -> None:
    with contextlib.suppress(aws_errors.BucketAlreadyOwnedByYou):
        await store.create_bucket(BUCKET)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
