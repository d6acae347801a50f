from __future__ import annotations

import sys

from inferq.modelserver.server import main

sys.exit(main())
