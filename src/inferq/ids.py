"""Random (version 4) UUIDs, cheaply.

Every accepted request needs three (request id, job id, inference id). ``uuid.uuid4()`` asks the
kernel for 16 bytes each time, which releases and retakes the GIL per call: under load that hands
the interpreter to other threads three times per request. One ``os.urandom`` call here serves 256
identifiers, just as random.
"""

from __future__ import annotations

import os
import threading

_BATCH = 256


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._next = 0

    def take16(self) -> bytearray:
        with self._lock:
            if self._next >= len(self._bytes):
                self._bytes, self._next = os.urandom(16 * _BATCH), 0
            start = self._next
            self._next += 16
            return bytearray(self._bytes[start : start + 16])


_pool = _Pool()


def uuid4() -> str:
    """A random UUID in its canonical text form, as ``str(uuid.uuid4())``."""
    raw = _pool.take16()
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
