"""Processes the benchmarks start: pinned to a core, waited for, measured, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

#: the server under test runs here; load generators, peers' workers and model servers on the other
SERVER_CPU = 0
LOAD_CPU = 1


def cpus() -> int:
    return os.cpu_count() or 1


def pinned(cpu: int) -> set[int] | None:
    """The affinity set for ``cpu``, or None on a one-core machine (nothing to separate)."""
    return {cpu % cpus()} if cpus() > 1 else None


def pin(pid: int, cpu: int | None) -> None:
    """Move every thread of ``pid`` (and so what it starts later) to ``cpu``; None: any core."""
    mask = set(range(cpus())) if cpu is None else pinned(cpu)
    if mask is None:
        return
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.sched_setaffinity(int(task.name), mask)


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(
    port: int, timeout: float = 30, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def spawn(
    command: Sequence[str],
    *,
    cpu: int | None,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in ``log``, pinned to ``cpu`` (None: unpinned)."""
    mask = None if cpu is None else pinned(cpu)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, mask)) if mask else None,
        )


def stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM to the process group, then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        stop(process)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb(pid: int) -> float:
    return _status_kb(pid, "VmRSS") / 1024


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the peak resident set since start or since ``reset_peak_rss``."""
    return _status_kb(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> bool:
    """Set VmHWM back to the current RSS (Linux 4.0+, needs permission); whether it worked."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def pinned_here(cpu: int) -> Iterator[None]:
    """Run the calling thread (and threads it starts meanwhile) on ``cpu``, then restore."""
    mask = pinned(cpu)
    before = os.sched_getaffinity(0)
    if mask is not None:
        os.sched_setaffinity(0, mask)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
