"""The generated shapes are a true, current slice of the installed botocore's models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import botocore.session
import pytest

from inferq.api import control as control_api
from inferq.aws._shapes import control, runtime

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_shapes", ROOT / "scripts" / "gen_shapes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_shapes", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", ["runtime.py", "control.py", "__init__.py"])
def test_generated_files_match_the_installed_botocore(path: str) -> None:
    expected = {p.name: text for p, text in _generator().generated().items()}
    actual = (ROOT / "src" / "inferq" / "aws" / "_shapes" / path).read_text(encoding="utf-8")
    assert actual == expected[path], (
        f"_shapes/{path} is stale: run `.venv/bin/python scripts/gen_shapes.py`"
    )


@pytest.mark.parametrize(
    ("service", "module"), [("sagemaker-runtime", runtime), ("sagemaker", control)]
)
def test_every_operation_matches_botocore_http_binding(service: str, module: ModuleType) -> None:
    model = botocore.session.get_session().get_service_model(service)
    for name, ours in module.OPERATIONS.items():
        theirs = model.operation_model(name)
        assert ours["method"] == theirs.http["method"], name
        assert ours["requestUri"] == theirs.http["requestUri"], name
        assert ours["responseCode"] == theirs.http.get("responseCode", 200), name
        assert ours["input"] == theirs.input_shape.name, name


def test_invoke_endpoint_async_answers_202() -> None:
    # moto answers 200; botocore does not care, but the model (and JS v3's codegen) says 202
    assert runtime.OPERATIONS["InvokeEndpointAsync"]["responseCode"] == 202
    assert runtime.OPERATIONS["InvokeEndpoint"]["responseCode"] == 200


def test_header_bindings_come_from_the_model() -> None:
    members = runtime.SHAPES["InvokeEndpointAsyncInput"]["members"]
    assert members["InferenceId"] == {
        "shape": "InferenceId",
        "location": "header",
        "locationName": "X-Amzn-SageMaker-Inference-Id",
    }
    assert runtime.SHAPES["InvokeEndpointAsyncInput"]["payload"] == "Body"


def test_the_control_api_serves_exactly_the_generated_operations() -> None:
    assert set(control_api.HANDLERS) == set(control.OPERATIONS)
    assert control.METADATA["protocol"] == "json"
    assert control.METADATA["targetPrefix"] == "SageMaker"


def test_the_closure_is_complete() -> None:
    for shapes in (runtime.SHAPES, control.SHAPES):
        for name, shape in shapes.items():
            refs = [m["shape"] for m in shape.get("members", {}).values()]
            refs += [shape[k] for k in ("member", "key", "value") if k in shape]
            assert all(ref in shapes for ref in refs), name
