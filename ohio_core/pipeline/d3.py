"""d3rlpy, imported quietly: without gym's "unmaintained" banner, with d3rlpy's per-epoch info
log lines off (warnings and errors still show)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys


def import_d3rlpy():
    if "d3rlpy" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()):     # gym prints its banner on import
            import d3rlpy  # noqa: F401
        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return sys.modules["d3rlpy"]
