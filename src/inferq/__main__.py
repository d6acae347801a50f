from __future__ import annotations

from inferq.cli import main

main()
