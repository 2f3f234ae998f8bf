"""Shared matplotlib set-up for the plot functions: the Agg backend (files only, no display), and
saving a figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (set on the first call, not on import)."""
    matplotlib.use("Agg")
    return plt


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` at ``dpi``, close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
