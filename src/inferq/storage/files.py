"""File primitives of LocalObjectStore: spools, self-describing object files, streamed reads.

An object (or part) file is its content followed by a JSON record and a fixed footer::

    <content bytes> <record JSON> <record length: u64 big-endian> <magic: 8 bytes>

Content and metadata therefore change together in one ``os.replace``: a reader opens either the
old file or the new one, and an open descriptor keeps reading the version it opened. The file of
a composite object (a completed multipart upload) has no content: its record names the part
files that hold it (see ``inferq.storage.composites``).
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import itertools
import json
import os
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from inferq.errors import StorageError
from inferq.storage import rules, writeback
from inferq.storage.base import Body, ObjectInfo, PartInfo, PutOptions

_MAGIC = b"iqobj\x00v1"
_FOOTER = struct.Struct(">Q8s")
_NO_COPY_OFFLOAD = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP}
#: record fields of a composite object (see ``inferq.storage.composites``)
LAYOUT_FIELDS = ("composite", "parts")

Record = dict[str, Any]


class Spool:
    """A temporary file being filled, then sealed and renamed into place, or discarded.

    Writes run in worker threads; the lock keeps ``discard`` from closing the descriptor under a
    write still in flight when the request that fed it fails.
    """

    def __init__(self, directory: str | Path) -> None:
        self.size = 0
        #: bytes whose writeback was started (``writeback.start``)
        self._flushing = 0
        self._md5 = hashlib.md5()
        self._lock = threading.Lock()
        self.path, self._fd = _create_spool(os.fspath(directory))

    @property
    def etag(self) -> str:
        return rules.quote_etag(self._md5.hexdigest())

    def write(self, data: bytes) -> None:
        self.write_chunks([data])

    def write_chunks(self, chunks: list[bytes]) -> None:
        """Append the chunks with one ``writev``: no joined copy of them is made."""
        with self._lock:
            for chunk in chunks:
                self._md5.update(chunk)
                self.size += len(chunk)
            _writev_all(self._fd, chunks)
            if self.size - self._flushing >= writeback.WRITEBACK_BYTES:
                writeback.start(self._fd, self._flushing, self.size - self._flushing)
                self._flushing = self.size

    def append_file(self, path: Path, size: int) -> None:
        """Append the first ``size`` bytes of ``path``; the MD5 is not updated (multipart)."""
        with self._lock, _opened(path) as source:
            _copy_bytes(source, self._fd, size)
            self.size += size

    def seal(self, record: Record) -> None:
        """Append the record and footer and make the file durable; it is then ready to rename."""
        encoded = json.dumps(record, separators=(",", ":")).encode()
        with self._lock:
            _write_all(self._fd, encoded + _FOOTER.pack(len(encoded), _MAGIC))
            os.fsync(self._fd)
            self._close()

    @contextmanager
    def discarded_on_error(self) -> Iterator[Spool]:
        """Inside, any exception (cancellation included) discards the spool, then propagates."""
        try:
            yield self
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        with self._lock:
            self._close()
            with suppress(FileNotFoundError):
                os.unlink(self.path)

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


async def fill(spool: Spool, body: Body) -> None:
    """Write a body into a spool in blocks of about 1 MiB (the chunks as they came, not joined),
    hashed and written in a thread while the next block arrives."""
    writing: asyncio.Task[None] | None = None
    try:
        async for block in _blocks(body):
            if writing is not None:
                await writing
            writing = asyncio.create_task(asyncio.to_thread(spool.write_chunks, block))
        if writing is not None:
            await writing
    except BaseException:
        if writing is not None:
            writing.cancel()  # the spool's lock keeps its discard from racing the thread
        raise


async def read_head(body: Body, limit: int) -> tuple[bytes, bool]:
    """Up to about ``limit`` bytes from the start of ``body``, and whether that was all of it."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            return b"".join(chunks), False
    return b"".join(chunks), True


async def prepend(head: bytes, rest: Body) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for chunk in rest:
        yield chunk


