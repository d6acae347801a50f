"""``model.tar.gz`` in SageMaker's layout, from a model folder or a single handler file.

- a folder with ``code/inference.py`` (weights beside ``code/``) is archived as it is;
- a folder with ``inference.py`` (and ``requirements.txt``, helpers, ...) goes under ``code/``;
- a single ``.py`` file becomes ``code/<its name>``.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import BinaryIO

from inferq.client.errors import InvalidInput

ENTRY_POINT = "inference.py"
LEFT_OUT = {"__pycache__", ".git", ".venv", ".ipynb_checkpoints", ".mypy_cache", ".DS_Store"}


def model_files(path: Path) -> list[tuple[Path, str]]:
    """(file, name in the archive) for everything the model needs, sorted by name."""
    if path.is_file():
        if path.suffix != ".py":
            raise InvalidInput(f"{path} is not a Python handler (inference.py)")
        return [(path, f"code/{path.name}")]
    if (path / "code" / ENTRY_POINT).is_file():
        return _files_under(path, prefix="")
    if (path / ENTRY_POINT).is_file():
        return _files_under(path, prefix="code/")
    raise InvalidInput(f"no {ENTRY_POINT} in {path} or {path / 'code'}")


def _files_under(root: Path, *, prefix: str) -> list[tuple[Path, str]]:
    return [
        (file, prefix + file.relative_to(root).as_posix())
        for file in sorted(root.rglob("*"))
        if file.is_file() and not _left_out(file.relative_to(root))
    ]


def _left_out(relative: Path) -> bool:
    return any(part in LEFT_OUT for part in relative.parts) or relative.suffix == ".pyc"


def write_archive(path: Path, target: BinaryIO) -> list[str]:
    """Write the gzipped tarball of ``path`` to ``target``; the names it holds."""
    files = model_files(path)
    with tarfile.open(fileobj=target, mode="w:gz") as tar:
        for file, name in files:
            tar.add(file, arcname=name, recursive=False)
    return [name for _, name in files]


def program_name(path: Path) -> str | None:
    """``SAGEMAKER_PROGRAM`` for a single handler file not called inference.py."""
    return path.name if path.is_file() and path.name != ENTRY_POINT else None
