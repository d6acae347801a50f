"""A model instance that is a local process of inferq's own model server."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from inferq import errors
from inferq.runners import health

STOP_GRACE_SECONDS = 10.0
LOG_TAIL_BYTES = 4000
#: a start failure becomes the endpoint's FailureReason, which botocore's model caps at this
REASON_LIMIT = 1024
NOT_STARTED = "The model server did not start: "
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask Linux to kill the model server when inferq dies, even by ``kill -9``, so no
    orphan keeps a port and a model in memory. Elsewhere this is a no-op."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ModelServerProcess:
    """``python -m inferq.modelserver`` on a free loopback port, its output in ``log_path``."""

    def __init__(
        self,
        *,
        model_dir: Path,
        environment: dict[str, str],
        session: aiohttp.ClientSession,
        log_path: Path,
        startup_timeout: float,
        host: str = "127.0.0.1",
    ) -> None:
        self._model_dir = model_dir
        self._environment = environment
        self._session = session
        self._log_path = log_path
        self._startup_timeout = startup_timeout
        self._host = host
        self._port = 0
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        self._port = free_port(self._host)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self._command(),
                env=self._env(),
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        reason = await health.wait_healthy(
            self._session, self.url, self._startup_timeout, self._exit_reason
        )
        if reason is not None:
            await self.stop()
            raise errors.ModelLoadError(NOT_STARTED + reason)

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "inferq.modelserver",
            "--model-dir",
            str(self._model_dir),
            "--host",
            self._host,
            "--port",
            str(self._port),
        ]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
        env.update(self._environment)
        env["SAGEMAKER_BIND_TO_PORT"] = str(self._port)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _exit_reason(self) -> str | None:
        if self._process is None or self._process.returncode is None:
            return None
        status = self._process.returncode
        lead = f"it exited with status {status}. The end of its log ({self._log_path}):\n"
        return lead + last_lines(self.log_tail(), REASON_LIMIT - len(NOT_STARTED) - len(lead))

    def log_tail(self) -> str:
        try:
            with self._log_path.open("rb") as log:
                log.seek(0, os.SEEK_END)
                log.seek(max(0, log.tell() - LOG_TAIL_BYTES))
                return log.read().decode(errors="replace").strip()
        except OSError:
            return ""

    async def stop(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


def last_lines(text: str, limit: int) -> str:
    """The last whole lines of ``text`` that fit in ``limit`` characters (the model server ends
    its log with why it stopped), or the end of the last line if that alone is longer."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    end = text[-limit:]
    newline = end.find("\n")
    return end[newline + 1 :] if 0 <= newline < len(end) - 1 else end
