"""``inferq model-server``: serve one model by the SageMaker container contract.

The HTTP server listens at once (``/ping`` answers 503 while loading) and ``model_fn`` runs on
the worker pool; if loading fails, the error goes to stderr (its last line says what to fix) and
the process exits with status 1. SIGTERM stops it gracefully: in-flight invocations finish.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import uvicorn

from inferq import errors
from inferq.modelserver.app import ModelServerApp, ModelState
from inferq.modelserver.config import ServerConfig
from inferq.modelserver.defaults import Framework
from inferq.modelserver.executor import WorkerPool
from inferq.modelserver.loader import load_model

logger = logging.getLogger("inferq.modelserver")

EXIT_LOAD_FAILED = 1
EXIT_BAD_USAGE = 2


def build_parser(defaults: ServerConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferq model-server",
        description="Serve a SageMaker framework model (inference.py handlers) on /ping and "
        "/invocations. A leading 'serve' argument (container entrypoint style) is accepted "
        "and makes the default host 0.0.0.0.",
    )
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=defaults.model_dir,
        help="the extracted model.tar.gz (default: $SAGEMAKER_BASE_DIR/model)",
    )
    parser.add_argument("--host", default=defaults.host, help=f"default: {defaults.host}")
    parser.add_argument(
        "--port", type=int, default=defaults.port, help="default: $SAGEMAKER_BIND_TO_PORT or 8080"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=defaults.workers,
        help="threads running user code (default: $SAGEMAKER_MODEL_SERVER_WORKERS or 1)",
    )
    parser.add_argument(
        "--framework",
        type=Framework,
        choices=list(Framework),
        default=defaults.framework,
        help="whose default handlers fill gaps (default: "
        "$INFERQ_MODEL_FRAMEWORK or auto: pytorch when the model dir holds "
        ".pt/.pth files)",
    )
    parser.add_argument(
        "--deps-dir",
        type=Path,
        default=defaults.deps_dir,
        help="where code/requirements.txt is installed (default: "
        "$INFERQ_MODEL_DEPS_DIR or ~/.cache/inferq/model-deps)",
    )
    return parser


def parse_config(argv: Sequence[str], env: dict[str, str]) -> ServerConfig:
    defaults = ServerConfig.from_env(env)
    container_style = argv[:1] == ["serve"]
    arguments = list(argv[1:] if container_style else argv)
    if container_style:  # `docker run image serve`: SageMaker reaches the container from outside
        defaults = replace(defaults, host="0.0.0.0")
    options = build_parser(defaults).parse_args(arguments)
    if options.workers < 1:
        raise errors.ConfigError("--workers must be at least 1")
    return replace(
        defaults,
        model_dir=options.model_dir.resolve(),
        host=options.host,
        port=options.port,
        workers=options.workers,
        framework=options.framework,
        deps_dir=options.deps_dir,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the model server until SIGTERM; the process exit status."""
    try:
        config = parse_config(sys.argv[1:] if argv is None else argv, dict(os.environ))
    except errors.ConfigError as exc:
        print(f"inferq model-server: {exc.message}", file=sys.stderr)
        return EXIT_BAD_USAGE
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return serve(config)


def serve(config: ServerConfig) -> int:
    pool = WorkerPool(config.workers)
    state = ModelState()
    server = uvicorn.Server(
        uvicorn.Config(
            ModelServerApp(state, pool, config.max_payload_bytes),
            host=config.host,
            port=config.port,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_keep_alive=config.keep_alive_seconds,
            timeout_graceful_shutdown=config.graceful_shutdown_seconds,
        )
    )
    try:
        with (
            _signals_end_quietly(),
            asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner,
        ):
            return runner.run(_serve(server, state, pool, config))
    except SystemExit as exc:  # uvicorn exits this way when it cannot bind
        return exc.code if isinstance(exc.code, int) else EXIT_LOAD_FAILED
    finally:
        pool.close()


async def _serve(
    server: uvicorn.Server, state: ModelState, pool: WorkerPool, config: ServerConfig
) -> int:
    loading = asyncio.create_task(_load(server, state, pool, config))
    await server.serve()
    if not loading.done():  # stopped while model_fn still runs: its daemon thread dies with us
        loading.cancel()
        return 0
    failure = loading.result()
    if failure is None:
        return 0
    # last, after uvicorn's shutdown lines: the log's tail becomes the endpoint's FailureReason
    print(f"inferq model-server: cannot load the model: {failure}", file=sys.stderr, flush=True)
    return EXIT_LOAD_FAILED


async def _load(
    server: uvicorn.Server, state: ModelState, pool: WorkerPool, config: ServerConfig
) -> str | None:
    """Load the model on the pool; None when it is ready, else why not (the server stops)."""
    logger.info(
        "event=model_loading model_dir=%s port=%d workers=%d",
        config.model_dir,
        config.port,
        config.workers,
    )
    try:
        state.transformer = await pool.run(load_model, config)
    except Exception as exc:
        logger.error("event=model_load_failed", exc_info=exc.__cause__ or exc)
        server.should_exit = True
        return (
            exc.message if isinstance(exc, errors.InferqError) else f"{type(exc).__name__}: {exc}"
        )
    return None


@contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after its graceful stop; make that a no-op, exit 0."""
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: object) -> None:
    del signum, frame
