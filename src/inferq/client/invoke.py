"""``inferq invoke-endpoint-async``: AWS Tools for PowerShell's ``Invoke-SMREndpointAsync``
from a shell, against inferq or AWS, plus ``--upload`` of local inputs first."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from inferq.client import options, upload
from inferq.client.errors import reported
from inferq.client.invocation import Batch, Invoker
from inferq.client.output import Printer
from inferq.client.params import complete
from inferq.client.progress import wanted
from inferq.client.selection import Selection, parse_selection
from inferq.client.session import Clients, ConnectionOptions

EXAMPLES = """\b
Examples:
  export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... AWS_DEFAULT_REGION=us-east-1
  inferq invoke-endpoint-async demo --input-location s3://demo/in/input.json \\
      --content-type application/json --endpoint-url http://127.0.0.1:8080
  inferq invoke-endpoint-async demo --body '{"text": "hi"}' --select OutputLocation
  inferq invoke-endpoint-async demo --upload ./inputs --upload-prefix s3://demo/in/ \\
      > accepted.jsonl && inferq wait --download ./results < accepted.jsonl
  printf 'demo\\n{"EndpointName": "demo", "InferenceId": "r2"}\\n' \\
      | inferq invoke-endpoint-async - --input-location s3://demo/in/input.json

