"""open_state(url): the URL scheme picks the backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from inferq import errors
from inferq.state.memory import MemoryState
from inferq.state.registry import open_state
from inferq.state.sqlite import SQLiteState


async def test_memory_url_opens_a_fresh_memory_state() -> None:
    first, second = await open_state("memory://"), await open_state("memory://")
    assert isinstance(first, MemoryState)
    assert first is not second


async def test_sqlite_url_opens_and_migrates_the_file(tmp_path: Path) -> None:
    state = await open_state(f"sqlite://{tmp_path}/state.db")
    assert isinstance(state, SQLiteState)
    await state.close()
    assert (tmp_path / "state.db").exists()


async def test_sqlite_url_may_be_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    await (await open_state("sqlite://relative.db")).close()
    assert (tmp_path / "relative.db").exists()


@pytest.mark.parametrize("url", ["postgresql://localhost/inferq", "postgres://db/inferq"])
async def test_a_backend_not_installed_says_what_to_install(url: str) -> None:
    with pytest.raises(errors.ConfigError, match=r"install inferq\[postgres\]"):
        await open_state(url)


@pytest.mark.parametrize("url", ["redis://localhost", "/var/lib/state.db", ""])
async def test_unknown_schemes_are_config_errors(url: str) -> None:
    with pytest.raises(errors.ConfigError, match="unknown state URL scheme"):
        await open_state(url)
