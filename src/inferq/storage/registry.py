"""Open the object store a URL names; backends are imported only when chosen."""

from __future__ import annotations

import importlib
from typing import Protocol, cast
from urllib.parse import urlsplit

from inferq.errors import ConfigError
from inferq.storage.base import ObjectStore

BACKENDS: dict[str, str] = {
    "file": "inferq.storage.local:LocalObjectStore",
    "memory": "inferq.storage.memory:MemoryObjectStore",
}


class _FromUrl(Protocol):
    def from_url(self, url: str) -> ObjectStore: ...


def open_store(url: str) -> ObjectStore:
    """``file:///abs/path`` or ``memory://``."""
    scheme = urlsplit(url).scheme
    target = BACKENDS.get(scheme)
    if target is None:
        known = ", ".join(f"{name}://" for name in sorted(BACKENDS))
        raise ConfigError(f"storage URL {url!r}: unknown scheme {scheme!r} (expected {known})")
    return _load(target).from_url(url)


def _load(target: str) -> _FromUrl:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ConfigError(f"storage backend {target} is not installed: {error}") from error
    return cast(_FromUrl, getattr(module, attribute))
