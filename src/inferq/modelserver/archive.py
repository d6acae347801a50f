"""Unpacking a ``sourcedir.tar.gz`` without letting it write outside its folder."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path, PurePosixPath

from inferq.modelserver.errors import StartupError


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, os.path.normpath(path)]) == root


def check_member(member: tarfile.TarInfo, root: str) -> str | None:
    """Why ``member`` may not be extracted under the absolute folder ``root``, or None."""
    name = PurePosixPath(member.name)
    if name.is_absolute():
        return "has an absolute path"
    if ".." in name.parts:
        return "climbs out with '..'"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "is a device, FIFO or other special file"
    if member.issym() or member.islnk():
        if os.path.isabs(member.linkname):
            return f"links to the absolute path {member.linkname!r}"
        base = os.path.dirname(member.name) if member.issym() else ""
        if not _inside(root, os.path.join(root, base, member.linkname)):
            return f"links outside the archive to {member.linkname!r}"
    return None


def extract_archive(archive: Path, destination: Path) -> None:
    """Extract the tar archive ``archive`` into ``destination``, refusing unsafe members."""
    root = os.path.realpath(destination)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                reason = check_member(member, root)
                if reason is not None:
                    raise StartupError(
                        f"{archive}: refusing to extract {member.name!r}: it {reason}"
                    )
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StartupError(f"{archive} cannot be extracted: {exc}") from exc
