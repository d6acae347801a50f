"""Finding the user's inference script, making its folder importable, and importing it.

The script is ``SAGEMAKER_PROGRAM`` (default ``inference.py``) inside
``SAGEMAKER_SUBMIT_DIRECTORY`` (a folder or a ``.tar.gz``) or else ``<model_dir>/code``, as in
the SageMaker framework images. Its folder goes first on ``sys.path`` (and ``PYTHONPATH``, for
processes it starts) so sibling modules import.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import os
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

from inferq.modelserver.archive import extract_archive
from inferq.modelserver.errors import StartupError


def code_dir_for(submit_directory: str | None, model_dir: Path) -> Path:
    """The folder holding the user's code, extracting a source archive if given one."""
    if not submit_directory:
        return model_dir / "code"
    if submit_directory.startswith("s3://"):
        raise StartupError(
            f"SAGEMAKER_SUBMIT_DIRECTORY={submit_directory} is an S3 URL; the model server "
            "reads local folders and archives only"
        )
    path = Path(submit_directory.removeprefix("file://"))
    if path.is_dir():
        return path
    if path.is_file() and tarfile.is_tarfile(path):
        return _extract_to_scratch(path)
    raise StartupError(
        f"SAGEMAKER_SUBMIT_DIRECTORY={submit_directory} is neither a folder nor a tar archive"
    )


def _extract_to_scratch(archive: Path) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="inferq-sourcedir-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    extract_archive(archive, scratch)
    return scratch


def module_name(program: str) -> str:
    """``inference.py`` -> ``inference``, as the toolkit names the user module."""
    return program.removesuffix(".py")


def program_exists(code_dir: Path, program: str) -> bool:
    name = module_name(program)
    return (code_dir / f"{name}.py").is_file() or (code_dir / name / "__init__.py").is_file()


def add_to_import_path(*folders: Path) -> None:
    """Put ``folders`` first on sys.path, in order, and on PYTHONPATH for child processes."""
    entries = [str(folder) for folder in folders if folder.is_dir()]
    sys.path[:0] = [entry for entry in entries if entry not in sys.path]
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*entries, *([previous] if previous else [])])


def import_program(code_dir: Path, program: str) -> ModuleType:
    """Import the user's script (or package) as a top-level module named after it."""
    name = module_name(program)
    path = code_dir / f"{name}.py"
    if not path.is_file():
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StartupError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
