"""``sqlite://``: the embedded state backend, one SQLite file in WAL mode.

Several processes may share the file; each has one writer thread that group-commits.
"""

from __future__ import annotations

from inferq.state.sqlite.state import SQLiteState

__all__ = ["SQLiteState"]
