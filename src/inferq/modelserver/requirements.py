"""Installing a model's ``code/requirements.txt`` once, into a folder shared by its instances.

The folder is named by a hash of the file and the Python version, so a second instance (or a
restart) finds it ready; an install goes to a staging folder that is renamed into place only
once complete, so instances starting together never see half an install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from inferq.modelserver.errors import StartupError

logger = logging.getLogger(__name__)

MARKER = ".inferq-installed"
OUTPUT_TAIL_CHARS = 2000


def requirements_digest(requirements: Path) -> str:
    hasher = hashlib.sha256(requirements.read_bytes())
    hasher.update(f"\0{sys.implementation.cache_tag}\0{sys.executable}".encode())
    return hasher.hexdigest()[:20]


def installer_command(requirements: Path, target: Path) -> list[str]:
    """pip in this interpreter if it has pip, else uv; both install into ``target``."""
    if importlib.util.find_spec("pip") is not None:
        return [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ]
    uv = shutil.which("uv")
    if uv is not None:
        return [
            uv,
            "pip",
            "install",
            "--python",
            sys.executable,
            "--target",
            str(target),
            "-r",
            str(requirements),
        ]
    raise StartupError(
        f"{requirements} lists packages to install, but {sys.executable} has no pip and uv is "
        "not on PATH: install pip into that environment"
    )


def install_requirements(requirements: Path, cache_dir: Path) -> Path:
    """Install ``requirements`` (if not done before) and return the folder to put on sys.path."""
    target = cache_dir / requirements_digest(requirements)
    if (target / MARKER).is_file():
        logger.info("event=requirements_reused requirements=%s target=%s", requirements, target)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=cache_dir))
    try:
        _run_installer(requirements, staging)
        (staging / MARKER).write_text(f"{requirements}\n")
        _move_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _run_installer(requirements: Path, staging: Path) -> None:
    command = installer_command(requirements, staging)
    logger.info("event=requirements_installing command=%r", command)
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=requirements.parent,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except OSError as exc:
        raise StartupError(
            f"installing {requirements} failed to start {command[0]}: {exc}"
        ) from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-OUTPUT_TAIL_CHARS:]
        raise StartupError(
            f"installing {requirements} failed (exit status {done.returncode}):\n{output}"
        )
    logger.info("event=requirements_installed seconds=%.1f", time.monotonic() - started)


def _move_into_place(staging: Path, target: Path) -> None:
    try:
        os.rename(staging, target)
    except OSError:
        if (target / MARKER).is_file():  # another instance finished the same install first
            return
        shutil.rmtree(target, ignore_errors=True)  # a leftover without its marker
        os.rename(staging, target)
