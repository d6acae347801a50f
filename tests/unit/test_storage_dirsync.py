"""The directory fsync group commit of ``LocalObjectStore`` puts."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from inferq.storage import files


def test_every_sync_waits_for_an_fsync_begun_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    begun: list[float] = []

    def slow_fsync(path: str | Path) -> None:
        begun.append(time.monotonic())
        time.sleep(0.005)

    monkeypatch.setattr(files, "fsync_dir", slow_fsync)
    sync = files.DirSync(str(tmp_path))
    late: list[str] = []

    def put() -> None:
        for _ in range(20):
            called = time.monotonic()
            sync.sync()
            if not any(called <= start for start in begun):
                late.append("returned before an fsync that began after the call")

    threads = [threading.Thread(target=put) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not late
    assert len(begun) < 8 * 20  # shared between callers


def test_a_failed_fsync_fails_its_caller_and_the_next_one_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def flaky_fsync(path: str | Path) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk on fire")

    monkeypatch.setattr(files, "fsync_dir", flaky_fsync)
    sync = files.DirSync(str(tmp_path))
    with pytest.raises(OSError, match="disk on fire"):
        sync.sync()
    sync.sync()
    assert len(calls) == 2


def test_a_real_directory_sync(tmp_path: Path) -> None:
    files.DirSync(str(tmp_path)).sync()
