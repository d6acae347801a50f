"""Frozen settings objects. ``Settings.from_env`` is the only place that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "INFERQ_"


@dataclass(frozen=True, kw_only=True, slots=True)
class AuthSettings:
    access_key_id: str | None = None
    secret_access_key: str | None = None
    #: the largest accepted difference between the request time and ours, in seconds
    max_skew_seconds: int = 900


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkerSettings:
    #: a claimed job whose lease is not renewed within this many seconds is given to another worker
    lease_seconds: float = 30.0
    #: how often an idle dispatcher looks for work when nobody wakes it
    poll_seconds: float = 0.5
    #: default MaxConcurrentInvocationsPerInstance when the endpoint config has none
    default_concurrency: int = 4
    #: how many times an infrastructure fault (instance died) is retried before the job fails
    max_attempts: int = 3
    #: seconds to wait for a model instance's first healthy /ping
    startup_timeout_seconds: float = 600.0
    #: seconds a finished request's queue row is kept; the sweeper deletes older ones (the result
    #: objects stay in the store). A value <= 0 keeps every row forever.
    retention_seconds: float = 7 * 24 * 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path(".inferq")
    #: catalog and queue backend, e.g. sqlite:///path/state.db (default: inside data_dir)
    state_url: str | None = None
    #: object store backend, e.g. file:///path/objects (default: inside data_dir)
    storage_url: str | None = None
    region: str = "us-east-1"
    account_id: str = "000000000000"
    #: create and deploy the demo endpoint on start
    demo: bool = False
    #: run the dispatcher inside the serving process
    embedded_worker: bool = True
    auth: AuthSettings = field(default_factory=AuthSettings)
    worker: WorkerSettings = field(default_factory=WorkerSettings)

    @property
    def resolved_state_url(self) -> str:
        return self.state_url or f"sqlite:///{(self.data_dir / 'state.db').resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'objects').resolve()}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``INFERQ_*`` variables, then apply explicit overrides.

        Nested parts are named with their prefix: ``INFERQ_WORKER_LEASE_SECONDS`` sets
        ``worker.lease_seconds``; ``INFERQ_ACCESS_KEY_ID`` sets ``auth.access_key_id``.
        """
        env = os.environ if environ is None else environ
        auth = _from_prefixed(AuthSettings(), env, ENV_PREFIX)
        worker = _from_prefixed(WorkerSettings(), env, ENV_PREFIX + "WORKER_")
        base: Settings = _from_prefixed(cls(auth=auth, worker=worker), env, ENV_PREFIX)
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **clean)


def _from_prefixed(obj: Any, env: Mapping[str, str], prefix: str) -> Any:
    changes: dict[str, Any] = {}
    for f in fields(obj):
        raw = env.get(prefix + f.name.upper())
        if raw is None or f.name in ("auth", "worker"):
            continue
        changes[f.name] = _coerce(raw, getattr(obj, f.name))
    return replace(obj, **changes)


def _coerce(raw: str, current: Any) -> Any:
    if isinstance(current, bool):
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, Path):
        return Path(raw)
    return raw
