"""The model server as a real process: ``python -m inferq.modelserver`` on a loopback port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import pytest

STARTUP_SECONDS = 60.0

MODEL_CODE = """
import time

from sagemaker_inference import decoder  # the model server stands in for the toolkit


def model_fn(model_dir, context):
    return {"model_dir": model_dir, "model_name": context.model_name}


def input_fn(input_data, content_type, context):
    attributes = context.get_request_header(0, "X-Amzn-SageMaker-Custom-Attributes") or ""
    if attributes == "explode":
        raise RuntimeError("the model exploded on purpose")
    if attributes.startswith("sleep="):
        time.sleep(float(attributes.removeprefix("sleep=")))
    if attributes.startswith("trace="):
        properties = context.request_processor[0].get_request_properties()
        return {
            "lower": properties.get("x-amzn-sagemaker-custom-attributes"),
            "canonical": properties.get("X-Amzn-SageMaker-Custom-Attributes"),
            "model_dir": context.system_properties["model_dir"],
            "body_type": type(input_data).__name__,
        }
    return decoder.decode(input_data, content_type)


def predict_fn(data, model):
    return data if isinstance(data, dict) else data * 2
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAGEMAKER_", "INFERQ_"))}
    env |= {"PYTHONUNBUFFERED": "1", "INFERQ_MODEL_DEPS_DIR": str(tmp_path / "deps")}
    return env | extra


def launch(model_dir: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "inferq.modelserver", "--model-dir", str(model_dir)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}"


def ping_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_healthy(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"the model server exited with {server.process.returncode}:\n{server.log_text()}"
            )
        if ping_status(server.url) == 200:
            return
        time.sleep(0.05)
    pytest.fail(f"the model server never became healthy:\n{server.log_text()}")


def stop(server: RunningServer) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        return server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        raise


