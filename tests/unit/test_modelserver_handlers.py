"""The model server's handler contract, run in-process: resolution, codecs, errors, context."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import mmap
import sys
import tarfile
import threading
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferq import errors as inferq_errors
from inferq.modelserver import codecs, compat, handlers, pytorch_defaults, requirements
from inferq.modelserver.app import ClientGone, ModelServerApp, ModelState, read_body
from inferq.modelserver.archive import extract_archive
from inferq.modelserver.config import ServerConfig
from inferq.modelserver.context import Context, RequestHeaders
from inferq.modelserver.defaults import GENERIC, Framework, defaults_for
from inferq.modelserver.errors import (
    GenericInferenceToolkitError,
    StartupError,
    UnsupportedAcceptError,
    UnsupportedFormatError,
    status_and_message,
)
from inferq.modelserver.executor import WorkerPool
from inferq.modelserver.loader import load_model
from inferq.modelserver.server import parse_config
from inferq.modelserver.transformer import Response, Transformer

ORIGIN = "/models/m/code/inference.py"


def user_module(**functions: Callable[..., Any]) -> types.ModuleType:
    module = types.ModuleType("inference")
    for name, function in functions.items():
        setattr(module, name, function)
    return module


def load_context() -> Context:
    return Context.for_model(model_name="model", model_dir="/models/m", handler=ORIGIN)


def transformer_for(
    module: types.ModuleType, default_accept: str = "application/json"
) -> Transformer:
    handler_set = handlers.resolve(module, ORIGIN, GENERIC)
    context = load_context()
    model = handler_set.model_fn.call("/models/m", context=context)
    return Transformer(handler_set, model, context, default_accept)


def invoke(transformer: Transformer, body: bytes, **headers: str) -> Response:
    raw = [
        (name.replace("_", "-").lower().encode(), value.encode()) for name, value in headers.items()
    ]
    return transformer.invoke(body, raw)


def model_fn(model_dir: str) -> dict[str, str]:
    return {"model_dir": model_dir}


def doubling_predict_fn(data: Any, model: Any) -> Any:
    return data * 2


# --- resolution -----------------------------------------------------------------------------


def test_user_functions_win_and_defaults_fill_the_gaps() -> None:
    def predict_fn(data: Any, model: Any) -> Any:
        return data

    resolved = handlers.resolve(
        user_module(model_fn=model_fn, predict_fn=predict_fn), ORIGIN, GENERIC
    )
    assert resolved.model_fn.func is model_fn
    assert resolved.predict_fn.func is predict_fn
    assert resolved.input_fn.func is GENERIC.input_fn
    assert resolved.output_fn.func is GENERIC.output_fn
    assert resolved.transform_fn is None
    assert resolved.model_fn.origin == ORIGIN


def test_transform_fn_with_step_functions_is_a_value_error() -> None:
    def transform_fn(model: Any, data: Any, content_type: str, accept: str) -> Any:
        return data

    module = user_module(model_fn=model_fn, transform_fn=transform_fn, input_fn=lambda d, c: d)
    with pytest.raises(ValueError, match="Cannot use transform_fn implementation in conjunction"):
        handlers.resolve(module, ORIGIN, GENERIC)


def test_missing_model_fn_without_a_default_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="No model_fn in"):
        handlers.resolve(user_module(predict_fn=doubling_predict_fn), ORIGIN, GENERIC)


def test_missing_predict_fn_without_a_default_is_a_startup_error() -> None:
    with pytest.raises(StartupError, match="Neither predict_fn nor transform_fn"):
        handlers.resolve(user_module(model_fn=model_fn), ORIGIN, GENERIC)


def test_no_user_module_and_no_framework_default_fails_at_load() -> None:
    with pytest.raises(StartupError, match=r"model\.pt"):
        handlers.resolve(None, "the model (no code/inference.py)", GENERIC)


def test_a_handler_that_is_not_callable_is_reported() -> None:
    with pytest.raises(StartupError, match=r"predict_fn in .* is a int"):
        handlers.resolve(user_module(model_fn=model_fn, predict_fn=3), ORIGIN, GENERIC)  # type: ignore[arg-type]


def test_auto_framework_picks_pytorch_only_for_model_files(tmp_path: Path) -> None:
    assert defaults_for(Framework.AUTO, tmp_path) is GENERIC
    (tmp_path / "weights.pth").write_bytes(b"")
    assert defaults_for(Framework.AUTO, tmp_path) is pytorch_defaults.DEFAULTS
    assert defaults_for(Framework.GENERIC, tmp_path) is GENERIC
    assert defaults_for(Framework.PYTORCH, tmp_path / "absent") is pytorch_defaults.DEFAULTS


# --- arity and context --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "takes_context"),
    [
        (lambda data, model: None, False),
        (lambda data, model, context: None, True),
        (lambda data, model, context=None: None, True),
        (lambda *args: None, False),
    ],
)
def test_context_is_detected_by_arity(func: Callable[..., Any], takes_context: bool) -> None:
    assert handlers.bind("predict_fn", func, ORIGIN).takes_context is takes_context


def test_wrong_arity_is_reported_with_the_expected_arguments() -> None:
    with pytest.raises(StartupError, match=r"takes 1 arguments; it must take 2 \(data, model\)"):
        handlers.bind("predict_fn", lambda data: None, ORIGIN)


def test_context_is_passed_only_to_functions_that_take_it() -> None:
    seen: dict[str, Any] = {}

    def input_fn(input_data: str, content_type: str, context: Context) -> Any:
        seen["input"] = context
        return json.loads(input_data)

    def predict_fn(data: Any, model: Any) -> Any:
        return data

    def output_fn(prediction: Any, accept: str, context: Context) -> Any:
        seen["output"] = context
        return json.dumps(prediction)

    module = user_module(
        model_fn=model_fn, input_fn=input_fn, predict_fn=predict_fn, output_fn=output_fn
    )
    response = invoke(transformer_for(module), b"[1]", content_type="application/json")
    assert response.status == 200
    assert isinstance(seen["input"], Context)
    assert seen["input"] is seen["output"]


def test_model_fn_receives_the_load_context() -> None:
    def model_fn_with_context(model_dir: str, context: Context) -> Any:
        return (
            context.model_name,
            context.system_properties["model_dir"],
            context.request_processor,
        )

    resolved = handlers.resolve(
        user_module(model_fn=model_fn_with_context, predict_fn=doubling_predict_fn), ORIGIN, GENERIC
    )
    assert resolved.model_fn.call("/models/m", context=load_context()) == (
        "model",
        "/models/m",
        None,
    )


# --- the transform flow -------------------------------------------------------------------------


def test_json_and_csv_bodies_reach_input_fn_as_str_and_others_as_bytes() -> None:
    types_seen: list[type] = []

    def input_fn(input_data: Any, content_type: str) -> Any:
        types_seen.append(type(input_data))
        return 1

    module = user_module(model_fn=model_fn, input_fn=input_fn, predict_fn=doubling_predict_fn)
    transformer = transformer_for(module)
    for content_type in ("application/json", "text/csv", "application/x-npy", "image/png"):
        assert invoke(transformer, b"1", content_type=content_type).status == 200
    assert types_seen == [str, str, bytes, bytes]


def test_default_decoders_and_encoders_round_trip_json() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(transformer, b"[[1, 2], [3, 4]]", content_type="application/json")
    assert (response.status, response.content_type) == (200, "application/json")
    assert json.loads(response.body) == [[2, 4], [6, 8]]


def test_default_csv_in_and_out() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(transformer, b"1,2\n3,4\n", content_type="text/csv", accept="text/csv")
    assert (response.status, response.content_type) == (200, "text/csv")
    assert response.body == b"2.0,4.0\n6.0,8.0\n"


def test_default_npy_round_trip() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.float32).reshape(2, 3))
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(
        transformer, buffer.getvalue(), content_type="application/x-npy", accept="application/x-npy"
    )
    assert response.content_type == "application/x-npy"
    result = np.load(io.BytesIO(response.body))
    assert result.dtype == np.float32
    assert result.tolist() == [[0, 2, 4], [6, 8, 10]]


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_missing_or_wildcard_accept_uses_the_default_accept(accept: str | None) -> None:
    transformer = transformer_for(
        user_module(model_fn=model_fn, predict_fn=doubling_predict_fn), default_accept="text/csv"
    )
    headers = {"content_type": "application/json"} | ({"accept": accept} if accept else {})
    response = invoke(transformer, b"[1, 2]", **headers)
    assert (response.content_type, response.body) == ("text/csv", b"2\n4\n")


def test_first_encodable_accept_type_is_chosen() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(
        transformer, b"[1]", content_type="application/json", accept="image/png, text/csv;q=0.9"
    )
    assert response.content_type == "text/csv"


def test_transform_fn_tuple_sets_the_content_type() -> None:
    def transform_fn(model: Any, input_data: str, content_type: str, accept: str) -> Any:
        return f"{content_type}|{accept}|{input_data}", "text/x-custom"

    transformer = transformer_for(user_module(model_fn=model_fn, transform_fn=transform_fn))
    response = invoke(
        transformer, b'"x"', content_type="application/json", accept="application/json"
    )
    assert (response.status, response.content_type) == (200, "text/x-custom")
    assert response.body == b'application/json|application/json|"x"'


def test_transform_fn_plain_result_uses_the_accept_type() -> None:
    transformer = transformer_for(
        user_module(model_fn=model_fn, transform_fn=lambda m, d, c, a: {"ok": True})
    )
    response = invoke(
        transformer, b"{}", content_type="application/json", accept="application/json"
    )
    assert (response.content_type, json.loads(response.body)) == ("application/json", {"ok": True})


# --- errors -------------------------------------------------------------------------------------


def test_unsupported_content_type_is_415() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(transformer, b"hello", content_type="text/plain")
    assert response.status == 415
    assert b"text/plain" in response.body and b"input_fn" in response.body


def test_unsupported_accept_is_406() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    response = invoke(transformer, b"[1]", content_type="application/json", accept="image/png")
    assert response.status == 406
    assert b"image/png" in response.body and b"output_fn" in response.body


def test_user_exception_is_500_with_its_message(caplog: pytest.LogCaptureFixture) -> None:
    def predict_fn(data: Any, model: Any) -> Any:
        raise KeyError("feature 'age' is missing")

    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn))
    response = invoke(transformer, b"[1]", content_type="application/json")
    assert (response.status, response.content_type) == (500, "text/plain; charset=utf-8")
    assert response.body == b"\"feature 'age' is missing\""
    assert any(record.exc_info for record in caplog.records), "the traceback goes to the log"


@pytest.mark.parametrize(
    ("exception", "status", "message"),
    [
        (GenericInferenceToolkitError(422, "bad shape"), 422, "bad shape"),
        (GenericInferenceToolkitError(400), 400, "Invalid Request"),
        (UnsupportedFormatError("text/plain"), 415, "Content type text/plain is not supported"),
        (UnsupportedAcceptError("image/png"), 406, "Content type image/png is not supported"),
        (RuntimeError(), 500, "RuntimeError"),
    ],
)
def test_toolkit_errors_choose_their_status(
    exception: Exception, status: int, message: str
) -> None:
    got_status, got_message = status_and_message(exception)
    assert got_status == status
    assert got_message.startswith(message)


def test_a_foreign_toolkit_style_error_is_honoured_by_duck_typing() -> None:
    class TheirError(Exception):
        def __init__(self) -> None:
            self.status_code, self.message = 409, "try later"

    def predict_fn(data: Any, model: Any) -> Any:
        raise TheirError

    response = invoke(
        transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn)),
        b"1",
        content_type="application/json",
    )
    assert (response.status, response.body) == (409, b"try later")


def test_invalid_utf8_json_body_is_400() -> None:
    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=doubling_predict_fn))
    assert invoke(transformer, b"\xff\xfe", content_type="application/json").status == 400


def test_an_unserializable_result_is_500_saying_why() -> None:
    transformer = transformer_for(
        user_module(model_fn=model_fn, transform_fn=lambda m, d, c, a: object())
    )
    response = invoke(transformer, b"{}", content_type="application/json")
    assert response.status == 500
    assert b"neither bytes nor str" in response.body


def test_even_system_exit_in_user_code_is_answered() -> None:
    def predict_fn(data: Any, model: Any) -> Any:
        sys.exit(3)

    response = invoke(
        transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn)),
        b"1",
        content_type="application/json",
    )
    assert response.status == 500


# --- context ------------------------------------------------------------------------------------


def test_context_exposes_headers_properties_and_manifest() -> None:
    seen: dict[str, Any] = {}

    def predict_fn(data: Any, model: Any, context: Context) -> Any:
        properties = context.request_processor[0].get_request_properties()  # type: ignore[index]
        seen.update(
            lower=properties["x-amzn-sagemaker-custom-attributes"],
            canonical=properties["X-Amzn-SageMaker-Custom-Attributes"],
            content_type=properties.get("Content-Type"),
            by_index=context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes"),
            any_case=context.get_request_header(0, "ACCEPT"),
            system=context.system_properties,
            model_name=context.model_name,
            manifest=context.manifest,
            request_id=context.get_request_id(0),
        )
        return [1]

    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn))
    invoke(
        transformer, b"[1]", content_type="application/json", accept="application/json",
        x_amzn_sagemaker_custom_attributes="trace=1", x_amzn_sagemaker_inference_id="req-7",
    )  # fmt: skip
    assert seen["lower"] == seen["canonical"] == seen["by_index"] == "trace=1"
    assert (seen["content_type"], seen["any_case"]) == ("application/json", "application/json")
    assert seen["system"]["model_dir"] == "/models/m"
    assert (seen["system"]["gpu_id"], seen["system"]["batch_size"]) == (None, 1)
    assert seen["model_name"] == "model"
    assert seen["manifest"]["model"]["modelName"] == "model"
    assert seen["request_id"] == "req-7"


def test_context_can_set_the_response_status_and_headers() -> None:
    def predict_fn(data: Any, model: Any, context: Context) -> Any:
        context.set_response_status(201, "Created")
        context.set_response_header(0, "X-Model-Version", "3")
        context.set_response_header(0, "Content-Length", "999")  # the server owns this one
        return [1]

    response = invoke(
        transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn)),
        b"[1]",
        content_type="application/json",
    )
    assert response.status == 201
    assert response.headers == (("X-Model-Version", "3"),)


def test_each_request_gets_its_own_context() -> None:
    contexts: list[Context] = []

    def predict_fn(data: Any, model: Any, context: Context) -> Any:
        contexts.append(context)
        return [1]

    transformer = transformer_for(user_module(model_fn=model_fn, predict_fn=predict_fn))
    for attributes in ("a", "b"):
        invoke(
            transformer,
            b"[1]",
            content_type="application/json",
            x_amzn_sagemaker_custom_attributes=attributes,
        )
    assert [c.get_request_header(0, "x-amzn-sagemaker-custom-attributes") for c in contexts] == [
        "a",
        "b",
    ]
    assert contexts[0].system_properties is contexts[1].system_properties


def test_request_headers_ignore_case_and_join_repeats() -> None:
    headers = RequestHeaders.from_raw([(b"x-custom", b"1"), (b"x-custom", b"2")])
    assert headers["X-CUSTOM"] == headers.get("x-Custom") == "1,2"
    assert "X-Custom" in headers and "x-missing" not in headers
    assert headers.get("x-missing", "default") == "default"


def test_the_load_context_has_no_request() -> None:
    with pytest.raises(RuntimeError, match="no request"):
        load_context().get_request_header(0, "accept")


# --- codecs -------------------------------------------------------------------------------------


def test_decoders_follow_the_toolkit() -> None:
    assert codecs.decode("[1, 2]", "application/json").tolist() == [1, 2]
    assert codecs.decode(b"[1, 2]", "application/json; charset=utf-8").tolist() == [1, 2]
    assert codecs.decode("1,2\n3,4", "text/csv").tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(UnsupportedFormatError):
        codecs.decode(b"", "application/xml")


def test_npz_decodes_to_a_dict_of_arrays_without_scipy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([1, 2]))
    decoded = codecs.decode(buffer.getvalue(), "application/x-npz")
    assert decoded["a"].tolist() == [1, 2]


def test_npy_with_pickled_objects_is_refused() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        codecs.decode(buffer.getvalue(), "application/x-npy")


def test_encoders_follow_the_toolkit() -> None:
    assert codecs.encode(np.array([1.5, 2.0]), "application/json") == "[1.5, 2.0]"
    assert codecs.encode({"p": np.float32(0.5)}, "application/json") == '{"p": 0.5}'
    assert codecs.encode([[1, 2], [3, 4]], "text/csv") == "1,2\n3,4\n"
    assert np.load(io.BytesIO(codecs.encode([1, 2], "application/x-npy"))).tolist() == [1, 2]  # type: ignore[arg-type]
    assert {"application/json", "text/csv", "application/x-npy"} == codecs.SUPPORTED_CONTENT_TYPES
    with pytest.raises(UnsupportedAcceptError):
        codecs.encode([1], "application/x-npz")


# --- PyTorch defaults, with a stand-in torch -----------------------------------------------------


class FakeTensor:
    def __init__(self, values: Any) -> None:
        self.values = np.asarray(values, dtype=np.float32)

    def to(self, device: Any) -> FakeTensor:
        return self

    def detach(self) -> FakeTensor:
        return self

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> Any:
        return self.values


class FakeModel:
    def __init__(self) -> None:
        self.evaluated = False
        self.grad_enabled_during_call: bool | None = None

    def to(self, device: Any) -> FakeModel:
        return self

    def eval(self) -> None:
        self.evaluated = True

    def __call__(self, tensor: FakeTensor) -> FakeTensor:
        self.grad_enabled_during_call = fake_torch.grad_enabled
        return FakeTensor(tensor.values * 10)


class FakeTorch(types.ModuleType):
    Tensor = FakeTensor

    def __init__(self) -> None:
        super().__init__("torch")
        self.grad_enabled = True
        self.loaded: list[str] = []
        self.cuda = types.SimpleNamespace(is_available=lambda: False)
        self.jit = types.SimpleNamespace(load=self._load)

    def _load(self, path: str, map_location: Any) -> FakeModel:
        self.loaded.append(path)
        return FakeModel()

    def device(self, name: str) -> str:
        return name

    def FloatTensor(self, array: Any) -> FakeTensor:
        return FakeTensor(array)

    def from_numpy(self, array: Any) -> FakeTensor:
        return FakeTensor(array)

    @contextlib.contextmanager
    def no_grad(self) -> Iterator[None]:
        self.grad_enabled = False
        try:
            yield
        finally:
            self.grad_enabled = True


fake_torch = FakeTorch()


def test_pytorch_defaults_load_torchscript_and_predict_without_grad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    (tmp_path / "model.pt").write_bytes(b"")
    resolved = handlers.resolve(None, "the model", pytorch_defaults.DEFAULTS)
    model = resolved.model_fn.call(str(tmp_path), context=None)
    assert fake_torch.loaded[-1] == str(tmp_path / "model.pt")
    transformer = Transformer(resolved, model, load_context(), "application/json")
    response = invoke(transformer, b"[[1, 2]]", content_type="application/json")
    assert (response.status, json.loads(response.body)) == (200, [[10.0, 20.0]])
    assert model.evaluated and model.grad_enabled_during_call is False


def test_pytorch_default_model_fn_takes_the_single_pth_file(tmp_path: Path) -> None:
    (tmp_path / "weights.pth").write_bytes(b"")
    assert pytorch_defaults.model_path(tmp_path) == tmp_path / "weights.pth"
    (tmp_path / "other.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"exactly one \.pt/\.pth file"):
        pytorch_defaults.model_path(tmp_path)


def test_pytorch_defaults_without_torch_say_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(RuntimeError, match="need torch, which is not installed"):
        pytorch_defaults.model_fn("/models/m")


# --- source archives ----------------------------------------------------------------------------


def make_archive(path: Path, add: Callable[[tarfile.TarFile], None]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        add(tar)
    return path


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"x = 1\n") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    tar.addfile(info)


def test_a_plain_source_archive_extracts(tmp_path: Path) -> None:
    def add(tar: tarfile.TarFile) -> None:
        add_file(tar, "serve.py")
        add_file(tar, "lib/helper.py")
        add_link(tar, "lib/alias.py", "helper.py")

    extract_archive(make_archive(tmp_path / "ok.tar.gz", add), tmp_path / "out")
    assert (tmp_path / "out" / "lib" / "helper.py").read_bytes() == b"x = 1\n"


@pytest.mark.parametrize(
    ("add", "reason"),
    [
        (lambda tar: add_file(tar, "/etc/evil.py"), "absolute path"),
        (lambda tar: add_file(tar, "code/../../evil.py"), "'..'"),
        (lambda tar: add_link(tar, "link", "../../etc/passwd"), "links outside"),
        (lambda tar: add_link(tar, "link", "/etc/passwd"), "absolute path"),
        (lambda tar: add_link(tar, "hard", "../x", tarfile.LNKTYPE), "links outside"),
        (lambda tar: add_link(tar, "fifo", "", tarfile.FIFOTYPE), "special file"),
    ],
)
def test_unsafe_archive_members_are_refused(
    tmp_path: Path, add: Callable[[tarfile.TarFile], None], reason: str
) -> None:
    archive = make_archive(tmp_path / "bad.tar.gz", add)
    with pytest.raises(StartupError, match=reason):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.py").exists()


# --- the ASGI app -------------------------------------------------------------------------------


async def call_app(app: ModelServerApp, method: str, path: str, chunks: list[bytes]) -> Response:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json")]
    await app({"type": "http", "method": method, "path": path, "headers": headers}, receive, send)
    start, body = sent
    response_headers = dict(start["headers"])
    assert int(response_headers[b"content-length"]) == len(body["body"])
    return Response(start["status"], body["body"], response_headers[b"content-type"].decode())


async def test_the_app_routes_pings_and_invocations() -> None:
    pool = WorkerPool(1)
    state = ModelState()
    app = ModelServerApp(state, pool, max_body_bytes=10)
    try:
        assert (await call_app(app, "GET", "/ping", [b""])).status == 503
        assert (await call_app(app, "POST", "/invocations", [b"[1]"])).status == 503
        state.transformer = transformer_for(
            user_module(model_fn=model_fn, predict_fn=doubling_predict_fn)
        )
        assert (await call_app(app, "GET", "/ping", [b""])).status == 200
        response = await call_app(app, "POST", "/invocations", [b"[1,", b" 2]"])
        assert (response.status, response.body) == (200, b"[2, 4]")
        assert (
            await call_app(app, "POST", "/invocations", [b"[1, 2, 3,", b" 4, 5]"])
        ).status == 413
        assert (await call_app(app, "GET", "/invocations", [b""])).status == 405
        assert (await call_app(app, "GET", "/models", [b""])).status == 404
    finally:
        pool.close()


# --- loading user code -------------------------------------------------------------------------


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


def model_config(model_dir: Path, **changes: Any) -> ServerConfig:
    return ServerConfig(model_dir=model_dir, deps_dir=model_dir / "deps", **changes)


@pytest.mark.usefixtures("isolated_imports")
def test_load_model_imports_the_script_with_its_siblings(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inferq_test_sibling.py").write_text("VALUE = 41\n")
    (code / "inference.py").write_text(
        "import inferq_test_sibling\n"
        "def model_fn(model_dir):\n    return inferq_test_sibling.VALUE + 1\n"
        "def predict_fn(data, model):\n    return [model]\n"
    )
    transformer = load_model(model_config(tmp_path))
    assert transformer.model == 42
    assert invoke(transformer, b"[0]", content_type="application/json").body == b"[42]"


@pytest.mark.usefixtures("isolated_imports")
def test_a_named_program_that_is_missing_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(
        StartupError, match=r"SAGEMAKER_PROGRAM=serve\.py, but .*serve\.py is missing"
    ):
        load_model(model_config(tmp_path, program="serve.py", program_required=True))


@pytest.mark.usefixtures("isolated_imports")
def test_an_import_error_points_at_requirements_txt(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text("import inferq_no_such_package\n")
    with pytest.raises(StartupError, match=r"raised ModuleNotFoundError: .*requirements\.txt"):
        load_model(model_config(tmp_path))


@pytest.mark.usefixtures("isolated_imports")
def test_a_failing_model_fn_names_file_function_and_exception(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(
        "def model_fn(model_dir):\n    raise OSError('disk on fire')\n"
        "def predict_fn(data, model):\n    return data\n"
    )
    with pytest.raises(StartupError) as raised:
        load_model(model_config(tmp_path))
    assert raised.value.message == (
        f"model_fn in {tmp_path / 'code' / 'inference.py'} raised OSError: disk on fire"
    )


def test_a_missing_model_dir_is_a_startup_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="does not exist"):
        load_model(model_config(tmp_path / "absent"))


# --- toolkit stand-in, configuration, requirements, pool -----------------------------------------


def test_the_toolkit_stand_in_serves_toolkit_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n.startswith("sagemaker_inference")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(compat.importlib.util, "find_spec", lambda name: None)
    assert compat.install_toolkit_stand_in()
    try:
        from sagemaker_inference import content_types, decoder, encoder, errors  # type: ignore[import-not-found]

        assert decoder.decode("[1]", content_types.JSON).tolist() == [1]
        assert encoder.encode([1], content_types.CSV) == "1\n"
        assert errors.GenericInferenceToolkitError(418).status_code == 418
        assert not compat.install_toolkit_stand_in(), "installed once"
    finally:
        for name in [n for n in sys.modules if n.startswith("sagemaker_inference")]:
            del sys.modules[name]


def test_config_reads_the_sagemaker_environment() -> None:
    config = ServerConfig.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9000",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_PROGRAM": "serve.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/src",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
            "SAGEMAKER_BASE_DIR": "/base",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "30",
            "INFERQ_MODEL_FRAMEWORK": "pytorch",
        }
    )
    assert (config.port, config.workers, config.program, config.program_required) == (
        9000,
        3,
        "serve.py",
        True,
    )
    assert (config.submit_directory, config.default_accept) == ("/src", "text/csv")
    assert (config.max_payload_bytes, config.model_dir) == (2 * 1024 * 1024, Path("/base/model"))
    assert (config.log_level, config.framework) == (30, Framework.PYTORCH)
    defaults = ServerConfig.from_env({})
    assert (defaults.port, defaults.workers, defaults.program, defaults.program_required) == (
        8080,
        1,
        "inference.py",
        False,
    )


@pytest.mark.parametrize(
    "env",
    [
        {"SAGEMAKER_MODEL_SERVER_WORKERS": "many"},
        {"INFERQ_MODEL_FRAMEWORK": "tensorflow"},
        {"SAGEMAKER_CONTAINER_LOG_LEVEL": "LOUD"},
    ],
)
def test_bad_environment_is_a_config_error(env: dict[str, str]) -> None:
    with pytest.raises(inferq_errors.ConfigError):
        ServerConfig.from_env(env)


def test_flags_override_the_environment_and_serve_is_ignored(tmp_path: Path) -> None:
    config = parse_config(
        ["serve", "--model-dir", str(tmp_path), "--port", "7000", "--workers", "2"],
        {"SAGEMAKER_BIND_TO_PORT": "9000"},
    )
    assert (config.model_dir, config.port, config.workers) == (tmp_path.resolve(), 7000, 2)
    assert config.host == "0.0.0.0", "container style listens on every interface"
    assert parse_config([], {}).host == "127.0.0.1"
    assert parse_config([], {"SAGEMAKER_BIND_TO_PORT": "9000"}).port == 9000


def test_requirements_already_installed_are_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "requirements.txt"
    listing.write_text("tiny==1.0\n")
    target = tmp_path / "cache" / requirements.requirements_digest(listing)
    target.mkdir(parents=True)
    (target / requirements.MARKER).write_text("done")

    def no_install(*args: Any) -> None:
        raise AssertionError("should not install again")

    monkeypatch.setattr(requirements, "_run_installer", no_install)
    assert requirements.install_requirements(listing, tmp_path / "cache") == target
    listing.write_text("tiny==2.0\n")
    assert requirements.requirements_digest(listing) != target.name


def test_a_failed_install_is_a_startup_error_with_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "requirements.txt"
    listing.write_text("nope\n")
    script = "import sys; print('no such package: nope'); sys.exit(1)"
    monkeypatch.setattr(
        requirements, "installer_command", lambda req, target: [sys.executable, "-c", script]
    )
    with pytest.raises(StartupError, match=r"(?s)failed \(exit status 1\).*no such package: nope"):
        requirements.install_requirements(listing, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == [], "no half install is left behind"


async def test_the_pool_runs_work_off_the_loop_and_passes_exceptions_back() -> None:
    pool = WorkerPool(2)
    try:
        loop_thread = threading.get_ident()
        assert await pool.run(threading.get_ident) != loop_thread
        assert await pool.run(sum, [1, 2]) == 3
        with pytest.raises(ZeroDivisionError):
            await pool.run(lambda: 1 / 0)
    finally:
        pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        await pool.run(sum, [])


def body_messages(chunks: list[bytes], disconnect: bool = False) -> Callable[[], Any]:
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": disconnect or i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect:
        messages.append({"type": "http.disconnect"})

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    return receive


@pytest.mark.parametrize("declared", [None, 200_000])
async def test_read_body_with_and_without_content_length(declared: int | None) -> None:
    chunks = [bytes([i]) * 50_000 for i in range(4)]
    body = await read_body(body_messages(chunks), None, declared)
    assert type(body) is bytes and body == b"".join(chunks)
    assert hash(body) == hash(b"".join(chunks))


async def test_read_body_keeps_every_byte_when_the_length_is_wrong() -> None:
    chunks = [b"a" * 70_000, b"b" * 70_000]
    assert await read_body(body_messages(chunks), None, 100_000) == b"".join(chunks)
    assert await read_body(body_messages(chunks), None, 200_000) == b"".join(chunks)
    assert await read_body(body_messages(chunks), 120_000, 100_000) is None


async def test_read_body_enforces_the_limit_and_sees_disconnects() -> None:
    chunks = [b"a" * 70_000, b"b" * 70_000]
    assert await read_body(body_messages(chunks), 100_000, 140_000) is None
    with pytest.raises(ClientGone):
        await read_body(body_messages(chunks, disconnect=True), None, 1_000_000)


async def test_a_large_body_is_prefaulted_in_one_call_and_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from inferq.modelserver import app as app_module

    calls: list[tuple[int, int, int]] = []
    real = app_module._madvise_call
    assert real is not None or not sys.platform.startswith("linux")

    def recording(address: int, length: int, advice: int) -> int:
        calls.append((address, length, advice))
        return real(address, length, advice) if real is not None else 0

    monkeypatch.setattr(app_module, "_madvise_call", recording)
    chunks = [bytes([i % 251]) * (1 << 20) for i in range(12)]  # 12 MiB: past the threshold
    body = await read_body(body_messages(chunks), None, 12 << 20)
    assert body == b"".join(chunks)
    [(address, length, advice)] = calls
    page = app_module._PAGE
    assert advice == app_module._MADV_POPULATE_WRITE
    assert address % page == 0 and length % page == 0
    assert (12 << 20) - 2 * page <= length <= 12 << 20


def test_prefault_is_accepted_by_this_kernel() -> None:
    from inferq.modelserver import app as app_module

    if app_module._madvise_call is None:
        pytest.skip("not Linux")
    buffer = mmap.mmap(-1, 4 << 20)
    address = ctypes.addressof(ctypes.c_char.from_buffer(buffer))
    result = app_module._madvise_call(address, 4 << 20, app_module._MADV_POPULATE_WRITE)
    if result != 0 and ctypes.get_errno() == errno.EINVAL:
        pytest.skip("kernel older than 5.14: no MADV_POPULATE_WRITE")
    assert result == 0
