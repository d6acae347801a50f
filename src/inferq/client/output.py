"""Printing results: JSON (one document, or JSON Lines for many), an aligned table, or
tab-separated text. Nested objects are flattened to dotted names for tables and text."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(value, default=_plain, indent=indent, ensure_ascii=False)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"A": {"B": 1}, "C": [2]}`` -> ``{"A.B": 1, "C.0": 2}``; a scalar is ``{"Value": v}``."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return {prefix or "Value": value}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def cell(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, datetime | bytes | Path):
        return str(_plain(value))
    return str(value)


def text_line(record: Any) -> str:
    return "\t".join(cell(value) for value in flatten(record).values())


def table(records: list[Any]) -> str:
    rows = [{key: cell(value) for key, value in flatten(r).items()} for r in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    widths = {c: max([len(c)] + [len(row.get(c, "")) for row in rows]) for c in columns}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in columns),
        "  ".join("-" * widths[c] for c in columns),
    ]
    lines += ["  ".join(row.get(c, "").ljust(widths[c]) for c in columns) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def key_value_table(record: dict[str, Any]) -> str:
    flat = {key: cell(value) for key, value in flatten(record).items()}
    width = max(map(len, flat), default=0)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in flat.items())


class Printer:
    """Prints records as they come (JSON Lines, text) or all at once (a table).

    ``document=True`` is for commands that print one object: indented JSON, and a two-column
    key/value table.
    """

    def __init__(self, output_format: str, *, document: bool = False) -> None:
        self.output_format = output_format
        self.document = document
        self._held: list[Any] = []

    def emit(self, record: Any) -> None:
        if self.output_format == "table":
            self._held.append(record)
        elif self.output_format == "text":
            click.echo(text_line(record))
        else:
            click.echo(to_json(record, indent=2 if self.document else None))

    def close(self) -> None:
        if not self._held:
            return
        if self.document and len(self._held) == 1 and isinstance(self._held[0], dict):
            click.echo(key_value_table(self._held[0]))
        else:
            click.echo(table(self._held))
        self._held.clear()
