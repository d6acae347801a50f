"""Early writeback of large spools: ranges started in order, each once, on a real file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from inferq.storage import files, writeback


def test_a_large_spool_starts_the_writeback_of_each_completed_range(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[int, int]] = []
    monkeypatch.setattr(writeback, "WRITEBACK_BYTES", 1000)
    monkeypatch.setattr(writeback, "start", lambda fd, offset, n: started.append((offset, n)))
    spool = files.Spool(tmp_path)
    for size in (600, 600, 300, 2500, 10):
        spool.write(b"x" * size)
    spool.discard()
    assert started == [(0, 1200), (1200, 2800)]  # contiguous, each byte once; the tail is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sync_file_range is Linux's")
def test_the_kernel_call_is_made_and_accepted(tmp_path: Path) -> None:
    assert writeback.available()
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        os.write(fd, b"y" * 65536)
        assert writeback._start is not None
        assert writeback._start(fd, 0, 65536, writeback._SYNC_FILE_RANGE_WRITE) == 0
        writeback.start(fd, 0, 65536)
    finally:
        os.close(fd)


def test_a_spool_written_with_writeback_is_sealed_whole(tmp_path: Path) -> None:
    spool = files.Spool(tmp_path)
    block = os.urandom(1 << 20)
    for _ in range(20):  # past WRITEBACK_BYTES
        spool.write(block)
    spool.seal({"k": "v"})
    assert Path(spool.path).read_bytes()[: 20 << 20] == block * 20


def test_chunks_are_written_whole_and_in_order_across_short_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_writev = os.writev

    def at_most_7_bytes(fd: int, buffers: list[memoryview]) -> int:
        data = b"".join(bytes(b) for b in buffers)[:7]
        return real_writev(fd, [data])

    monkeypatch.setattr(files.os, "writev", at_most_7_bytes)
    chunks = [b"abc", b"", b"defghijkl", b"m", b"nopqrstuvwxyz" * 3]
    spool = files.Spool(tmp_path)
    spool.write_chunks(chunks)
    spool.seal({})
    content = Path(spool.path).read_bytes()[: spool.size]
    assert content == b"".join(chunks)
    assert spool.size == len(b"".join(chunks))
