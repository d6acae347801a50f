"""Who may call: access key ids and their secrets.

The generated pair lives in ``<data_dir>/credentials`` in the AWS shared-credentials format, so
``AWS_SHARED_CREDENTIALS_FILE=<data_dir>/credentials`` points any AWS client at it.
"""

from __future__ import annotations

import configparser
import os
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from inferq.errors import ConfigError

CREDENTIALS_FILE = "credentials"
_KEY_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits
_SECTION = "default"


class CredentialStore(Protocol):
    def secret_for(self, access_key_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """A fixed set of access key ids and their secrets."""

    secrets: Mapping[str, str]

    def secret_for(self, access_key_id: str) -> str | None:
        return self.secrets.get(access_key_id)


def load_or_create(
    data_dir: Path, access_key_id: str | None, secret: str | None
) -> tuple[StaticCredentials, str, str, bool]:
    """The configured pair, else the one in ``data_dir``, else a new one saved there.

    Returns the store, the key id, the secret and whether the pair was created just now.
    """
    if access_key_id and secret:
        return StaticCredentials({access_key_id: secret}), access_key_id, secret, False
    if access_key_id or secret:
        raise ConfigError("Set both the access key id and the secret access key, or neither.")
    path = data_dir / CREDENTIALS_FILE
    created = not path.exists() and _create(path, _new_access_key_id(), _new_secret())
    key, value = _read(path)
    return StaticCredentials({key: value}), key, value, created


def _new_access_key_id() -> str:
    return "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16))


def _new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def _create(path: Path, access_key_id: str, secret: str) -> bool:
    """Write the pair unless another process got there first; True when ours was written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"[{_SECTION}]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        temporary.unlink(missing_ok=True)
    return True


def _read(path: Path) -> tuple[str, str]:
    parser = configparser.ConfigParser()
    try:
        parser.read_string(path.read_text())
        section = parser[_SECTION]
        return section["aws_access_key_id"].strip(), section["aws_secret_access_key"].strip()
    except (OSError, KeyError, configparser.Error) as error:
        raise ConfigError(f"Cannot read the credentials in {path}: {error}") from error
