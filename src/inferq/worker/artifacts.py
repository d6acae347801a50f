"""Bringing model artifacts (``ModelDataUrl``, ``SAGEMAKER_SUBMIT_DIRECTORY``) to local disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from inferq import errors
from inferq.domain.endpoints import ContainerSpec
from inferq.domain.locations import S3Location
from inferq.storage.base import ObjectStore

READY_MARKER = ".inferq-ready"


class ArtifactFetcher:
    """Downloads artifacts from the embedded object store (or http/file URLs) into a cache
    folder keyed by URL and ETag, and extracts model archives the way SageMaker does."""

    def __init__(self, store: ObjectStore, session: aiohttp.ClientSession, root: Path) -> None:
        self._store = store
        self._session = session
        self._root = root

    async def prepare(self, container: ContainerSpec) -> tuple[Path, dict[str, str]]:
        """Return the model directory and the environment to start the model server with."""
        env = dict(container.environment)
        model_dir = await self._model_dir(container.model_data_url)
        submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if submit and "://" in submit and not submit.startswith("file://"):
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(await self._download(submit, "sourcedir"))
        elif submit and submit.startswith("file://"):
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = submit.removeprefix("file://")
        return model_dir, env

    async def _model_dir(self, url: str | None) -> Path:
        if not url:
            empty = self._root / "empty-model"
            empty.mkdir(parents=True, exist_ok=True)
            return empty
        if url.startswith("file://") and Path(url.removeprefix("file://")).is_dir():
            return Path(url.removeprefix("file://"))
        archive = await self._download(url, "model")
        target = archive.parent / "model"
        if not (target / READY_MARKER).exists():
            await asyncio.to_thread(_extract, archive, target)
        return target

    async def _download(self, url: str, name: str) -> Path:
        version = await self._version(url)
        folder = self._root / hashlib.sha256(f"{url}\0{version}".encode()).hexdigest()[:24]
        path = folder / f"{name}.tar.gz"
        if path.exists():
            return path
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in self._chunks(url):
                    await asyncio.to_thread(out.write, chunk)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    async def _version(self, url: str) -> str:
        if url.startswith("s3://"):
            location = S3Location.parse(url)
            try:
                info = await self._store.head_object(location.bucket, location.key)
            except errors.InferqError as exc:
                raise errors.ModelLoadError(
                    f"Could not read the model artifact {url}: {exc.message}"
                ) from exc
            return info.etag
        if url.startswith("file://"):
            stat = Path(url.removeprefix("file://")).stat()
            return f"{stat.st_size}-{stat.st_mtime_ns}"
        return ""

    async def _chunks(self, url: str) -> AsyncIterator[bytes]:
        if url.startswith("s3://"):
            location = S3Location.parse(url)
            _, body = await self._store.get_object(location.bucket, location.key)
            async for chunk in body:
                yield chunk
        elif url.startswith("file://"):
            source = await asyncio.to_thread(open, url.removeprefix("file://"), "rb")
            try:
                while chunk := await asyncio.to_thread(source.read, 1 << 20):
                    yield chunk
            finally:
                source.close()
        else:
            async with self._session.get(url) as response:
                if response.status != 200:
                    raise errors.ModelLoadError(f"Downloading {url} answered {response.status}")
                async for chunk in response.content.iter_chunked(1 << 20):
                    yield chunk


def _extract(archive: Path, target: Path) -> None:
    """Extract a model archive; the ``data`` filter refuses links and paths leaving ``target``."""
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix="extract-"))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")
        (staging / READY_MARKER).touch()
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise errors.ModelLoadError(f"Could not extract the model archive: {exc}") from exc
