"""The main job, reduced to about 10 minutes on a 2-core CPU.

1. Controller check: step goals through the OSC and the QP, and a picture of the arm
   (``demo.tracking``).
2. The mismatch experiment on one task under one changed controller, through rosbag2 bags:
   collect (original OSC) -> bags -> relabel -> train (d3rlpy) -> evaluate OHIO against standard
   and flat offline RL (``experiments.mismatch``).
3. Plots: step responses, training curves, score bars; ``summary.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ohio_core import plotting
from ohio_core.demo import tracking
from ohio_core.experiments import mismatch

DEMO_METHODS = ("ohio_analytical", "standard", "flat")


def plot_training(models: dict, path: Path) -> Path | None:
    """One panel per model: its loss curves against updates (from the model sidecars)."""
    plt = plotting.pyplot()
    curves = {name: json.loads(Path(m).with_suffix(".json").read_text()).get("curves", {})
              for name, m in sorted(models.items())}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return None
    fig, axes = plt.subplots(1, len(curves), figsize=(3.4 * len(curves), 2.9), squeeze=False)
    for ax, (name, c) in zip(axes[0], curves.items()):
        for metric, values in sorted(c.items()):
            x, y = np.array(values).T
            ax.plot(x, y, marker=".", label=metric)
        if all(np.all(np.array(v)[:, 1] > 0) for v in c.values()):
            ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("updates")
        ax.legend(fontsize=6)
    return plotting.save(fig, path, dpi=90)


def run(out: Path, cfg: mismatch.MismatchConfig, goals: int = 4) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check = tracking.run(out / "controllers", n_goals=goals, n_episodes=1, seed=cfg.seed)
    result = mismatch.run(cfg, out / "mismatch")
    files = [f"controllers/{f}" for f in check["files"]] + ["mismatch/result.json", "mismatch/scores.png"]
    if plot_training(result["models"], out / "training.png"):
        files.append("training.png")
    summary = {**mismatch.summary_json(result), "tracking": check["tracking"], "files": sorted(files),
               "seconds": result["seconds"], "settings": result["settings"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"result": result, "summary": summary, "files": sorted(files + ["summary.json"])}
