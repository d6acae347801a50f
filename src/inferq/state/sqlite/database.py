"""One SQLite database file, used off the event loop: a writer thread that group-commits, and a
reader thread.

All writes of this process go through one thread with one connection. It takes every write
request that queued up while the previous transaction was being committed and runs them all in
the next transaction, so concurrent callers share one fsync (group commit). Each caller's future
resolves only after that COMMIT returned. Reads use a second connection on a second thread;
WAL lets them run while the writer commits, and they see every commit that has resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from inferq import errors
from inferq.state.sqlite import sql
from inferq.state.sqlite.migrate import migrate

T = TypeVar("T")

#: runs inside the writer's transaction (or on the reader). A write operation must issue at most
#: one writing statement: SQLite undoes a failed statement by itself and keeps the transaction,
#: which is what lets one caller's error leave the rest of its batch intact.
Operation = Callable[[sqlite3.Connection], T]

#: other processes may hold the write lock; wait this long for it before failing
BUSY_TIMEOUT_MS = 10_000
#: bounds one transaction's size, and so the latency of the first caller in it
MAX_BATCH = 1024
#: 3.35 brought RETURNING
MIN_SQLITE_VERSION = (3, 35, 0)

_WRITER_PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # FULL syncs the WAL at every commit: a request acknowledged with 202 survives power loss.
    # NORMAL would only survive a crash of the process.
    "PRAGMA synchronous = FULL",
)
_READER_PRAGMAS = ("PRAGMA query_only = ON",)


@dataclass(slots=True)
class _Request(Generic[T]):
    operation: Operation[T]
    future: asyncio.Future[T]


@dataclass(slots=True)
class _Outcome:
    value: Any = None
    error: BaseException | None = None


class _TransactionLost(Exception):
    """SQLite rolled the whole transaction back (I/O error, disk full): the batch failed."""


class Database:
    def __init__(self, writer: sqlite3.Connection, reader: sqlite3.Connection) -> None:
        self._requests: queue.SimpleQueue[_Request[Any] | None] = queue.SimpleQueue()
        self._reader_connection = reader
        self._reader = ThreadPoolExecutor(1, thread_name_prefix="inferq-sqlite-reader")
        # daemon: a process that exits without close() must not hang; WAL keeps the file intact
        self._writer = threading.Thread(
            target=self._write_forever, args=(writer,), name="inferq-sqlite-writer", daemon=True
        )
        self._closed = False
        self._closing = False
        #: transactions committed by the writer thread, and the operations they carried
        self.commits = 0
        self.committed_writes = 0
        self._writer.start()

    @classmethod
    async def open(cls, path: str) -> Database:
        """Open (creating if needed) and migrate the database at ``path``."""
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            found = sqlite3.sqlite_version
            raise errors.ConfigError(f"sqlite:// needs SQLite >= 3.35, this Python has {found}")
        try:
            writer, reader = await asyncio.to_thread(_open_connections, path)
        except sqlite3.Error as exc:
            raise _backend_error(exc) from exc
        return cls(writer, reader)

    async def write(self, operation: Operation[T]) -> T:
        """Run ``operation`` in the next group-committed transaction; return once committed."""
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._requests.put(_Request(operation, future))
        return await future

    async def read(self, operation: Operation[T]) -> T:
        self._check_open()
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._reader, operation, self._reader_connection)
        except sqlite3.Error as exc:
            raise _backend_error(exc) from exc

    async def close(self) -> None:
        """Finish the writes already asked for, then close both connections."""
        if self._closed:
            return
        self._closed = True
        self._requests.put(None)
        await asyncio.to_thread(self._writer.join)
        await asyncio.get_running_loop().run_in_executor(
            self._reader, self._reader_connection.close
        )
        self._reader.shutdown(wait=False)

    def _check_open(self) -> None:
        if self._closed:
            raise errors.BackendError("the sqlite:// state is closed")

    # -- the writer thread ----------------------------------------------------------------------

    def _write_forever(self, connection: sqlite3.Connection) -> None:
        try:
            while batch := self._next_batch():
                outcomes = self._run_batch(connection, batch)
                _deliver(batch, outcomes)
        finally:
            connection.close()

    def _next_batch(self) -> list[_Request[Any]]:
        """Block for one request, then take all that queued up meanwhile; [] once closing."""
        batch: list[_Request[Any]] = []
        block = True
        while not self._closing and len(batch) < MAX_BATCH:
            try:
                request = self._requests.get(block=block)
            except queue.Empty:
                break
            if request is None:
                self._closing = True
            else:
                batch.append(request)
            block = False
        return batch

    def _run_batch(
        self, connection: sqlite3.Connection, batch: list[_Request[Any]]
    ) -> list[_Outcome]:
        try:
            connection.execute("BEGIN IMMEDIATE")
            outcomes = [_run_one(connection, request) for request in batch]
            connection.execute("COMMIT")
        except Exception as exc:
            _roll_back(connection)
            return [_Outcome(error=_backend_error(exc)) for _ in batch]
        self.commits += 1
        self.committed_writes += len(batch)
        return outcomes


def _open_connections(path: str) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    writer = _connect(path, _WRITER_PRAGMAS)
    with _closed_on_error(writer):
        migrate(writer)
        return writer, _connect(path, _READER_PRAGMAS)


def _connect(path: str, pragmas: tuple[str, ...]) -> sqlite3.Connection:
    try:
        # isolation_level=None: no implicit transactions; the writer says BEGIN and COMMIT
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        with _closed_on_error(connection):
            _configure(connection, pragmas)
    except sqlite3.Error as exc:
        raise errors.ConfigError(f"cannot open SQLite database {path!r}: {exc}") from exc
    return connection


@contextlib.contextmanager
def _closed_on_error(connection: sqlite3.Connection) -> Iterator[None]:
    try:
        yield
    except BaseException:
        connection.close()
        raise


def _configure(connection: sqlite3.Connection, pragmas: tuple[str, ...]) -> None:
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    for pragma in pragmas:
        connection.execute(pragma)
    # SQLite keeps its old journal mode where WAL is impossible (some network filesystems)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    if mode != "wal":
        raise errors.ConfigError(f"the SQLite database cannot use WAL (journal_mode={mode})")


def _run_one(connection: sqlite3.Connection, request: _Request[Any]) -> _Outcome:
    try:
        return _Outcome(value=request.operation(connection))
    except Exception as exc:
        if not connection.in_transaction:
            raise _TransactionLost(str(exc)) from exc
        return _Outcome(error=_backend_error(exc))


def _roll_back(connection: sqlite3.Connection) -> None:
    if connection.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")


def _backend_error(exc: BaseException) -> BaseException:
    """Database failures become ``BackendError``; deliberate errors pass as they are."""
    cause = exc.__cause__ if isinstance(exc, _TransactionLost) else exc
    if not isinstance(cause, sqlite3.Error):
        return exc
    error = errors.BackendError(f"sqlite: {cause}")
    error.__cause__ = cause
    return error


def _deliver(batch: list[_Request[Any]], outcomes: list[_Outcome]) -> None:
    """Hand the outcomes to their event loops, one thread-safe callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]]
    by_loop = defaultdict(list)
    for request, outcome in zip(batch, outcomes, strict=True):
        by_loop[request.future.get_loop()].append((request.future, outcome))
    for loop, settled in by_loop.items():
        # a closed loop raises RuntimeError: nobody is waiting for these any more
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in settled:
        if future.done():  # the caller was cancelled; its write stands all the same
            continue
        if outcome.error is None:
            future.set_result(outcome.value)
        else:
            future.set_exception(outcome.error)


# -- operations built from named queries ---------------------------------------------------------


def changes(name: str, params: dict[str, Any]) -> Operation[int]:
    """Run the named query; the number of rows it changed."""
    return lambda connection: connection.execute(sql.query(name), params).rowcount


def fetch_all(name: str, params: dict[str, Any]) -> Operation[list[sqlite3.Row]]:
    return lambda connection: connection.execute(sql.query(name), params).fetchall()


def fetch_one(name: str, params: dict[str, Any]) -> Operation[sqlite3.Row | None]:
    """The first row, if any. Reads every row, so that no statement stays open at COMMIT."""

    def operation(connection: sqlite3.Connection) -> sqlite3.Row | None:
        rows = connection.execute(sql.query(name), params).fetchall()
        return rows[0] if rows else None

    return operation
