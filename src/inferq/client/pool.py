"""Running many requests at once and getting their answers back in input order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``function(item)`` for every item, ``workers`` at a time, answers in input order.

    Items are read lazily and at most ``2 * workers`` answers wait to be taken, so an endless
    input (a pipe) flows through in bounded memory. ``function`` should not raise: an exception
    ends the iteration when its item's turn comes.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inferq-client") as pool:
        window: deque[Future[R]] = deque()
        for item in items:
            window.append(pool.submit(function, item))
            if len(window) >= 2 * workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
