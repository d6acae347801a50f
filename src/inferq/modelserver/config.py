"""The model server's settings: SageMaker's container environment, then command-line flags.

``ServerConfig.from_env`` is the one place this package reads the environment.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from inferq import errors
from inferq.modelserver import content_types
from inferq.modelserver.defaults import Framework

DEFAULT_PROGRAM = "inference.py"
DEFAULT_PORT = 8080
DEFAULT_BASE_DIR = "/opt/ml"


def _default_deps_dir(env: Mapping[str, str]) -> Path:
    cache = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "inferq" / "model-deps"


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.ConfigError(f"{name}={value!r} is not a whole number") from None


def _log_level(value: str | None) -> int:
    """SAGEMAKER_CONTAINER_LOG_LEVEL is a number (20) or a name (INFO)."""
    if not value:
        return logging.INFO
    if value.strip().isdigit():
        return int(value)
    level = logging.getLevelName(value.strip().upper())
    if not isinstance(level, int):
        raise errors.ConfigError(f"SAGEMAKER_CONTAINER_LOG_LEVEL={value!r} is not a log level")
    return level


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerConfig:
    model_dir: Path
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    #: threads running user code (the toolkit's model server workers share one model here)
    workers: int = 1
    program: str = DEFAULT_PROGRAM
    #: whether SAGEMAKER_PROGRAM named the script (then it must exist)
    program_required: bool = False
    submit_directory: str | None = None
    default_accept: str = content_types.JSON
    framework: Framework = Framework.AUTO
    model_name: str = "model"
    max_payload_bytes: int | None = None
    deps_dir: Path
    log_level: int = logging.INFO
    #: longer than aiohttp's 15 s client keep-alive, so the server never closes a pooled socket
    keep_alive_seconds: int = 75
    #: SageMaker sends SIGKILL 30 s after SIGTERM
    graceful_shutdown_seconds: int = 25

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ServerConfig:
        base_dir = Path(env.get("SAGEMAKER_BASE_DIR") or DEFAULT_BASE_DIR)
        payload_mb = _int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", None)
        framework = env.get("INFERQ_MODEL_FRAMEWORK") or Framework.AUTO
        if framework not in set(Framework):
            raise errors.ConfigError(
                f"INFERQ_MODEL_FRAMEWORK={framework!r}: use one of {', '.join(Framework)}"
            )
        return cls(
            model_dir=base_dir / "model",
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", DEFAULT_PORT) or DEFAULT_PORT,
            workers=_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", 1) or 1,
            program=env.get("SAGEMAKER_PROGRAM") or DEFAULT_PROGRAM,
            program_required=bool(env.get("SAGEMAKER_PROGRAM")),
            submit_directory=env.get("SAGEMAKER_SUBMIT_DIRECTORY") or None,
            default_accept=env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or content_types.JSON,
            framework=Framework(framework),
            max_payload_bytes=payload_mb * 1024 * 1024 if payload_mb else None,
            deps_dir=Path(env.get("INFERQ_MODEL_DEPS_DIR") or _default_deps_dir(env)),
            log_level=_log_level(env.get("SAGEMAKER_CONTAINER_LOG_LEVEL")),
        )
