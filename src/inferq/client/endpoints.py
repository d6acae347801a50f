"""``inferq endpoints list|describe|delete``: the endpoints of a SageMaker control plane."""

from __future__ import annotations

from typing import Any

import click

from inferq.client import options
from inferq.client.errors import reported
from inferq.client.output import Printer
from inferq.client.session import Clients, ConnectionOptions

STATUSES = (
    "OutOfService",
    "Creating",
    "Updating",
    "SystemUpdating",
    "RollingBack",
    "InService",
    "Deleting",
    "Failed",
    "UpdateRollbackFailed",
)
LISTED = ("EndpointName", "EndpointStatus", "CreationTime", "LastModifiedTime", "EndpointArn")
EXAMPLES = """\b
Examples:
  inferq endpoints list --output table
  inferq endpoints describe demo
  inferq endpoints delete demo --with-config --force
"""


@click.group("endpoints", epilog=EXAMPLES)
def endpoints() -> None:
    """List, describe and delete endpoints (inferq's or AWS's)."""


@endpoints.command("list", epilog=EXAMPLES)
@click.option("--name-contains", help="Only endpoints whose name contains this.")
@click.option("--status", "status_equals", type=click.Choice(STATUSES), help="Only these.")
@options.output_option
@options.connection_options
def list_endpoints(connection: ConnectionOptions, **given: Any) -> None:
    """List endpoints, newest first: one JSON line (or table row) each."""
    filters = {
        key: given[name]
        for key, name in (("NameContains", "name_contains"), ("StatusEquals", "status_equals"))
        if given[name]
    }
    printer = Printer(given["output_format"])
    with reported():
        pages = Clients(connection)("sagemaker").get_paginator("list_endpoints").paginate(**filters)
        for page in pages:
            for summary in page["Endpoints"]:
                printer.emit({key: summary.get(key) for key in LISTED})
    printer.close()


@endpoints.command("describe", epilog=EXAMPLES)
@click.argument("name")
@options.output_option
@options.connection_options
def describe_endpoint(connection: ConnectionOptions, name: str, output_format: str) -> None:
    """Describe endpoint NAME (DescribeEndpoint): status, variants, AsyncInferenceConfig."""
    printer = Printer(output_format, document=True)
    with reported():
        description = Clients(connection)("sagemaker").describe_endpoint(EndpointName=name)
    description.pop("ResponseMetadata", None)
    printer.emit(description)
    printer.close()


def delete_one(sm: Any, name: str, *, with_config: bool) -> dict[str, Any]:
    """DeleteEndpoint, and with ``with_config`` its EndpointConfig and that config's Models."""
    deleted: dict[str, Any] = {"EndpointName": name}
    if with_config:
        config = sm.describe_endpoint(EndpointName=name)["EndpointConfigName"]
        variants = sm.describe_endpoint_config(EndpointConfigName=config)["ProductionVariants"]
        deleted["EndpointConfigName"] = config
        deleted["ModelNames"] = sorted({v["ModelName"] for v in variants if "ModelName" in v})
    sm.delete_endpoint(EndpointName=name)
    if with_config:
        sm.delete_endpoint_config(EndpointConfigName=deleted["EndpointConfigName"])
        for model in deleted["ModelNames"]:
            sm.delete_model(ModelName=model)
    return deleted


@endpoints.command("delete", epilog=EXAMPLES)
@click.argument("names", nargs=-1, required=True, metavar="NAME...")
@click.option("--with-config", is_flag=True, help="Also delete its EndpointConfig and Models.")
@click.option("--force", "-f", is_flag=True, help="Do not ask for confirmation.")
@click.option("--wait", is_flag=True, help="Until the endpoints are gone.")
@click.option("--delay", type=click.FloatRange(min=0.01), default=5.0, show_default=True)
@options.output_option
@options.connection_options
def delete_endpoints(connection: ConnectionOptions, names: tuple[str, ...], **given: Any) -> None:
    """Delete the endpoints NAME... (asks first, unless --force)."""
    if not given["force"]:
        click.confirm(f"Delete endpoint(s) {', '.join(names)}?", abort=True, err=True)
    printer = Printer(given["output_format"])
    with reported():
        sm = Clients(connection)("sagemaker")
        for name in names:
            printer.emit(delete_one(sm, name, with_config=given["with_config"]))
        for name in names if given["wait"] else ():
            waiter_config = {"Delay": given["delay"], "MaxAttempts": 720}
            sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=waiter_config)
    printer.close()
