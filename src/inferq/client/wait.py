"""``inferq wait``: wait until every inference has its output or failure object, polling with
exponential backoff, with a progress bar; optionally download the results."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from inferq.client import options
from inferq.client.errors import reported
from inferq.client.output import Printer
from inferq.client.pool import ordered_map
from inferq.client.progress import ProgressBar, wanted
from inferq.client.session import Clients, ConnectionOptions
from inferq.client.status import StatusSource, status_source
from inferq.client.tracking import Status, Tracked, name_downloads, tracked_from
from inferq.client.upload import split_s3_uri

EXAMPLES = """\b
Examples:
  inferq invoke-endpoint-async demo --upload ./inputs --upload-prefix s3://demo/in/ \\
      | inferq wait --download ./results
  inferq wait s3://demo/output/0b1c....out --timeout 600
  inferq wait 's3://demo/output/0b1c....out,s3://demo/failure/0b1c...-error.out'

\b
Exit status: 0 when every inference completed, 1 when any failed (their failure
bodies are printed on stderr and in the answers), 3 when --timeout passed first.
"""
EXIT_FAILED = 1
EXIT_TIMED_OUT = 3
#: how much of a failure body goes to stderr
SHOWN_FAILURE_CHARS = 4000


@dataclass(frozen=True, kw_only=True, slots=True)
class Polling:
    """Poll every ``interval`` seconds, backing off (x2) to ``max_interval`` while nothing
    settles; give up after ``timeout`` seconds (None: never)."""

    interval: float = 1.0
    max_interval: float = 20.0
    timeout: float | None = 3600.0
    workers: int = 8

    def next_delay(self, delay: float, progressed: bool) -> float:
        return self.interval if progressed else min(delay * 2, self.max_interval)


class Settler:
    """Checks one inference and, once it has settled, fetches what the caller wants of it."""

    def __init__(
        self, source: StatusSource, s3: Any, download_dir: Path | None, bar: ProgressBar
    ) -> None:
        self.source, self.s3, self.download_dir, self.bar = source, s3, download_dir, bar

    def check(self, item: Tracked) -> bool:
        status = self.source.status(item)
        if status is Status.PENDING:
            return False
        if status is Status.FAILED:
            self.keep_failure(item)
        elif self.download_dir is not None:
            item.download = self.save(item.output, item.names[0])
        item.status = status
        self.bar.update(done=status is Status.COMPLETED, failed=status is Status.FAILED)
        return True

    def keep_failure(self, item: Tracked) -> None:
        assert item.failure is not None
        bucket, key = split_s3_uri(item.failure)
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        item.reason = body.decode("utf-8", errors="replace")
        if self.download_dir is not None:
            item.download = str(self.download_dir / item.names[1])
            Path(item.download).write_bytes(body)

    def save(self, location: str | None, name: str) -> str:
        assert location is not None and self.download_dir is not None
        bucket, key = split_s3_uri(location)
        target = self.download_dir / name
        partial = target.with_name(f".{name}.part")
        with partial.open("wb") as file:
            shutil.copyfileobj(self.s3.get_object(Bucket=bucket, Key=key)["Body"], file)
        partial.replace(target)
        return str(target)


def pending_of(items: list[Tracked]) -> list[Tracked]:
    return [item for item in items if item.status is Status.PENDING]


def poll_until_settled(
    items: list[Tracked], check: Callable[[Tracked], bool], polling: Polling
) -> bool:
    """Check the pending items each round until none is left or time is up; True if none is."""
    deadline = time.monotonic() + polling.timeout if polling.timeout else float("inf")
    delay = polling.interval / 2  # the first wait without progress is one interval
    pending = pending_of(items)
    while pending:
        progressed = any(list(ordered_map(check, pending, polling.workers)))
        pending = pending_of(items)
        left = deadline - time.monotonic()
        if not pending or left <= 0:
            break
        delay = polling.next_delay(delay, progressed)
        time.sleep(min(delay, left))
    return not pending


def read_inferences(arguments: Iterable[str]) -> list[Tracked]:
    texts = list(arguments)
    if not texts or texts == ["-"]:
        texts = list(sys.stdin)
    return [tracked_from(text) for text in texts if text.strip()]


def report_failures(items: list[Tracked]) -> None:
    for item in items:
        if item.status is Status.FAILED:
            shown = (item.reason or "")[:SHOWN_FAILURE_CHARS]
            click.echo(f"FAILED {item.failure or item.output or ''}\n{shown}", err=True)


def exit_status(items: list[Tracked]) -> int:
    statuses = {item.status for item in items}
    if Status.FAILED in statuses:
        return EXIT_FAILED
    return EXIT_TIMED_OUT if Status.PENDING in statuses else 0


def wait_for(items: list[Tracked], clients: Clients, polling: Polling, **how: Any) -> None:
    """Poll until every item settles (or time is up), the progress bar on stderr."""
    failed_already = len(items) - len(pending_of(items))
    bar = ProgressBar("wait", len(items), enabled=how["progress"])
    bar.update(failed=failed_already)
    settler = Settler(status_source(clients), clients("s3"), how["download_dir"], bar)
    try:
        poll_until_settled(items, settler.check, polling)
    finally:
        bar.close()


@click.command("wait", epilog=EXAMPLES)
@click.argument("inferences", nargs=-1, metavar="[INFERENCE]...")
@click.option(
    "--download",
    "download_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Save each output (and failure body) in this folder.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=3600,
    show_default=True,
    help="Seconds to wait at most (0: no limit).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between HeadObject rounds while results keep arriving.",
)
@click.option(
    "--max-poll-interval",
    type=click.FloatRange(min=0.01),
    default=20.0,
    show_default=True,
    help="The interval doubles up to this while nothing settles.",
)
@options.stacked(options.concurrency_option, options.progress_option, options.output_option)
@options.connection_options
def wait(connection: ConnectionOptions, inferences: tuple[str, ...], **given: Any) -> None:
    """Wait until inferences have their output (or failure) object.

    Each INFERENCE is a line `inferq invoke-endpoint-async` printed, an output location,
    or OUTPUT,FAILURE locations; with none (or "-"), they are read from stdin. Prints one
    answer per inference, in order, with its Status: Completed, Failed or Pending.
    """
    items = read_inferences(inferences)
    download_dir = given["download_dir"]
    if download_dir is not None:
        download_dir.mkdir(parents=True, exist_ok=True)
    name_downloads(items)
    polling = Polling(
        interval=given["poll_interval"],
        max_interval=max(given["max_poll_interval"], given["poll_interval"]),
        timeout=given["timeout"] or None,
        workers=given["concurrency"],
    )
    with reported():
        how = {"download_dir": download_dir, "progress": wanted(given["progress"])}
        wait_for(items, Clients(connection), polling, **how)
    printer = Printer(given["output_format"])
    for item in items:
        printer.emit(item.answer())
    printer.close()
    report_failures(items)
    sys.exit(exit_status(items))
