"""botocore sessions and clients built from the command line's credential and client options.

Credentials come from botocore's own resolver (environment, shared files, SSO, instance roles)
unless the command names them: keys win over a profile, and a profile given by name or file wins
over the environment, as the PowerShell cmdlets' common parameters do.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config

from inferq import __version__


@dataclass(frozen=True, kw_only=True, slots=True)
class ConnectionOptions:
    """Where to send requests, as whom, and how patiently."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None
    profile_name: str | None = None
    profile_location: Path | None = None
    region: str | None = None
    endpoint_url: str | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_attempts: int | None = None
    retry_mode: str | None = None
    signing_region: str | None = None


def open_session(options: ConnectionOptions) -> Any:
    """A botocore session that reads the named profile (and file) instead of the defaults."""
    session = botocore.session.Session()
    if options.profile_location is not None:
        session.set_config_variable("credentials_file", str(options.profile_location))
    if options.profile_name is not None or options.profile_location is not None:
        # an explicit profile makes botocore skip the AWS_ACCESS_KEY_ID/... environment
        session.set_config_variable("profile", options.profile_name or "default")
    if options.access_key is not None:
        session.set_credentials(options.access_key, options.secret_key, options.session_token)
    return session


def client_config(options: ConnectionOptions, service: str) -> Config:
    """The cmdlet's ``-ClientConfig``: timeouts and retries, as botocore's ``Config``."""
    settings: dict[str, Any] = {"user_agent_extra": f"inferq/{__version__}"}
    if options.connect_timeout is not None:
        settings["connect_timeout"] = options.connect_timeout
    if options.read_timeout is not None:
        settings["read_timeout"] = options.read_timeout
    retries = {"total_max_attempts": options.max_attempts, "mode": options.retry_mode}
    if any(value is not None for value in retries.values()):
        settings["retries"] = {k: v for k, v in retries.items() if v is not None}
    if service == "s3" and options.endpoint_url is not None:
        settings["s3"] = {"addressing_style": "path"}
    return Config(**settings)


def sign_for_region(region: str) -> Any:
    """A ``before-sign`` handler that puts ``region`` in the credential scope (the .NET SDK's
    ``AuthenticationRegion``), whatever region the endpoint was resolved for."""

    def handler(request: Any, **_: Any) -> None:
        request.context.setdefault("signing", {})["region"] = region

    return handler


class Clients:
    """One session, and one botocore client per service, shared by the command's threads."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.options = options
        self._session = open_session(options)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._create(service)
            return self._clients[service]

    @property
    def region(self) -> str | None:
        region: str | None = self.options.region or self._session.get_config_variable("region")
        return region

    def _create(self, service: str) -> Any:
        client = self._session.create_client(
            service,
            region_name=self.options.region,
            endpoint_url=self.options.endpoint_url,
            config=client_config(self.options, service),
        )
        if self.options.signing_region is not None:
            client.meta.events.register("before-sign", sign_for_region(self.options.signing_region))
        return client
