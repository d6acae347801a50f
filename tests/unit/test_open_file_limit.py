"""``inferq serve`` raises its soft limit on open files to the hard one, within a cap."""

from __future__ import annotations

import resource
from collections.abc import Iterator

import pytest

from inferq import bootstrap


@pytest.fixture
def limits() -> Iterator[tuple[int, int]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield soft, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_soft_limit_rises_to_the_hard_one_within_the_cap(limits: tuple[int, int]) -> None:
    _, hard = limits
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    bootstrap.raise_open_file_limit(cap=300)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (min(300, hard), hard)
    bootstrap.raise_open_file_limit()
    expected = bootstrap.OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else hard
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(expected, bootstrap.OPEN_FILES_CAP)


def test_a_higher_soft_limit_is_kept(limits: tuple[int, int]) -> None:
    soft, hard = limits
    bootstrap.raise_open_file_limit(cap=16)
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)
