"""The heavy libraries, loaded on first use: every module of the project calls these instead of importing
torch, d3rlpy, ray, matplotlib.pyplot or scipy.signal, so that importing ohio_core (the ``ohio`` command,
the ROS nodes) loads none of them until a model is trained or loaded, a Ray cluster is used, a plot is
drawn or joint velocities are differentiated (scipy.signal alone takes 1-3 s to import)."""

from __future__ import annotations

import contextlib
import io
import logging
import sys


def d3rlpy():
    """The d3rlpy module, imported quietly: without gym's "unmaintained" banner, with d3rlpy's per-epoch
    info log lines off (warnings and errors still show)."""
    if "d3rlpy" not in sys.modules:
        with contextlib.redirect_stderr(io.StringIO()):     # gym prints its banner on import
            import d3rlpy  # noqa: F401
        import structlog     # d3rlpy's logger

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return sys.modules["d3rlpy"]


def torch():
    """The torch module."""
    import torch as module

    return module


def ray():
    """The ray module."""
    import ray as module

    return module


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display; chosen before pyplot loads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as module

    return module


def scipy_signal():
    """The ``scipy.signal`` module."""
    import scipy.signal as module

    return module
