"""Options every client command shares: the cmdlets' credential and region parameters (with
their aliases as option spellings), ``-ClientConfig`` as options, and the output format."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar, cast

import click

from inferq.client.session import ConnectionOptions

F = TypeVar("F", bound=Callable[..., Any])

CONNECTION_OPTIONS = (
    click.option(
        "--access-key", "--ak", "access_key", help="AWS access key id (else the AWS chain)."
    ),
    click.option(
        "--secret-key",
        "--sk",
        "--secret-access-key",
        "secret_key",
        help="AWS secret access key, with --access-key.",
    ),
    click.option("--session-token", "--st", "session_token", help="Session token, with keys."),
    click.option(
        "--profile-name",
        "--stored-credentials",
        "--aws-profile-name",
        "profile_name",
        help="Profile in the shared credentials/config files.",
    ),
    click.option(
        "--profile-location",
        "--aws-profiles-location",
        "--profiles-location",
        "profile_location",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="An ini credentials file to read the profile from (default profile: 'default').",
    ),
    click.option("--region", "--region-to-call", "region", help="AWS region, e.g. us-east-1."),
    click.option(
        "--endpoint-url",
        help="Send every request here (e.g. http://127.0.0.1:8080 for inferq); "
        "default: AWS's endpoint for the region.",
    ),
    click.option(
        "--connect-timeout", type=click.FloatRange(min=0), help="Seconds to open a connection."
    ),
    click.option(
        "--read-timeout",
        "--read-write-timeout",
        "read_timeout",
        type=click.FloatRange(min=0),
        help="Seconds to wait for an answer.",
    ),
    click.option(
        "--max-attempts", type=click.IntRange(min=1), help="Attempts per request, retries included."
    ),
    click.option(
        "--retry-mode",
        type=click.Choice(["legacy", "standard", "adaptive"]),
        help="botocore's retry mode.",
    ),
    click.option(
        "--signing-region",
        "--authentication-region",
        "signing_region",
        help="Region in the SigV4 credential scope, when it differs from --region.",
    ),
)
CONNECTION_FIELDS = tuple(field.name for field in fields(ConnectionOptions))


def connection_options(command: F) -> F:
    """Add the shared options; the command receives them as one ``connection`` argument."""

    @functools.wraps(command)
    def with_connection(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in CONNECTION_FIELDS}
        return command(connection=checked(ConnectionOptions(**given)), **kwargs)

    return stacked(*CONNECTION_OPTIONS)(cast(F, with_connection))


def checked(options: ConnectionOptions) -> ConnectionOptions:
    if (options.access_key is None) != (options.secret_key is None):
        raise click.UsageError("--access-key and --secret-key go together")
    if options.session_token is not None and options.access_key is None:
        raise click.UsageError("--session-token needs --access-key and --secret-key")
    return options


output_option = click.option(
    "--output",
    "output_format",
    type=click.Choice(["json", "table", "text"]),
    default="json",
    show_default=True,
    help="JSON for programs, a table or tab-separated text for people.",
)

progress_option = click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr. [default: when stderr is a terminal]",
)

concurrency_option = click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Requests in flight at once.",
)


def stacked(*decorators: Callable[[Any], Any]) -> Callable[[F], F]:
    """Apply ``decorators`` as if written one above the other, the first on top."""

    def decorate(function: F) -> F:
        decorated: Any = function
        for decorator in reversed(decorators):
            decorated = decorator(decorated)
        return cast(F, decorated)

    return decorate
