"""The ``inferq`` command. Every ``serve`` option has an ``INFERQ_*`` environment twin, read
once by ``Settings.from_env``; a flag given on the command line wins."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from inferq import __version__
from inferq.client import completion as client_completion
from inferq.client import deploy as client_deploy
from inferq.client import endpoints as client_endpoints
from inferq.client import invoke as client_invoke
from inferq.client import wait as client_wait
from inferq.settings import Settings


@click.group()
@click.version_option(__version__, prog_name="inferq")
def main() -> None:
    """inferq: SageMaker Asynchronous Inference on your own machines."""


@main.command()
@click.option("--host", help="Interface to listen on. [env: INFERQ_HOST; default 127.0.0.1]")
@click.option("--port", type=int, help="Port for all three APIs. [env: INFERQ_PORT; default 8080]")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Where state, objects, models and logs live. [env: INFERQ_DATA_DIR; default ./.inferq]",
)
@click.option(
    "--state-url",
    help="Catalog and queue backend, e.g. sqlite:///var/inferq/state.db "
    "[env: INFERQ_STATE_URL; default: state.db in the data directory]",
)
@click.option(
    "--storage-url",
    help="Object store backend, e.g. file:///var/inferq/objects "
    "[env: INFERQ_STORAGE_URL; default: objects/ in the data directory]",
)
@click.option("--region", help="Region in ARNs and notifications. [env: INFERQ_REGION]")
@click.option(
    "--demo/--no-demo",
    default=None,
    help="Deploy the 'demo' async endpoint on start. [env: INFERQ_DEMO]",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(log_level: str, **options: Any) -> None:
    """Serve SageMaker Runtime, the SageMaker control plane and S3 on one port.

    \b
    Example:
      inferq serve --demo
      aws --endpoint-url http://127.0.0.1:8080 sagemaker-runtime invoke-endpoint-async \\
          --endpoint-name demo --input-location s3://demo/in/input.json
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    settings = Settings.from_env(None, **options)
    with contextlib.suppress(KeyboardInterrupt):
        _run(_serve(settings))


async def _serve(settings: Settings) -> None:
    # imported here: the server's modules cost client commands half a second of start-up
    from inferq import bootstrap

    await bootstrap.serve(settings)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when available (it roughly halves the event loop's cost per request)."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@main.command(
    "model-server",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def model_server(ctx: click.Context) -> None:
    """Serve a model in the SageMaker handler contract (GET /ping, POST /invocations).

    Run `inferq model-server --help` for its options.
    """
    from inferq.modelserver import server as model_server_main

    sys.exit(model_server_main.main(list(ctx.args)))


main.add_command(client_invoke.invoke_endpoint_async)
main.add_command(client_wait.wait)
main.add_command(client_deploy.deploy)
main.add_command(client_endpoints.endpoints)
main.add_command(client_completion.completion)
