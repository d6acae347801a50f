"""``SQLiteState``: the queue and the catalog in one SQLite file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from inferq import errors
from inferq.state.sqlite.catalog import SQLiteCatalog
from inferq.state.sqlite.database import Database
from inferq.state.sqlite.queue import SQLiteJobQueue


class SQLiteState:
    """Opened from ``sqlite:///absolute/path.db`` or ``sqlite://relative/path.db``."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._queue = SQLiteJobQueue(database)
        self._catalog = SQLiteCatalog(database)

    @classmethod
    async def open(cls, path: str | Path) -> SQLiteState:
        """Open the database file at ``path``, creating and migrating it as needed."""
        return cls(await Database.open(str(path)))

    @classmethod
    async def from_url(cls, url: str) -> SQLiteState:
        return await cls.open(path_from_url(url))

    @property
    def queue(self) -> SQLiteJobQueue:
        return self._queue

    @property
    def catalog(self) -> SQLiteCatalog:
        return self._catalog

    @property
    def database(self) -> Database:
        """The file's connections and writer counters (for tests and metrics)."""
        return self._database

    async def close(self) -> None:
        await self._database.close()


def path_from_url(url: str) -> str:
    """``sqlite:///var/lib/inferq.db`` is absolute (the path after the third slash, as in any
    URL), ``sqlite://inferq.db`` and ``sqlite://data/inferq.db`` are relative to the working
    directory."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or parts.query or parts.fragment:
        raise errors.ConfigError(f"not a sqlite:// URL: {url!r}")
    path = unquote(parts.netloc + parts.path)
    if not path or path.endswith("/"):
        raise errors.ConfigError(f"{url!r} names no database file")
    return path