async def _blocks(body: Body) -> AsyncIterator[list[bytes]]:
    """The body's chunks in groups of about 1 MiB. Not joined: each join of a fresh 1 MiB
    buffer costs a copy and the page faults of a new mapping, ~10% of a large PUT's CPU."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if size >= rules.CHUNK_SIZE:
            yield chunks
            chunks, size = [], 0
    if chunks:
        yield chunks


#: a stretch of a file to stream: an open descriptor, or the name of a file to open (relative to
#: the body's directory) once the stream reaches it; first byte; byte after the last
Span = tuple[int | str, int, int]


class FileBody:
    """Streams spans of files in order, 1 MiB per read in a thread.

    One span is a plain object; a composite object (a completed multipart upload) is one span
    per part it covers, each opened only once the stream reaches it, so a read holds one part
    open at a time, however many parts it covers. Each descriptor is closed when its span is
    done, and every one left when the stream ends, on ``aclose`` and, as a last resort, when the
    body is collected unfinished. ``release`` (blocking: it may take a lock and remove files) is
    then called once, never on the event loop's thread.
    """

    def __init__(
        self, spans: list[Span], *, directory: int = -1, release: Callable[[], None] | None = None
    ) -> None:
        self._spans = spans[::-1]  # popped from the end
        self._directory, self._release = directory, release
        self._fd, self._position, self._stop = -1, 0, 0
        # a read left running by a cancelled consumer may meet its aclose: one at a time, and
        # release called once
        self._lock = threading.RLock()

    def __aiter__(self) -> FileBody:
        return self

    async def __anext__(self) -> bytes:
        if self._position >= self._stop and not self._spans and self._release is None:
            self._close_files()  # a plain object's end costs no thread hop
            raise StopAsyncIteration
        data = await asyncio.to_thread(self._read)
        if not data:
            raise StopAsyncIteration
        self._position += len(data)
        return data

    def _read(self) -> bytes:
        """The next chunk, opening the next span's file if need be; b"" at the end, with
        everything closed and released (here, in a worker thread)."""
        with self._lock:
            while self._position >= self._stop:
                if not self._spans:
                    self._close()
                    return b""
                self._close_current()
                source, self._position, self._stop = self._spans.pop()
                self._fd = source if isinstance(source, int) else self._open(source)
            size = min(rules.CHUNK_SIZE, self._stop - self._position)
            data = os.pread(self._fd, size, self._position)
            if not data:
                self._close()
                raise StorageError("object file is shorter than its record says")
            return data

    def _open(self, name: str) -> int:
        try:
            return os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self._directory)
        except FileNotFoundError:
            self._close()
            raise StorageError(f"part {name} of a composite object is missing") from None

    async def aclose(self) -> None:
        if self._release is None and self._lock.acquire(blocking=False):
            try:  # a plain object's descriptor closes on the loop, unless a read is in flight
                self._close_files()
            finally:
                self._lock.release()
        else:
            await asyncio.to_thread(self._close)

    def _close_current(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _close_files(self) -> None:
        self._close_current()
        self._position = self._stop = 0
        while self._spans:
            source = self._spans.pop()[0]
            if isinstance(source, int):
                os.close(source)
        if self._directory >= 0:
            os.close(self._directory)
            self._directory = -1

    def _close(self) -> None:
        with self._lock:
            self._close_files()
            release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        self._close_files()
        release, self._release = self._release, None
        if release is not None:
            # this thread may hold the lock that release takes: release from another one
            with suppress(RuntimeError):  # no new threads at interpreter shutdown
                threading.Thread(target=release, name="body-release", daemon=True).start()


def read_record(fd: int) -> tuple[Record, int]:
    """The record of an object or part file, and its content length."""
    total = os.fstat(fd).st_size
    if total < _FOOTER.size:
        raise StorageError("not an object file: too short")
    length, magic = _FOOTER.unpack(os.pread(fd, _FOOTER.size, total - _FOOTER.size))
    content_size = total - _FOOTER.size - length
    if magic != _MAGIC or content_size < 0:
        raise StorageError("not an object file: bad footer")
    record: Record = json.loads(os.pread(fd, length, content_size))
    return record, content_size


def read_empty_record(fd: int) -> Record | None:
    """The record of a file whose content is empty, else None without parsing any JSON.

    A composite object's file has no content, only a record naming its parts; this is how a
    replaced or deleted version is checked for a parts directory to remove, cheaply.
    """
    total = os.fstat(fd).st_size
    if total < _FOOTER.size:
        return None
    length, magic = _FOOTER.unpack(os.pread(fd, _FOOTER.size, total - _FOOTER.size))
    if magic != _MAGIC or total - _FOOTER.size - length != 0:
        return None
    record: Record = json.loads(os.pread(fd, length, 0))
    return record


def read_record_at(path: Path) -> Record:
    with _opened(path) as fd:
        return read_record(fd)[0]


def open_for_read(path: str | Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC)


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DirSync:
    """Group commit of one directory's fsync across threads.

    ``sync`` returns once an fsync of the directory that *started* after the call has finished,
    so every rename done before the call is durable. Concurrent callers share one fsync: while
    one runs, later callers wait for it and the next one, which serves all of them.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._cond = threading.Condition(threading.Lock())
        self._started = 0  # generation of the last fsync begun
        self._done = 0  # generation of the last fsync finished successfully
        self._running = False

    def sync(self) -> None:
        with self._cond:
            needed = self._started + 1  # any fsync begun from now on covers our renames
            while self._done < needed:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                self._started += 1
                generation = self._started
                self._cond.release()
                try:
                    fsync_dir(self._path)
                except BaseException:
                    self._cond.acquire()  # waiters retry: one of them starts the next fsync
                    self._running = False
                    self._cond.notify_all()
                    raise
                self._cond.acquire()
                self._running = False
                self._done = generation
                self._cond.notify_all()


