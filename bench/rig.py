"""An ``inferq serve`` process under test: pinned, with an endpoint deployed, and its SQLite
state read directly to learn when each accepted request finished."""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.inferq import InferqServer, deploy_async_endpoint

from bench import procs

ENDPOINT = "bench"
#: the defaults of ``inferq serve`` (the test helper shortens them for its own purposes)
SERVE_DEFAULTS = {"INFERQ_WORKER_LEASE_SECONDS": "30", "INFERQ_WORKER_POLL_SECONDS": "0.5"}


@dataclass
class BenchServer(InferqServer):
    """``InferqServer`` started with a chosen interpreter and pinned to a core."""

    python: str = sys.executable
    cpu: int | None = procs.SERVER_CPU
    extra_env: dict[str, str] = field(default_factory=lambda: dict(SERVE_DEFAULTS))

    def start(self, *args: str) -> BenchServer:
        command = [self.python, "-m", "inferq", "serve", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), *args]
        self.process = procs.spawn(command, cpu=self.cpu, log=self.log_path, env=self.env())
        self._wait_ready(timeout=60)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def db_path(self) -> Path:
        return self.data_dir / "state.db"

    def model_pids(self) -> list[int]:
        return procs.children(self.pid)

    def pin_models(self, cpu: int | None) -> None:
        for pid in self.model_pids():
            procs.pin(pid, cpu)

    def deploy(self, model: str, *, instances: int = 1, concurrency: int = 8) -> None:
        deploy_async_endpoint(self, ENDPOINT, model, concurrency=concurrency, instances=instances)

    def scale(self, instances: int) -> None:
        sm = self.client("sagemaker")
        sm.update_endpoint_weights_and_capacities(
            EndpointName=ENDPOINT,
            DesiredWeightsAndCapacities=[
                {"VariantName": "AllTraffic", "DesiredInstanceCount": instances}
            ],
        )
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=ENDPOINT, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600}
        )

    @contextmanager
    def db(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30)
        try:
            yield connection
        finally:
            connection.close()

    def pending(self) -> int:
        with self.db() as db:
            row = db.execute(
                "SELECT count(*) FROM invocations WHERE status IN ('Queued', 'InProgress')"
            ).fetchone()
        return int(row[0])

    def wait_drained(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.pending()} requests still pending after {timeout} s")
            time.sleep(0.05)

    def spans(self, since: float) -> list[tuple[str, float, float, float, str]]:
        """(inference_id, received_at, started_at, finished_at, status) of requests received
        after ``since`` (unix time), finished ones only."""
        with self.db() as db:
            rows = db.execute(
                "SELECT inference_id, received_at, started_at, finished_at, status "
                "FROM invocations WHERE received_at >= ? AND finished_at IS NOT NULL",
                (since,),
            ).fetchall()
        return [tuple(row) for row in rows]

    def finished(self, inference_id: str, timeout: float = 600) -> tuple[float, str]:
        """Wait for one request to finish: its finished_at and status."""
        deadline = time.monotonic() + timeout
        with self.db() as db:
            while time.monotonic() < deadline:
                row = db.execute(
                    "SELECT finished_at, status FROM invocations WHERE inference_id = ?",
                    (inference_id,),
                ).fetchone()
                if row is not None and row[0] is not None:
                    return float(row[0]), str(row[1])
                time.sleep(0.01)
        raise TimeoutError(f"{inference_id} did not finish in {timeout} s")


@contextmanager
def serving(
    data_dir: Path, *, python: str = sys.executable, cpu: int | None = procs.SERVER_CPU,
    env: dict[str, str] | None = None,
) -> Iterator[BenchServer]:  # fmt: skip
    server = BenchServer(data_dir, python=python, cpu=cpu)
    server.extra_env.update(env or {})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def overheads(
    server: BenchServer, answers: Iterable[tuple[float, str]], since: float
) -> list[tuple[float, float]]:
    """Per answered request that finished: seconds from its 202 (client clock) to its output
    existing (``finished_at``, stamped right after the output object was written), and of
    those, the seconds from its claim (``started_at``) to the output."""
    done = {row[0]: (row[2], row[3]) for row in server.spans(since)}
    return [(done[i][1] - t, done[i][1] - done[i][0]) for t, i in answers if i in done]


def read_wrk_log(path: Path) -> list[tuple[float, str]]:
    """(unix time of the 202, InferenceId) pairs that ``replay.lua`` logged."""
    if not path.exists():
        return []
    pairs = []
    for line in path.read_text().splitlines():
        t, status, inference_id = line.split()
        if status == "202":
            pairs.append((float(t), inference_id))
    return pairs
