"""Shared matplotlib set-up for the plot functions: the Agg backend (files only, no display), and
saving a figure."""

from __future__ import annotations

from pathlib import Path

from ohio_core import lazy


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, loaded on the first call (``ohio_core.lazy``)."""
    return lazy.pyplot()


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` at ``dpi``, close it; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path
