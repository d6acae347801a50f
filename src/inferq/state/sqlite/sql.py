"""The SQL files of this package, read once through ``importlib.resources``."""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass
from importlib import resources

#: a query block starts with a line ``-- name --``
_QUERY_HEADER = re.compile(r"^-- ([a-z_]+) --$", re.MULTILINE)
_MIGRATION_NAME = re.compile(r"^(\d{4})_\w+\.sql$")
_PACKAGE = __name__.rpartition(".")[0]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    script: str


def _read(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


@functools.cache
def queries() -> dict[str, str]:
    """The named queries of ``queries.sql``: ``{name: sql}``."""
    # split() with one capture group yields [preamble, name1, sql1, name2, sql2, ...]
    parts = _QUERY_HEADER.split(_read("queries.sql"))
    return {name: sql.strip() for name, sql in zip(parts[1::2], parts[2::2], strict=True)}


def query(name: str) -> str:
    return queries()[name]


def schema() -> str:
    return _read("schema.sql")


@functools.cache
def migrations() -> tuple[Migration, ...]:
    """``migrations/NNNN_name.sql`` in version order."""
    found = []
    for entry in resources.files(_PACKAGE).joinpath("migrations").iterdir():
        if match := _MIGRATION_NAME.match(entry.name):
            script = entry.read_text(encoding="utf-8")
            found.append(Migration(version=int(match[1]), name=entry.name, script=script))
    return tuple(sorted(found, key=lambda migration: migration.version))


def statements(script: str) -> list[str]:
    """Split a script into statements, so that it can run inside a transaction of ours
    (``executescript`` would commit first)."""
    found: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if _has_code(pending):
        raise ValueError(f"unterminated SQL statement: {pending.strip()[:80]!r}")
    return found


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.lstrip().startswith("--") for line in text.splitlines())
