"""Tests never see a developer's inferq configuration: settings come from each test alone."""

from __future__ import annotations

import os

for _name in [name for name in os.environ if name.startswith("INFERQ_")]:
    del os.environ[_name]