def read_json(path: Path) -> Record:
    with path.open(encoding="utf-8") as file:
        record: Record = json.load(file)
    return record


def close(fd: int) -> None:
    os.close(fd)


async def aclose(body: Body) -> None:
    """Release a body that may not have been read to its end."""
    closer = getattr(body, "aclose", None)
    if closer is not None:
        await closer()


def write_json_durably(path: Path, value: Record) -> None:
    with path.open("w", encoding="utf-8") as file:
        json.dump(value, file)
        file.flush()
        os.fsync(file.fileno())


# --- records ---------------------------------------------------------------------------------


def object_name(key: str) -> str:
    """The name of the file that holds ``key``'s object: keys never become paths."""
    return hashlib.sha256(key.encode()).hexdigest()


def object_record(info: ObjectInfo) -> Record:
    # written field by field: dataclasses.asdict deep-copies, which showed in profiles of puts
    return {  # no bucket: implied by the directory, so a bucket could be renamed
        "key": info.key,
        "size": info.size,
        "etag": info.etag,
        "last_modified": info.last_modified.isoformat(),
        "content_type": info.content_type,
        "metadata": info.metadata,
        "checksums": info.checksums,
        "headers": info.headers,
    }


def object_from_record(bucket: str, record: Record) -> ObjectInfo:
    fields = {**record, "last_modified": _time(record)}
    for name in LAYOUT_FIELDS:  # where the bytes are, not what the object is
        fields.pop(name, None)
    return ObjectInfo(bucket=bucket, **fields)


def part_record(part: PartInfo) -> Record:
    return {**asdict(part), "last_modified": part.last_modified.isoformat()}


def part_from_record(record: Record) -> PartInfo:
    return PartInfo(**{**record, "last_modified": _time(record)})


def options_record(options: PutOptions) -> Record:
    return asdict(options)


def options_from_record(record: Record) -> PutOptions:
    return PutOptions(**record)


def _time(record: Record) -> datetime:
    return rules.parse_time(record["last_modified"])


# --- low level -------------------------------------------------------------------------------


@contextmanager
def _opened(path: Path) -> Iterator[int]:
    fd = open_for_read(path)
    try:
        yield fd
    finally:
        os.close(fd)


_SPOOL_PREFIX = os.urandom(6).hex()
_SPOOL_COUNTER = itertools.count()
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def _create_spool(directory: str) -> tuple[str, int]:
    """A new, exclusive temporary file: a per-process random prefix and a counter, no uuid."""
    while True:
        path = f"{directory}/{_SPOOL_PREFIX}{os.getpid():x}-{next(_SPOOL_COUNTER)}.spool"
        try:
            return path, os.open(path, _CREATE_FLAGS, 0o600)
        except FileExistsError:
            continue


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


_IOV_MAX = os.sysconf("SC_IOV_MAX") if "SC_IOV_MAX" in os.sysconf_names else 16


def _writev_all(fd: int, chunks: list[bytes]) -> None:
    """Write all of ``chunks``, in order, resuming after short writes."""
    views = [memoryview(chunk) for chunk in chunks if chunk]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while written and written >= len(views[first]):
            written -= len(views[first])
            first += 1
        if written:
            views[first] = views[first][written:]


def _copy_bytes(source: int, target: int, size: int) -> None:
    """Copy in the kernel where the filesystem allows, else through a 1 MiB buffer."""
    remaining = size
    try:
        while remaining:
            copied = os.copy_file_range(source, target, remaining)
            if copied == 0:
                break
            remaining -= copied
    except OSError as error:
        if error.errno not in _NO_COPY_OFFLOAD:
            raise
    while remaining:
        data = os.read(source, min(rules.CHUNK_SIZE, remaining))
        if not data:
            raise StorageError("part file is shorter than its record says")
        _write_all(target, data)
        remaining -= len(data)
