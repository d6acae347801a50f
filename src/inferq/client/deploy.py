"""``inferq deploy``: a model folder (or inference.py) to an InService asynchronous endpoint,
the way a team deploys with boto3: model.tar.gz to S3, Model, EndpointConfig, Endpoint."""

from __future__ import annotations

import math
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from botocore.exceptions import ClientError, WaiterError

from inferq.client import archive, options
from inferq.client.errors import ClientFailure, Problem, is_not_found, reported
from inferq.client.output import Printer
from inferq.client.session import Clients, ConnectionOptions

DEFAULT_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.3.0-cpu-py311"
EXAMPLES = """\b
Examples:
  inferq deploy ./sentiment --endpoint-url http://127.0.0.1:8080
  inferq deploy ./sentiment/inference.py --name sentiment --bucket models \\
      --instances 2 --max-concurrency 4
  inferq deploy ./sentiment --update        # new Model + EndpointConfig, UpdateEndpoint
"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """Everything one deployment creates, named once."""

    path: Path
    name: str
    bucket: str
    image: str
    instance_type: str = "ml.m5.large"
    instances: int = 1
    max_concurrency: int | None = None
    output_path: str
    failure_path: str
    role: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    #: Model and EndpointConfig names: the endpoint's, with a timestamp, so redeploys never clash
    version: str

    @property
    def model_data_url(self) -> str:
        return f"s3://{self.bucket}/{self.name}/model.tar.gz"

    def container(self) -> dict[str, Any]:
        container: dict[str, Any] = {"Image": self.image, "ModelDataUrl": self.model_data_url}
        program = archive.program_name(self.path)
        environment = {"SAGEMAKER_PROGRAM": program} if program else {}
        environment.update(self.environment)
        if environment:
            container["Environment"] = environment
        return container

    def async_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "OutputConfig": {"S3OutputPath": self.output_path, "S3FailurePath": self.failure_path}
        }
        if self.max_concurrency is not None:
            config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.max_concurrency}
        return config


def endpoint_name_for(path: Path) -> str:
    """The folder's name (a file's folder), as a valid EndpointName."""
    folder = path.resolve().parent if path.is_file() else path.resolve()
    name = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9]", "-", folder.name)).strip("-")
    return name[:63].rstrip("-") or "model"


def versioned(name: str) -> str:
    """A new model/config name for each deploy: the time says when, and a random suffix keeps
    two deploys within the same second (a deploy and its --update) apart."""
    return f"{name[:43].rstrip('-')}-{datetime.now(UTC):%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


def endpoint_status(sm: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        description: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
    except ClientError as exc:
        if "Could not find" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    return description


def ensure_bucket(s3: Any, bucket: str, region: str | None) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        where = {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **(where if region not in (None, "us-east-1") else {}))
        say(f"created bucket s3://{bucket}")


def upload_model(s3: Any, plan: Plan) -> None:
    with tempfile.TemporaryFile() as tarball:
        names = archive.write_archive(plan.path, tarball)
        tarball.seek(0)
        s3.put_object(Bucket=plan.bucket, Key=f"{plan.name}/model.tar.gz", Body=tarball)
    say(f"uploaded {plan.model_data_url} ({', '.join(names)})")


def create_version(sm: Any, plan: Plan) -> None:
    """The Model and the EndpointConfig with AsyncInferenceConfig, both named ``plan.version``."""
    role = {"ExecutionRoleArn": plan.role} if plan.role else {}
    sm.create_model(ModelName=plan.version, PrimaryContainer=plan.container(), **role)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": plan.version,
        "InitialInstanceCount": plan.instances,
        "InstanceType": plan.instance_type,
    }
    sm.create_endpoint_config(
        EndpointConfigName=plan.version,
        ProductionVariants=[variant],
        AsyncInferenceConfig=plan.async_config(),
    )
    say(f"created model and endpoint config {plan.version}")


def say(message: str) -> None:
    click.echo(message, err=True)


def roll_out(sm: Any, plan: Plan, *, exists: bool) -> None:
    if exists:
        sm.update_endpoint(EndpointName=plan.name, EndpointConfigName=plan.version)
        say(f"updating endpoint {plan.name}")
    else:
        sm.create_endpoint(EndpointName=plan.name, EndpointConfigName=plan.version)
        say(f"creating endpoint {plan.name}")


def wait_in_service(sm: Any, name: str, *, delay: float, timeout: float) -> dict[str, Any]:
    """The ``endpoint_in_service`` waiter; its FailureReason, as the error, if it fails."""
    config = {"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout / delay))}
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=config)
    except WaiterError as exc:
        description = endpoint_status(sm, name) or {"EndpointStatus": "gone"}
        reason = description.get("FailureReason") or str(exc)
        message = f"{name} is {description.get('EndpointStatus')}: {reason}"
        raise ClientFailure(Problem("EndpointNotInService", message)) from exc
    return endpoint_status(sm, name) or {}


def rolled_out(plan: Plan, description: dict[str, Any]) -> dict[str, Any]:
    """A failed update leaves the endpoint InService on its old config, with a FailureReason."""
    config = description.get("EndpointConfigName")
    if config != plan.version:
        reason = description.get("FailureReason") or "the endpoint kept its previous config"
        raise ClientFailure(Problem("UpdateFailed", f"{plan.name} stayed on {config}: {reason}"))
    return description


def deployed(plan: Plan, description: dict[str, Any]) -> dict[str, Any]:
    return {
        "EndpointName": plan.name,
        "EndpointArn": description.get("EndpointArn"),
        "EndpointStatus": description.get("EndpointStatus"),
        "EndpointConfigName": plan.version,
        "ModelName": plan.version,
        "ModelDataUrl": plan.model_data_url,
        "S3OutputPath": plan.output_path,
        "S3FailurePath": plan.failure_path,
    }


def plan_from(path: Path, given: dict[str, Any], region: str | None) -> Plan:
    name = given["name"] or endpoint_name_for(path)
    bucket = given["bucket"] or name.lower()
    under = f"s3://{bucket}/{name}"
    return Plan(
        path=path,
        name=name,
        bucket=bucket,
        image=given["image"] or DEFAULT_IMAGE.format(region=region or "us-east-1"),
        instance_type=given["instance_type"],
        instances=given["instances"],
        max_concurrency=given["max_concurrency"],
        output_path=given["output_path"] or f"{under}/output",
        failure_path=given["failure_path"] or f"{under}/failure",
        role=given["role"],
        environment=dict(given["env"]),
        version=versioned(name),
    )


def environment_pair(_: click.Context, __: click.Parameter, values: tuple[str, ...]) -> Any:
    pairs = [value.partition("=") for value in values]
    if any(not key or not sep for key, sep, _ in pairs):
        raise click.BadParameter("use KEY=VALUE")
    return tuple((key, value) for key, _, value in pairs)


def deploy_plan(clients: Clients, plan: Plan, given: dict[str, Any]) -> dict[str, Any]:
    """Check, upload, create, roll out, wait: the steps in order, stopping at the first error."""
    sm, s3 = clients("sagemaker"), clients("s3")
    existing = endpoint_status(sm, plan.name)
    if existing is not None and not given["update"]:
        state = existing.get("EndpointStatus")
        raise ClientFailure(
            Problem("EndpointExists", f"{plan.name} exists ({state}); redeploy with --update")
        )
    ensure_bucket(s3, plan.bucket, clients.region)
    upload_model(s3, plan)
    create_version(sm, plan)
    roll_out(sm, plan, exists=existing is not None)
    if not given["wait"]:
        return deployed(plan, endpoint_status(sm, plan.name) or {})
    say(f"waiting for {plan.name} to be InService")
    description = wait_in_service(sm, plan.name, delay=given["delay"], timeout=given["timeout"])
    return deployed(plan, rolled_out(plan, description))


@click.command("deploy", epilog=EXAMPLES)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--name", help="Endpoint name. [default: the folder's name]")
@click.option(
    "--bucket", help="Bucket for the model and results, created if missing. [default: the name]"
)
@click.option("--image", help=f"Inference image. [default: {DEFAULT_IMAGE}]")
@click.option("--instance-type", default="ml.m5.large", show_default=True)
@click.option("--instances", type=click.IntRange(0), default=1, show_default=True)
@click.option("--max-concurrency", type=click.IntRange(1, 1000), help="Per instance.")
@click.option("--output-path", help="S3OutputPath. [default: s3://BUCKET/NAME/output]")
@click.option("--failure-path", help="S3FailurePath. [default: s3://BUCKET/NAME/failure]")
@click.option("--role", help="ExecutionRoleArn of the Model (needed on AWS).")
@click.option("--env", multiple=True, callback=environment_pair, help="KEY=VALUE for the model.")
@click.option("--update", is_flag=True, help="Redeploy an existing endpoint (UpdateEndpoint).")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Until InService.")
@click.option(
    "--delay",
    type=click.FloatRange(min=0.01),
    default=5.0,
    show_default=True,
    help="Seconds between DescribeEndpoint polls.",
)
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True)
@options.output_option
@options.connection_options
def deploy(connection: ConnectionOptions, path: Path, **given: Any) -> None:
    """Deploy a model folder or an inference.py as an asynchronous endpoint.

    Builds model.tar.gz (code/ in SageMaker's layout), uploads it to
    s3://BUCKET/NAME/model.tar.gz, creates the Model and an EndpointConfig with
    AsyncInferenceConfig, creates (or with --update, updates) the Endpoint and waits
    until it is InService.
    """
    printer = Printer(given["output_format"], document=True)
    with reported():
        clients = Clients(connection)
        plan = plan_from(path, given, clients.region)
        printer.emit(deploy_plan(clients, plan, given))
    printer.close()