@contextmanager
def running_server(model_dir: Path, env: dict[str, str], log: Path) -> Iterator[RunningServer]:
    process, url = launch(model_dir, env, log)
    server = RunningServer(url, process, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        returncode = stop(server)
    assert returncode == 0, f"SIGTERM should stop it cleanly:\n{server.log_text()}"


def write_model(model_dir: Path, code: str, program: str = "inference.py") -> Path:
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    (model_dir / "code" / program).write_text(textwrap.dedent(code))
    return model_dir


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("modelserver")
    model_dir = write_model(root / "model", MODEL_CODE)
    with running_server(model_dir, server_env(root), root / "server.log") as running:
        yield running


async def post(
    url: str,
    body: bytes,
    content_type: str,
    accept: str | None = None,
    attributes: str | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = attributes
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/invocations", data=body, headers=headers) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


async def test_json_in_and_out(server: RunningServer) -> None:
    status, body, headers = await post(server.url, b"[1, 2, 3]", "application/json")
    assert (status, json.loads(body)) == (200, [2, 4, 6])
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert "Transfer-Encoding" not in headers


async def test_csv_in_and_out(server: RunningServer) -> None:
    status, body, headers = await post(server.url, b"1,2\n3,4\n", "text/csv", accept="text/csv")
    assert (status, body, headers["Content-Type"]) == (200, b"2.0,4.0\n6.0,8.0\n", "text/csv")


async def test_npy_round_trip(server: RunningServer) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.arange(4, dtype=np.int16))
    status, body, headers = await post(
        server.url, buffer.getvalue(), "application/x-npy", accept="application/x-npy"
    )
    assert (status, headers["Content-Type"]) == (200, "application/x-npy")
    result = np.load(io.BytesIO(body))
    assert (result.dtype, result.tolist()) == (np.int16, [0, 2, 4, 6])


async def test_custom_attributes_are_visible_in_the_context(server: RunningServer) -> None:
    status, body, _ = await post(server.url, b"{}", "application/json", attributes="trace=42")
    assert status == 200
    seen = json.loads(body)
    assert seen["lower"] == seen["canonical"] == "trace=42"
    assert seen["body_type"] == "str"
    assert Path(seen["model_dir"]).name == "model"


async def test_a_raising_handler_is_500_with_its_message(server: RunningServer) -> None:
    status, body, _ = await post(server.url, b"[1]", "application/json", attributes="explode")
    assert (status, body) == (500, b"the model exploded on purpose")
    assert "Traceback" in server.log_text()


async def test_unsupported_types_are_415_and_406(server: RunningServer) -> None:
    status, body, _ = await post(server.url, b"hi", "text/plain")
    assert status == 415 and b"text/plain" in body
    status, body, _ = await post(server.url, b"[1]", "application/json", accept="image/png")
    assert status == 406 and b"image/png" in body


async def test_ping_answers_while_an_invocation_is_busy(server: RunningServer) -> None:
    slow = asyncio.create_task(post(server.url, b"[1]", "application/json", attributes="sleep=3"))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    async with aiohttp.ClientSession() as session, session.get(f"{server.url}/ping") as response:
        assert response.status == 200
    assert time.monotonic() - started < 2.0
    assert not slow.done(), "the slow invocation should still be running"
    status, body, _ = await slow
    assert (status, json.loads(body)) == (200, [2])


async def test_unknown_paths_and_methods(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/invocations") as response:
            assert response.status == 405
        async with session.get(f"{server.url}/metrics") as response:
            assert response.status == 404


def test_ping_is_503_until_model_fn_returns(tmp_path: Path) -> None:
    code = """
        import time

        def model_fn(model_dir):
            time.sleep(1.5)
            return "ready"

        def predict_fn(data, model):
            return model
    """
    process, url = launch(
        write_model(tmp_path / "model", code), server_env(tmp_path), tmp_path / "log"
    )
    server = RunningServer(url, process, tmp_path / "log")
    try:
        statuses: list[int | None] = []
        while (status := ping_status(url)) != 200 and process.poll() is None:
            statuses.append(status)
            time.sleep(0.05)
        assert 503 in statuses, f"loading should answer 503, saw {statuses}"
    finally:
        assert stop(server) == 0


def test_a_failing_model_fn_exits_non_zero_saying_why(tmp_path: Path) -> None:
    code = """
        def model_fn(model_dir):
            raise FileNotFoundError("weights.bin is not in the model archive")

        def predict_fn(data, model):
            return data
    """
    model_dir = write_model(tmp_path / "model", code)
    command = [sys.executable, "-m", "inferq.modelserver", "--model-dir", str(model_dir)]
    done = subprocess.run(
        [*command, "--port", str(free_port())],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=STARTUP_SECONDS,
    )
    assert done.returncode == 1
    last_line = done.stderr.strip().splitlines()[-1]
    assert "model_fn" in last_line
    assert str(model_dir / "code" / "inference.py") in last_line
    assert "FileNotFoundError: weights.bin is not in the model archive" in last_line
    assert "Traceback" in done.stderr


def test_sigterm_lets_an_in_flight_invocation_finish(tmp_path: Path) -> None:
    with running_server(
        write_model(tmp_path / "model", MODEL_CODE), server_env(tmp_path), tmp_path / "log"
    ) as server:
        headers = {
            "Content-Type": "application/json",
            "X-Amzn-SageMaker-Custom-Attributes": "sleep=1",
        }
        request = urllib.request.Request(
            f"{server.url}/invocations", data=b"[5]", method="POST", headers=headers
        )
        result: dict[str, bytes] = {}

        def call() -> None:
            with urllib.request.urlopen(request, timeout=10) as response:
                result["body"] = response.read()

        caller = threading.Thread(target=call)
        caller.start()
        time.sleep(0.4)
        server.process.send_signal(signal.SIGTERM)
        caller.join(timeout=10)
        assert json.loads(result["body"]) == [10]


# --- where the code comes from ------------------------------------------------------------------


def test_submit_directory_archive_with_a_named_program(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "helpers.py").write_text("SUFFIX = '-from-a-sibling-module'\n")
    (source / "serve.py").write_text(
        textwrap.dedent(
            """
            import json

            import helpers

            def model_fn(model_dir):
                return "sourcedir"

            def transform_fn(model, input_data, content_type, accept):
                return json.dumps({"model": model + helpers.SUFFIX}), "application/json"
            """
        )
    )
    archive = tmp_path / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in source.iterdir():
            tar.add(path, arcname=path.name)
    shutil.rmtree(source)
    (tmp_path / "model").mkdir()
    env = server_env(
        tmp_path, SAGEMAKER_SUBMIT_DIRECTORY=str(archive), SAGEMAKER_PROGRAM="serve.py"
    )
    with running_server(tmp_path / "model", env, tmp_path / "log") as server:
        status, body, _ = asyncio.run(post(server.url, b"{}", "application/json"))
    assert (status, json.loads(body)) == (200, {"model": "sourcedir-from-a-sibling-module"})


def build_wheel(folder: Path) -> Path:
    """A minimal pure-Python wheel, made by hand so the test needs no build backend or index."""
    info = "inferq_tiny_dep-1.0.dist-info"
    files = {
        "inferq_tiny_dep/__init__.py": "GREETING = 'hello from requirements.txt'\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: inferq-tiny-dep\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: inferq-tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = (
            base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        )
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True)
    wheel = folder / "inferq_tiny_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("pip") is None and shutil.which("uv") is None,
    reason="neither pip nor uv can install requirements here",
)
def test_requirements_txt_is_installed_before_import(tmp_path: Path) -> None:
    wheels = build_wheel(tmp_path / "wheels").parent
    code = """
        import inferq_tiny_dep

        def model_fn(model_dir):
            return inferq_tiny_dep.GREETING

        def transform_fn(model, input_data, content_type, accept):
            return model
    """
    model_dir = write_model(tmp_path / "model", code)
    (model_dir / "code" / "requirements.txt").write_text(
        f"--no-index\n--find-links {wheels}\ninferq-tiny-dep==1.0\n"
    )
    with running_server(model_dir, server_env(tmp_path), tmp_path / "log") as server:
        status, body, _ = asyncio.run(post(server.url, b"{}", "application/json"))
    assert (status, body) == (200, b"hello from requirements.txt")
    installed = [path for path in (tmp_path / "deps").iterdir() if not path.name.startswith(".")]
    assert len(installed) == 1 and (installed[0] / "inferq_tiny_dep").is_dir()


# --- the examples -------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_echo_example(tmp_path: Path) -> None:
    with running_server(EXAMPLES / "echo", server_env(tmp_path), tmp_path / "log") as server:
        status, body, _ = asyncio.run(post(server.url, b'{"x": [1, 2]}', "application/json"))
        assert (status, json.loads(body)) == (200, {"input": {"x": [1, 2]}, "echoed_by": "echo"})
        status, _, _ = asyncio.run(post(server.url, b"x", "text/plain"))
        assert status == 415


@pytest.mark.slow
def test_the_pytorch_example(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    script = EXAMPLES / "pytorch" / "make_model.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, timeout=120)
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        tar.extractall(tmp_path / "deployed", filter="data")
    with running_server(tmp_path / "deployed", server_env(tmp_path), tmp_path / "log") as server:
        rows = json.dumps([[0.1, 0.2, 0.3, 0.4], [1, 2, 3, 4]]).encode()
        status, body, _ = asyncio.run(post(server.url, rows, "application/json"))
    assert status == 200
    predictions = json.loads(body)["predictions"]
    assert len(predictions) == 2 and all(len(row) == 3 for row in predictions)
    assert all(abs(sum(row) - 1) < 1e-5 for row in predictions), "softmax rows sum to 1"
