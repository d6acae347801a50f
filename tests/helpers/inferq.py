"""Running a real ``inferq serve`` process for end-to-end tests, and real clients for it."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "AKIAINFERQTESTKEY001"
SECRET_KEY = "inferq-test-secret-key-0123456789abcdefgh"
REGION = "us-east-1"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.3.0-cpu-py311"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class InferqServer:
    data_dir: Path
    port: int = field(default_factory=free_port)
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERQ_", "AWS_"))}
        env.update(
            INFERQ_ACCESS_KEY_ID=ACCESS_KEY,
            INFERQ_SECRET_ACCESS_KEY=SECRET_KEY,
            INFERQ_WORKER_LEASE_SECONDS="6",
            INFERQ_WORKER_POLL_SECONDS="0.2",
            # inputs from S3 outside inferq see only the AWS configuration a test gives
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
            AWS_EC2_METADATA_DISABLED="true",
        )
        env.update(self.extra_env)
        return env

    def start(self, *args: str) -> InferqServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "inferq",
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *args,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env(), stdout=log, stderr=log)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"inferq exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"inferq did not answer /ping:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """``kill -9``: no cleanup at all."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def client(self, service: str, **config: Any) -> Any:
        options = {"retries": {"max_attempts": 1}, **config}
        if service == "s3":
            options["s3"] = {"addressing_style": "path"}
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(**options),
        )

    def cli_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE="/dev/null",
            AWS_SHARED_CREDENTIALS_FILE="/dev/null",
        )
        return env


@contextmanager
def inferq_server(data_dir: Path, *args: str, **env: str) -> Iterator[InferqServer]:
    server = InferqServer(data_dir, extra_env=env).start(*args)
    try:
        yield server
    finally:
        server.stop()


def model_tarball(files: Mapping[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def create_async_config(
    server: InferqServer,
    name: str,
    inference_py: str | None,
    *,
    concurrency: int = 2,
    instances: int = 1,
    environment: dict[str, str] | None = None,
    failure_path: bool = True,
    image: str = PYTORCH_IMAGE,
    files: dict[str, str | bytes] | None = None,
) -> None:
    """Artifact to S3, Model, EndpointConfig, all named ``name``. The archive holds
    ``code/inference.py`` (unless None) and ``files``."""
    s3, sm = server.client("s3"), server.client("sagemaker")
    if name not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=name)
    archive = {"code/inference.py": inference_py} if inference_py is not None else {}
    s3.put_object(
        Bucket=name, Key="model/model.tar.gz", Body=model_tarball({**archive, **(files or {})})
    )
    container: dict[str, Any] = {"Image": image, "ModelDataUrl": f"s3://{name}/model/model.tar.gz"}
    if environment:
        container["Environment"] = environment
    sm.create_model(
        ModelName=name,
        PrimaryContainer=container,
        ExecutionRoleArn="arn:aws:iam::000000000000:role/inferq",
    )
    output: dict[str, Any] = {"S3OutputPath": f"s3://{name}/output"}
    if failure_path:
        output["S3FailurePath"] = f"s3://{name}/failure"
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "InitialInstanceCount": instances,
                "InstanceType": "ml.m5.large",
            }
        ],
        AsyncInferenceConfig={
            "OutputConfig": output,
            "ClientConfig": {"MaxConcurrentInvocationsPerInstance": concurrency},
        },
    )


def deploy_async_endpoint(
    server: InferqServer, name: str, inference_py: str | None, *, wait: bool = True, **config: Any
) -> None:
    """The way a team deploys with boto3: artifact to S3, Model, EndpointConfig, Endpoint
    (``config``: what ``create_async_config`` takes)."""
    create_async_config(server, name, inference_py, **config)
    sm = server.client("sagemaker")
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    if wait:
        wait_in_service(server, name)


def wait_in_service(server: InferqServer, name: str) -> None:
    """boto3's ``endpoint_in_service`` waiter, polling every 0.2 s."""
    server.client("sagemaker").get_waiter("endpoint_in_service").wait(
        EndpointName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )


def wait_for_object(server: InferqServer, uri: str, timeout: float = 30) -> dict[str, Any]:
    """HeadObject polling, as the SageMaker Python SDK waits for a result."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    s3 = server.client("s3")
    s3.get_waiter("object_exists").wait(
        Bucket=bucket, Key=key, WaiterConfig={"Delay": 0.1, "MaxAttempts": int(timeout * 10)}
    )
    result: dict[str, Any] = s3.get_object(Bucket=bucket, Key=key)
    return result


def object_exists(server: InferqServer, uri: str) -> bool:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        server.client("s3").head_object(Bucket=bucket, Key=key)
    except server.client("s3").exceptions.ClientError:
        return False
    return True
