"""The body checksums S3 clients send, computed incrementally.

``x-amz-checksum-crc32`` uses ``zlib``; SHA-1, SHA-256 and MD5 use ``hashlib``. CRC32C and
CRC64NVME have no stdlib implementation: a native one is used when ``awscrt`` (botocore's
``[crt]`` extra), ``crc32c`` or ``google-crc32c`` is installed, otherwise the pure-Python
engine below. That engine runs 1,024 independent CRC "lanes" at once, using ``bytes.translate``
for the table look-ups and big integers for the XORs, then folds the lanes together; it is
about ten times faster than a byte-at-a-time loop.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
import zlib
from collections.abc import Callable
from typing import Any, Protocol

#: digest size in bytes of every algorithm a request may name
DIGEST_SIZES = {"CRC32": 4, "CRC32C": 4, "CRC64NVME": 8, "SHA1": 20, "SHA256": 32, "MD5": 16}

CrcFunction = Callable[[bytes, int], int]
"""``f(data, previous)`` with zlib's convention: ``previous`` is a finished CRC (0 to start)."""


class Checksum(Protocol):
    def update(self, data: bytes) -> None: ...

    def digest(self) -> bytes: ...


def new_checksum(algorithm: str) -> Checksum:
    """A fresh checksum for an algorithm name of ``DIGEST_SIZES`` (upper case)."""
    if algorithm == "CRC32":
        return CrcChecksum(_zlib_crc32, 4)
    if algorithm == "CRC32C":
        return CrcChecksum(_CRC32C, 4, _BLOCK)
    if algorithm == "CRC64NVME":
        return CrcChecksum(_CRC64NVME, 8, _BLOCK)
    return hashlib.new(algorithm.lower())


class CrcChecksum:
    """A running CRC that feeds its function whole blocks, so the lane engine stays fast."""

    def __init__(self, function: CrcFunction, size: int, block: int = 0) -> None:
        self._function = function
        self._size = size
        self._block = block
        self._pending = bytearray()
        self._crc = 0

    def update(self, data: bytes) -> None:
        if not self._block:
            self._crc = self._function(data, self._crc)
            return
        self._pending += data
        if len(self._pending) >= self._block:
            whole = len(self._pending) - len(self._pending) % self._block
            self._crc = self._function(bytes(self._pending[:whole]), self._crc)
            del self._pending[:whole]

    def digest(self) -> bytes:
        crc = self._function(bytes(self._pending), self._crc) if self._pending else self._crc
        return crc.to_bytes(self._size, "big")


def _zlib_crc32(data: bytes, previous: int) -> int:
    return zlib.crc32(data, previous)


class ReflectedCrc:
    """A reflected CRC (initial value and final XOR all ones) in pure Python.

    ``__call__`` has zlib's convention. Whole blocks of every ``_GEARS`` size go through the
    lane engine; the short tail goes byte by byte.
    """

    def __init__(self, poly: int, width: int) -> None:
        self.mask = (1 << width) - 1
        self._table = _byte_table(poly)
        self._planes = tuple(
            bytes((v >> 8 * k) & 0xFF for v in self._table) for k in range(width // 8)
        )
        self._shifts: dict[int, tuple[list[int], ...]] = {}

    def __call__(self, data: bytes, previous: int = 0) -> int:
        register = previous ^ self.mask
        done = 0
        for lanes, steps in _GEARS:
            block = lanes * steps
            while len(data) - done >= block:
                register = self._lanes(register, data[done : done + block], lanes, steps)
                done += block
        return self.bytewise(register, data[done:]) ^ self.mask

    def bytewise(self, register: int, data: bytes) -> int:
        table = self._table
        for byte in data:
            register = table[(register ^ byte) & 0xFF] ^ (register >> 8)
        return register

    def _lanes(self, register: int, block: bytes, lanes: int, steps: int) -> int:
        """Run the CRC over ``lanes`` slices of ``block`` side by side, then chain them.

        Plane ``k`` is one big integer holding byte ``k`` of every lane's register.
        """
        planes = [0] * len(self._planes)
        for step in range(steps):
            column = int.from_bytes(block[step::steps], "little")
            index = (planes[0] ^ column).to_bytes(lanes, "little")
            planes = [
                int.from_bytes(index.translate(table), "little") ^ following
                for table, following in zip(self._planes, [*planes[1:], 0], strict=True)
            ]
        return self._chain(register, self._lane_values(planes, lanes), steps)

    def _lane_values(self, planes: list[int], lanes: int) -> memoryview:
        width = len(planes)
        words = bytearray(lanes * width)
        for k, plane in enumerate(planes):
            offset = k if sys.byteorder == "little" else width - 1 - k
            words[offset::width] = plane.to_bytes(lanes, "little")
        return memoryview(words).cast("I" if width == 4 else "Q")

    def _chain(self, register: int, lanes: memoryview, length: int) -> int:
        """Fold lane registers in order: each step advances the register by one lane's length."""
        shift = self._shift_tables(length)
        for lane in lanes:
            advanced = 0
            for k, table in enumerate(shift):
                advanced ^= table[(register >> 8 * k) & 0xFF]
            register = advanced ^ lane
        return register

    def _shift_tables(self, length: int) -> tuple[list[int], ...]:
        """Tables that advance a register over ``length`` zero bytes, one per register byte."""
        if length not in self._shifts:
            basis = [self.bytewise(1 << bit, bytes(length)) for bit in range(len(self._planes) * 8)]
            self._shifts[length] = tuple(
                _linear_table(basis[8 * k : 8 * k + 8]) for k in range(len(self._planes))
            )
        return self._shifts[length]


def _byte_table(poly: int) -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ poly if value & 1 else value >> 1
        table.append(value)
    return table


def _linear_table(basis: list[int]) -> list[int]:
    """The image of every byte under the GF(2)-linear map whose bit images are ``basis``."""
    table = [0] * 256
    for byte in range(1, 256):
        low = byte & -byte
        table[byte] = table[byte ^ low] ^ basis[low.bit_length() - 1]
    return table


def _native(name: str) -> CrcFunction | None:
    """The CRC function of an optional native package, adapted to zlib's convention."""
    for module_name, attribute, adapt in _NATIVE[name]:
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):
            continue
        return adapt(function)
    return None


def _same(function: Any) -> CrcFunction:
    return lambda data, previous: int(function(data, previous))


def _swapped(function: Any) -> CrcFunction:
    return lambda data, previous: int(function(previous, data))


_NATIVE: dict[str, list[tuple[str, str, Callable[[Any], CrcFunction]]]] = {
    "crc32c": [
        ("awscrt.checksums", "crc32c", _same),
        ("crc32c", "crc32c", _same),
        ("google_crc32c", "extend", _swapped),
    ],
    "crc64nvme": [("awscrt.checksums", "crc64nvme", _same)],
}

#: (lanes, steps) pairs, largest block first; what is left after the last goes byte by byte
_GEARS = ((1024, 256), (256, 64))
_BLOCK = _GEARS[0][0] * _GEARS[0][1]

PURE_CRC32C = ReflectedCrc(0x82F63B78, 32)
PURE_CRC64NVME = ReflectedCrc(0x9A6C9329AC4BC9B5, 64)
_CRC32C: CrcFunction = _native("crc32c") or PURE_CRC32C
_CRC64NVME: CrcFunction = _native("crc64nvme") or PURE_CRC64NVME
