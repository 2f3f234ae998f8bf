"""The main job, reduced to about 10 minutes on a 2-core CPU.

1. Controller check: step goals through the OSC and the QP, and a picture of the arm
   (``demo.tracking``).
2. The mismatch experiment on one task under one changed controller, through rosbag2 bags:
   collect (original OSC) -> bags -> relabel -> train (d3rlpy) -> evaluate OHIO against standard
   and flat offline RL (``experiments.mismatch``).
3. A side-by-side video of OHIO and the standard baseline under the changed controller (the first
   evaluation episode of each), plots: step responses, training curves, score bars; ``summary.json``.

The default is the manipulation headline: lift under ``kp_ori50_wide`` (a third of the orientation
stiffness, the output range enlarged to 0.4 m / 1.6 rad), where a logged normalized action means an
8x larger move and standard offline RL collapses; actions are min-max scaled for training.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ohio_core import plotting
from ohio_core.demo import tracking
from ohio_core.experiments import mismatch
from ohio_core.experiments.configs import deployment_configs
from ohio_core.learning.evaluate import record
from ohio_core.learning.policy import load_policy
from ohio_core.video import side_by_side, write_video

DEMO_METHODS = ("ohio_analytical", "standard", "flat")
#: the task, changed controller, behavior episodes, updates per policy and action scaling of the demo
DEFAULTS = {"task": "lift", "config": "kp_ori50_wide", "episodes": 300, "steps": 10_000, "action_scaling": "minmax"}
#: the methods side by side in the video
VIDEO_METHODS = ("ohio_analytical", "standard")


def record_video(result: dict, cfg: mismatch.MismatchConfig, path: Path) -> Path:
    """OHIO and the standard baseline under the (one) changed controller, side by side: the first
    evaluation episode of each (same seed), titled with the method and whether it succeeded."""
    (cname, config), = deployment_configs(cfg.configs).items()
    runs, titles = [], []
    for method in VIDEO_METHODS:
        model = result["models"][method if method == "standard" else f"{method}-{cname}"]
        frames, (ok,), fps = record(load_policy(model), config, 1, cfg.seed + 1000, allow_controller_change=True)
        runs.append(frames)
        titles.append(f"{method} under {cname}: {'success' if ok else 'failure'}")
    return write_video(path, side_by_side(runs, titles), fps)


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
    if all(m in cfg.methods for m in VIDEO_METHODS):
        files.append(record_video(result, cfg, out / "rollouts.mp4").name)
    if plot_training(result["models"], out / "training.png"):
        files.append("training.png")
    summary = {**mismatch.summary_json(result), "tracking": check["tracking"], "files": sorted(files),
               "seconds": result["seconds"], "settings": result["settings"]}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"result": result, "summary": summary, "files": sorted(files + ["summary.json"])}
