"""Composite objects: completed multipart uploads that refer to their part files, not copies.

Completing an upload hard-links the chosen part files into a directory of their own::

    buckets/<bucket>/composites/<object file name>-<uuid>/<part:05d>

and installs an object file with no content whose record names them: ``"composite"`` is that
directory's name, ``"parts"`` is ``[[file name, content size], ...]`` in order. A part file keeps
its own record and footer at its end, so only its first ``size`` bytes are content. The object
file is renamed into place like any other, so a reader sees the old version or the new one. A
composite directory never changes once its object is installed; it is retired only after the
object file naming it has been replaced or deleted (and made durable).

A reader opens the parts one at a time, as its stream reaches them, through a descriptor on the
directory (so moving the directory does not disturb it). ``Readers`` counts the open readers of
each directory: a replace or delete retires the directory (moves it out of the bucket, into the
store's ``tmp/``) at once, and removes it then if it has no reader, else when its last reader
closes. A reader registers before it trusts the directory that a record names, then opens the
directory and the first part it needs; if either is gone, the object was replaced in between and
the reader starts again from the object file. Readers live in one process (one process writes a
root), so a crash leaves at most retired directories in ``tmp/``, which the start-up sweep of
``tmp/`` removes once they are old.

The directory is named after its object file, so telling whether the object still names it
(for directories left by a crash between linking and installing, or between replacing and
retiring) costs one record read, not a scan of the bucket.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from inferq.errors import StorageError
from inferq.storage import files
from inferq.storage.base import PartInfo

log = logging.getLogger("inferq.storage")

_DIRECTORY = re.compile(r"[0-9a-f]{64}-[0-9a-f]{32}")
_PART_NAME = re.compile(r"[0-9]{5}")
#: os.link errors that mean the filesystem has no hard links (completion then copies)
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV, errno.EMLINK}


class LinksUnsupported(Exception):
    """The filesystem refused a hard link; nothing was left behind."""


@dataclass(frozen=True, slots=True)
class Composite:
    directory: str  # a name under buckets/<bucket>/composites/
    parts: tuple[tuple[str, int], ...]  # (file name in that directory, content size), in order

    @classmethod
    def of_parts(cls, directory: str, parts: list[PartInfo]) -> Composite:
        return cls(directory, tuple((f"{part.number:05d}", part.size) for part in parts))

    @property
    def size(self) -> int:
        return sum(size for _, size in self.parts)

    def record(self) -> files.Record:
        """The fields that the object file's record carries besides the object's own."""
        return {"composite": self.directory, "parts": [list(part) for part in self.parts]}

    def spans(self, first: int, stop: int) -> list[tuple[str, int, int]]:
        """Where bytes ``first..stop-1`` lie: (part file name, start, stop) within each part."""
        spans = []
        offset = 0
        for name, size in self.parts:
            start, end = max(first, offset), min(stop, offset + size)
            if start < end:
                spans.append((name, start - offset, end - offset))
            offset += size
            if offset >= stop:
                break
        return spans


def of_record(record: files.Record) -> Composite | None:
    """The composite an object record names, or None for an object stored whole.

    The names come from a file, so they are checked before they touch a path.
    """
    directory = record.get("composite")
    if directory is None:
        return None
    parts = record.get("parts")
    if not isinstance(directory, str) or not _DIRECTORY.fullmatch(directory):
        raise StorageError("object record names a bad composite directory")
    if not isinstance(parts, list) or not all(_valid_part(part) for part in parts):
        raise StorageError("object record lists bad composite parts")
    composite = Composite(directory, tuple((name, size) for name, size in parts))
    if composite.size != record.get("size"):
        raise StorageError("object record's parts do not add up to its size")
    return composite


def _valid_part(part: object) -> bool:
    if not isinstance(part, list) or len(part) != 2:
        return False
    name, size = part
    return (
        isinstance(name, str)
        and _PART_NAME.fullmatch(name) is not None
        and isinstance(size, int)
        and size >= 0
    )


def new_directory_name(object_name: str) -> str:
    return f"{object_name}-{uuid.uuid4().hex}"


def assemble(upload: Path, target: Path, numbers: set[int]) -> dict[int, PartInfo]:
    """Hard-link the numbered parts that ``upload`` holds into the new directory ``target``.

    Returns the linked parts' records, read from the links: a part that an UploadPart replaced
    meanwhile is checked as the version that will be served. Raises ``LinksUnsupported``
    (having removed ``target``) where the filesystem has no hard links.
    """
    os.mkdir(target)
    try:
        for number in sorted(numbers):
            name = f"{number:05d}"
            try:
                os.link(upload / name, target / name)
            except FileNotFoundError:
                continue  # not uploaded: the completion's checks report it
        return {
            int(path.name): files.part_from_record(files.read_record_at(path))
            for path in target.iterdir()
        }
    except OSError as error:
        shutil.rmtree(target, ignore_errors=True)
        if error.errno in _NO_HARD_LINKS:
            raise LinksUnsupported(str(error)) from error
        raise
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


class Readers:
    """The open readers of each composite directory, and the directories to remove once their
    last reader closes. One per store root; ``lock`` is the store's, held only to count.

    ``trash`` is where retired directories wait for removal: on the same filesystem, outside the
    buckets, swept at start-up (a directory left there by a crash is named by no object).
    """

    def __init__(self, lock: threading.Lock, trash: Path) -> None:
        self._lock, self._trash = lock, trash
        self._counts: dict[str, int] = {}
        self._doomed: dict[str, Path] = {}

    def open(
        self, parent: Path, composite: Composite, first: int, stop: int
    ) -> files.FileBody | None:
        """A body streaming bytes ``first..stop-1`` of ``composite`` (whose directory is under
        ``parent``), or None if the directory or the first part needed is gone."""
        names = composite.spans(first, stop)
        if not names:
            return files.FileBody([])
        name = composite.directory
        with self._lock:  # before trusting the directory: from now on no retire removes it
            self._counts[name] = self._counts.get(name, 0) + 1
        directory = -1
        try:
            directory = os.open(parent / name, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            (part, start, end), *rest = names
            opened = os.open(part, os.O_RDONLY | os.O_CLOEXEC, dir_fd=directory)
        except BaseException as error:
            if directory >= 0:
                os.close(directory)
            self.leave(name)
            if isinstance(error, FileNotFoundError):
                return None  # retired before this reader registered
            raise
        spans: list[files.Span] = [(opened, start, end), *rest]
        return files.FileBody(spans, directory=directory, release=lambda: self.leave(name))

    def leave(self, name: str) -> None:
        """A reader of directory ``name`` is done; the last one removes a retired directory."""
        with self._lock:
            count = self._counts[name] - 1
            if count:
                self._counts[name] = count
                return
            del self._counts[name]
            trash = self._doomed.pop(name, None)
        if trash is not None:
            remove(trash)

    def retire(self, directory: Path) -> None:
        """Move ``directory`` out of its bucket (no reader registered from now on can use it),
        then remove it, or leave that to its last reader. Blocking: call it off the loop."""
        trash = self._trash / uuid.uuid4().hex
        try:
            os.rename(directory, trash)
        except FileNotFoundError:
            return
        with self._lock:  # counted after the move: a reader either counts here or fails
            if directory.name in self._counts:
                self._doomed[directory.name] = trash
                os.utime(trash)  # young in the trash: not swept while its readers read
                return
        remove(trash)


def remove(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def named_by_replaced(fd: int) -> str | None:
    """The composite directory that the object file open on ``fd`` names; closes ``fd``.

    For the version that a put or a delete just replaced: errors are logged, not raised, since
    the new version is in place already.
    """
    try:
        record = files.read_empty_record(fd)  # a composite's file has no content
        composite = of_record(record) if record is not None else None
    except (OSError, StorageError, ValueError, TypeError, AttributeError):
        log.warning("replaced_object_unreadable", exc_info=True)
        return None
    finally:
        files.close(fd)
    return composite.directory if composite is not None else None


def sweep(bucket: Path, cutoff: float, readers: Readers) -> None:
    """Remove the composite directories of ``bucket`` older than ``cutoff`` that no object file
    names: what a crash between linking and installing, or between replacing and retiring,
    leaves. Younger ones may belong to a completion in flight and are kept. Retired, not removed
    in place: a store opened on a root in use must not pull parts from under a reader."""
    try:
        entries = list(os.scandir(bucket / "composites"))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if _orphan(bucket, entry, cutoff):
            log.info("orphan_composite_removed", extra={"path": entry.path})
            readers.retire(Path(entry.path))


def _orphan(bucket: Path, entry: os.DirEntry[str], cutoff: float) -> bool:
    return (
        _DIRECTORY.fullmatch(entry.name) is not None
        and _older(entry, cutoff)
        and not _named(bucket / "objects" / entry.name[:64], entry.name)
    )


def _older(entry: os.DirEntry[str], cutoff: float) -> bool:
    try:
        return entry.stat(follow_symlinks=False).st_mtime < cutoff
    except FileNotFoundError:
        return False  # removed meanwhile


def _named(object_path: Path, directory: str) -> bool:
    try:
        fd = files.open_for_read(object_path)
    except FileNotFoundError:
        return False
    try:
        record = files.read_empty_record(fd)
    except (OSError, StorageError, ValueError):
        return True  # unreadable: never delete what might be live
    finally:
        files.close(fd)
    return record is not None and record.get("composite") == directory
