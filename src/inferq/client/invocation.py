"""Sending InvokeEndpointAsync calls: one, one per pipeline line, or one per uploaded file.

Every call's answer is what ``--select`` picks of it, or an ``{"Error": {...}}`` record; a
failed call never stops the others, and the caller learns from ``Batch.failed`` whether any did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from inferq.client.errors import Problem, problem_of
from inferq.client.params import complete, parse_line
from inferq.client.pool import ordered_map
from inferq.client.selection import WHOLE_RESPONSE, Selection, response_record

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Answer:
    """What to print for one call, and its failure if it failed."""

    value: Any
    problem: Problem | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Invoker:
    """Calls InvokeEndpointAsync with the ``runtime`` client and shapes what is printed."""

    runtime: Any
    selection: Selection = WHOLE_RESPONSE
    #: add the request's InputLocation to whole responses (when the command chose it)
    echo_input: bool = False

    def invoke(self, request: dict[str, Any]) -> Any:
        response = self.runtime.invoke_endpoint_async(**request)
        record = response_record(response)
        if self.echo_input and self.selection == WHOLE_RESPONSE:
            record["InputLocation"] = request.get("InputLocation")
        return self.selection.pick(record, request)

    def answer(self, build: Callable[[], dict[str, Any]]) -> Answer:
        """The answer to the request ``build`` makes; a bad request or an error is an answer."""
        try:
            return Answer(self.invoke(build()))
        except Exception as exc:  # one bad call must not stop the rest: it becomes its answer
            problem = problem_of(exc)
            return Answer(problem.as_record(), problem)


@dataclass(kw_only=True, slots=True)
class Batch:
    """Answers for many requests, in order, counting the failures."""

    invoker: Invoker
    workers: int
    failed: int = 0

    def lines(self, lines: Iterable[str], defaults: dict[str, Any]) -> Iterator[Any]:
        """One answer per non-blank line, as ``parse_line`` reads it."""
        numbered = ((f"line {n}", line) for n, line in enumerate(lines, 1) if line.strip())
        return self._answers(lambda line: parse_line(line, defaults), numbered)

    def requests(self, requests: Iterable[dict[str, Any]]) -> Iterator[Any]:
        numbered = ((f"request {n}", request) for n, request in enumerate(requests, 1))
        return self._answers(complete, numbered)

    def _answers(
        self, build: Callable[[T], dict[str, Any]], items: Iterable[tuple[str, T]]
    ) -> Iterator[Any]:
        """Answers in order; each failure is counted and told on stderr with its label."""

        def answer(item: tuple[str, T]) -> tuple[str, Answer]:
            label, given = item
            return label, self.invoker.answer(lambda: build(given))

        for label, result in ordered_map(answer, items, self.workers):
            if result.problem is not None:
                self.failed += 1
                click.echo(f"{label}: {result.problem}", err=True)
            yield result.value
