"""``python -m benchmarks``: run the suite; see :func:`benchmarks.main`."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
