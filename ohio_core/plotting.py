"""Shared matplotlib set-up for the plot functions: the Agg backend (files only, no display), and
saving a figure. matplotlib is imported on the first call, so importing ohio_core stays fast."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` at ``dpi``, close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
