"""The plot of online fine-tuning: score and cumulative constraint violations against online steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ohio_core import plotting


def plot_curve(curves: list | dict, path: Path, title: str, unit: str = "periods") -> Path:
    """Two panels against online steps: normalized score (mean +- s.e.) and the cumulative count of
    time steps with a constraint violation. ``curves``: one curve, or {label: curve}."""
    plt = plotting.pyplot()
    curves = curves if isinstance(curves, dict) else {"": curves}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3))
    for name, curve in curves.items():
        x = np.array([p["step"] for p in curve])
        m = np.array([p["score"]["mean"] for p in curve])
        se = np.array([p["score"]["se"] for p in curve])
        line, = ax1.plot(x, m, marker=".", label=name or None)
        ax1.fill_between(x, m - se, m + se, alpha=0.2, color=line.get_color())
        ax2.plot(x, np.cumsum([p["violations"]["any"] for p in curve]), marker=".", label=name or None)
    ax1.set_xlabel("online steps")
    ax1.set_ylabel("normalized score")
    ax2.set_xlabel("online steps")
    ax2.set_ylabel(f"{unit} with a violation (cumulative)")
    if len(curves) > 1:
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return plotting.save(fig, path)
