"""Linux system calls the standard library does not wrap, looked up once in the C library.

Each is an optimisation only (early writeback, prefaulting): where it is missing (not Linux, an
old C library) callers get None and go on without it.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from typing import Any


def libc_function(name: str, argtypes: list[Any]) -> Callable[..., int] | None:
    """The C library's ``name`` returning an ``int``, or None off Linux or when it is absent.
    ctypes releases the GIL for the call, and errno is kept (``ctypes.get_errno``)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]
