"""Startup: from a model dir and the SageMaker environment to a ready ``Transformer``.

Every failure becomes a ``StartupError`` naming the file, the function and the exception,
because its message is what the endpoint's FailureReason shows.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from inferq.modelserver import compat, usercode
from inferq.modelserver.config import ServerConfig
from inferq.modelserver.context import Context
from inferq.modelserver.defaults import defaults_for
from inferq.modelserver.errors import StartupError
from inferq.modelserver.handlers import Handler, HandlerSet, resolve
from inferq.modelserver.requirements import install_requirements
from inferq.modelserver.transformer import Transformer

logger = logging.getLogger(__name__)


def load_model(config: ServerConfig) -> Transformer:
    """Find and import the user code, resolve the handlers, and run model_fn."""
    started = time.monotonic()
    if not config.model_dir.is_dir():
        raise StartupError(f"the model dir {config.model_dir} does not exist")
    code_dir = usercode.code_dir_for(config.submit_directory, config.model_dir)
    module, origin = _import_user_code(code_dir, config)
    handlers = resolve(module, origin, defaults_for(config.framework, config.model_dir))
    context = Context.for_model(
        model_name=config.model_name, model_dir=str(config.model_dir), handler=origin
    )
    model = _initialize(handlers, str(config.model_dir), context)
    logger.info(
        "event=model_loaded seconds=%.2f model_dir=%s code=%s",
        time.monotonic() - started,
        config.model_dir,
        origin,
    )
    return Transformer(handlers, model, context, config.default_accept)


def _import_user_code(code_dir: Path, config: ServerConfig) -> tuple[ModuleType | None, str]:
    """The user module (None when there is none) and how to name it in messages."""
    folders = [code_dir]
    requirements = code_dir / "requirements.txt"
    if requirements.is_file():
        folders.append(install_requirements(requirements, config.deps_dir))
    usercode.add_to_import_path(*folders)
    program_path = code_dir / config.program
    if not usercode.program_exists(code_dir, config.program):
        if config.program_required:
            raise StartupError(f"SAGEMAKER_PROGRAM={config.program}, but {program_path} is missing")
        logger.info("event=no_user_code looked_for=%s", program_path)
        return None, f"{program_path} (absent)"
    if compat.install_toolkit_stand_in():
        logger.debug("event=toolkit_stand_in_installed")
    try:
        return usercode.import_program(code_dir, config.program), str(program_path)
    except Exception as exc:
        raise StartupError(_import_failure(program_path, requirements, exc)) from exc


def _import_failure(program_path: Path, requirements: Path, exc: Exception) -> str:
    message = f"importing {program_path} raised {type(exc).__name__}: {exc}"
    if isinstance(exc, ModuleNotFoundError):
        message += f" (list the missing package in {requirements})"
    return message


def _initialize(handlers: HandlerSet, model_dir: str, context: Context) -> Any:
    if handlers.pre_model_fn is not None:
        _run(handlers.pre_model_fn, model_dir, context=context)
    model = _run(handlers.model_fn, model_dir, context=context)
    if handlers.model_warmup_fn is not None:
        _run(handlers.model_warmup_fn, model_dir, model, context=context)
    return model


def _run(handler: Handler, *args: Any, context: Context) -> Any:
    started = time.monotonic()
    try:
        result = handler.call(*args, context=context)
    except Exception as exc:
        raise StartupError(
            f"{handler.name} in {handler.origin} raised {type(exc).__name__}: {exc}"
        ) from exc
    logger.info("event=%s_done seconds=%.2f", handler.name, time.monotonic() - started)
    return result
