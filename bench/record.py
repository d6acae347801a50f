"""What a benchmark reports: rows for the table (value, ceiling or peer, ratio, target) and
series for plots, all kept in the JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Target:
    """A performance goal: the ratio at least ``min_ratio``, or the value at most ``max_value``."""

    text: str
    min_ratio: float | None = None
    max_value: float | None = None

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        if self.min_ratio is not None:
            return None if ratio is None or math.isnan(ratio) else ratio >= self.min_ratio
        if self.max_value is not None:
            return None if value is None or math.isnan(value) else value <= self.max_value
        return None


@dataclass(kw_only=True)
class Row:
    metric: str
    value: float | None
    unit: str
    #: the ceiling or the peer this row is compared with, in the same unit, measured in this run
    reference: float | None = None
    reference_name: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / reference: inferq's share of its ceiling, or inferq over the peer."""
        if self.value is None or self.reference is None or self.reference == 0:
            return None
        return self.value / self.reference

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value, self.ratio)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = None if self.target is None else self.target.text
        data.update(ratio=self.ratio, met=self.met)
        return data


@dataclass(kw_only=True)
class Section:
    """One benchmark's outcome. ``skipped`` says why it did not run (the rows are then empty)."""

    key: str
    title: str
    method: str
    rows: list[Row] = field(default_factory=list)
    series: dict[str, Any] = field(default_factory=dict)
    setup: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None
    seconds: float = 0.0

    def add(self, metric: str, value: float | None, unit: str, **options: Any) -> Row:
        row = Row(metric=metric, value=value, unit=unit, **options)
        self.rows.append(row)
        return row

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "method": self.method,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 1),
            "setup": self.setup,
            "rows": [row.as_dict() for row in self.rows],
            "series": self.series,
        }
