"""Knowing the moment a file appears in a directory, without polling: Linux inotify."""

from __future__ import annotations

import ctypes
import os
import select
import struct
import time
from pathlib import Path

IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
_EVENT = struct.Struct("iIII")

_libc = ctypes.CDLL(None, use_errno=True)


class Watcher:
    """Files that appear (renamed into place, or closed after writing) in one directory, each
    with the ``time.time()`` at which this process learnt of it."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_MOVED_TO | IN_CLOSE_WRITE
        if _libc.inotify_add_watch(self._fd, str(directory).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        self.seen: dict[str, float] = {}

    def wait_for(self, name: str, timeout: float = 60) -> float:
        """When ``name`` appeared (it may have already)."""
        deadline = time.monotonic() + timeout
        while name not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{name} did not appear within {timeout} s")
            if select.select([self._fd], [], [], left)[0]:
                self._read()
        return self.seen.pop(name)

    def _read(self) -> None:
        data = os.read(self._fd, 1 << 16)
        now = time.time()
        offset = 0
        while offset < len(data):
            _, _, _, length = _EVENT.unpack_from(data, offset)
            start = offset + _EVENT.size
            name = data[start : start + length].rstrip(b"\0").decode()
            self.seen.setdefault(name, now)
            offset = start + length

    def close(self) -> None:
        os.close(self._fd)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
