"""Open the state backend a URL names: ``memory://``, ``sqlite:///path.db``, ``postgresql://``.

Backends are registered as ``"module:Class"`` strings and imported only when chosen, so that
an optional driver (psycopg) is needed only by those who use it. Each class offers
``async from_url(url)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable
from typing import Protocol, cast
from urllib.parse import urlsplit

from inferq import errors
from inferq.state.base import State

BACKENDS: dict[str, str] = {
    "memory": "inferq.state.memory:MemoryState",
    "sqlite": "inferq.state.sqlite:SQLiteState",
    "postgresql": "inferq.state.postgres:PostgresState",
    "postgres": "inferq.state.postgres:PostgresState",
}

#: the extra that installs a backend's driver, for the error message when it is missing
EXTRAS: dict[str, str] = {"postgresql": "postgres", "postgres": "postgres"}


class StateBackend(Protocol):
    def from_url(self, url: str) -> Awaitable[State]: ...


async def open_state(url: str) -> State:
    """Open (and migrate, where the backend has a schema) the state that ``url`` names."""
    scheme = urlsplit(url).scheme
    try:
        target = BACKENDS[scheme]
    except KeyError:
        known = ", ".join(f"{name}://" for name in BACKENDS)
        raise errors.ConfigError(f"unknown state URL scheme in {url!r}; known: {known}") from None
    return await _load(scheme, target).from_url(url)


def _load(scheme: str, target: str) -> StateBackend:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise errors.ConfigError(_unavailable(scheme, exc)) from exc
    return cast(StateBackend, getattr(module, class_name))


def _unavailable(scheme: str, exc: ModuleNotFoundError) -> str:
    message = f"the {scheme}:// state backend is not available ({exc})"
    if extra := EXTRAS.get(scheme):
        message += f": install inferq[{extra}]"
    return message