\b
ENDPOINT_NAME "-" reads one request per line from stdin: an endpoint name, or a JSON
object whose keys name parameters (EndpointName, InputLocation, InferenceId, ...).
Answers are JSON Lines, in input order; a bad line gets an {"Error": ...} line and
the exit status is 1.
"""

#: the command's option for each parameter (the ENDPOINT_NAME argument aside)
API_OPTIONS = {
    "input_location": "InputLocation",
    "content_type": "ContentType",
    "accept": "Accept",
    "custom_attributes": "CustomAttributes",
    "inference_id": "InferenceId",
    "invocation_timeout_seconds": "InvocationTimeoutSeconds",
    "request_ttl_seconds": "RequestTTLSeconds",
    "s3_output_path_extension": "S3OutputPathExtension",
    "filename": "Filename",
}

PARAMETER_OPTIONS = (
    click.option("--input-location", help="s3:// URI of the input (or use --body/--upload)."),
    click.option("--content-type", help="MIME type of the input, passed to the model."),
    click.option("--accept", help="MIME type wanted for the output."),
    click.option(
        "--custom-attribute",
        "--custom-attributes",
        "custom_attributes",
        help="Opaque text passed to the model (X-Amzn-SageMaker-Custom-Attributes).",
    ),
    click.option("--inference-id", help="Your id for the request (echoed in the answer)."),
    click.option(
        "--invocation-timeout-second",
        "--invocation-timeout-seconds",
        "invocation_timeout_seconds",
        type=int,
        help="Seconds the model may take (1-3600; default 900).",
    ),
    click.option(
        "--request-ttl-second",
        "--request-ttl-seconds",
        "request_ttl_seconds",
        type=int,
        help="Seconds the request may wait in the queue (60-21600; default 21600).",
    ),
    click.option("--s3-output-path-extension", help="Folder under the endpoint's S3OutputPath."),
    click.option("--filename", help="Name of the output object instead of <uuid>.out."),
    click.option("--body", help="Inline input (up to 128,000 bytes) instead of a location."),
    click.option(
        "--body-file",
        type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
        help="Inline input read from a file ('-': stdin).",
    ),
)
SELECT_OPTIONS = (
    click.option(
        "--select",
        "select_text",
        help="'*' (default): the whole response; a property (OutputLocation, InferenceId, "
        "FailureLocation, RequestId, ...): its value; '^ParameterName': that parameter's value.",
    ),
    click.option("--pass-thru", is_flag=True, help="Deprecated: use --select ^EndpointName."),
    click.option("--force", is_flag=True, help="Accepted; there is no confirmation to skip."),
)
UPLOAD_OPTIONS = (
    click.option(
        "--upload",
        "upload_path",
        type=click.Path(exists=True, path_type=Path),
        help="Upload FILE, or every file in DIR, first; one request per file.",
    ),
    click.option("--upload-prefix", help="s3:// prefix the uploaded files go under."),
)


def selection_of(select_text: str | None, pass_thru: bool) -> Selection:
    if pass_thru:
        if select_text is not None:
            raise click.UsageError("--pass-thru and --select do not go together")
        click.echo("WARNING: --pass-thru is deprecated; use --select ^EndpointName", err=True)
        return parse_selection("^EndpointName")
    return parse_selection(select_text or "*")


def inline_body(body: str | None, body_file: Path | None, *, stdin_busy: bool) -> bytes | None:
    """``--body`` or ``--body-file`` ('-': stdin, unless stdin has the pipeline's requests)."""
    if body is not None and body_file is not None:
        raise click.UsageError("--body and --body-file do not go together")
    if body_file is not None and str(body_file) == "-":
        if stdin_busy:
            raise click.UsageError("--body-file - cannot read stdin: stdin has the requests")
        return sys.stdin.buffer.read()
    if body_file is not None:
        return body_file.read_bytes()
    return body.encode() if body is not None else None


def defaults_from(given: dict[str, Any], *, stdin_busy: bool) -> dict[str, Any]:
    """The API parameters the options name; the command line's part of every request."""
    defaults = {api: given[name] for name, api in API_OPTIONS.items() if given[name] is not None}
    body = inline_body(given["body"], given["body_file"], stdin_busy=stdin_busy)
    if body is not None:
        defaults["Body"] = body
    return defaults


def uploaded_requests(
    clients: Clients, endpoint_name: str, defaults: dict[str, Any], given: dict[str, Any]
) -> list[dict[str, Any]]:
    """Upload ``--upload`` under ``--upload-prefix``: one request per file."""
    path, prefix = given["upload_path"], given["upload_prefix"]
    if endpoint_name == "-":
        raise click.UsageError("--upload needs an endpoint name, not '-'")
    if prefix is None:
        raise click.UsageError("--upload needs --upload-prefix s3://bucket/prefix/")
    if {"InputLocation", "Body"} & defaults.keys():
        raise click.UsageError("--upload makes the input locations; drop --input-location/--body")
    if path.is_dir() and {"InferenceId", "Filename"} & defaults.keys():
        raise click.UsageError("--inference-id/--filename name one request, not a folder's")
    locations = upload.upload_inputs(
        clients("s3"),
        path,
        prefix,
        workers=given["concurrency"],
        progress=wanted(given["progress"]),
    )
    return [{**defaults, "EndpointName": endpoint_name, "InputLocation": at} for at in locations]


def answers(clients: Clients, endpoint_name: str, given: dict[str, Any], batch: Batch) -> Any:
    """The values to print: one per request of the mode the options choose."""
    defaults = defaults_from(given, stdin_busy=endpoint_name == "-")
    if given["upload_path"] is not None:
        return batch.requests(uploaded_requests(clients, endpoint_name, defaults, given))
    if endpoint_name == "-":
        return batch.lines(sys.stdin, defaults)
    return [batch.invoker.invoke(complete({**defaults, "EndpointName": endpoint_name}))]


@click.command("invoke-endpoint-async", epilog=EXAMPLES)
@click.argument("endpoint_name")
@options.stacked(
    *PARAMETER_OPTIONS,
    *SELECT_OPTIONS,
    *UPLOAD_OPTIONS,
    options.concurrency_option,
    options.progress_option,
    options.output_option,
)
@options.connection_options
def invoke_endpoint_async(connection: ConnectionOptions, endpoint_name: str, **given: Any) -> None:
    """Queue an inference on an asynchronous endpoint (InvokeEndpointAsync).

    The answer (InferenceId, OutputLocation, FailureLocation) says where the result will
    appear; `inferq wait` waits for it. Works against inferq (--endpoint-url) or AWS.
    """
    selection = selection_of(given["select_text"], given["pass_thru"])
    printer = Printer(given["output_format"])
    with reported():
        clients = Clients(connection)
        invoker = Invoker(
            runtime=clients("sagemaker-runtime"),
            selection=selection,
            echo_input=given["upload_path"] is not None,
        )
        batch = Batch(invoker=invoker, workers=given["concurrency"])
        for value in answers(clients, endpoint_name, given, batch):
            printer.emit(value)
    printer.close()
    if batch.failed:
        sys.exit(1)
