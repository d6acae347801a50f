"""Starting the disk write of a large file while it is still being written.

Without this, a 1 GiB spool reaches its closing fsync with every page still dirty: the kernel's
background writeback starts only past a share of RAM, so the disk begins after the last byte
arrived, and the growing dirty set throttles the writer. Asking the kernel to start writing each
completed range (Linux ``sync_file_range(SYNC_FILE_RANGE_WRITE)``, as PostgreSQL does for its
``*_flush_after`` settings) overlaps the disk with the transfer, and the fsync finds little left:
a 1 GiB PUT took 35-50% less time on the benchmark machine (bench/PROFILES.md). It changes nothing
about durability, which still comes from the fsync. Elsewhere than Linux it does nothing.
"""

from __future__ import annotations

import ctypes

from inferq.linux import libc_function

#: start writing back once this much was written since the last start
WRITEBACK_BYTES = 16 << 20
_SYNC_FILE_RANGE_WRITE = 2

_start = libc_function(
    "sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
)


def start(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to begin writing ``length`` bytes at ``offset`` of ``fd`` to disk, without
    waiting for it. A failure is harmless (the fsync that follows writes everything), so the
    result is not checked. ctypes releases the GIL for the call."""
    if _start is not None:
        _start(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def available() -> bool:
    return _start is not None
