"""Train a policy with d3rlpy on a high-level (or flat, torque-level) dataset and save it.

The dataset's sidecar says what the policy will be: its task, level, k, the controller config
its goals are normalized for, the observation layout. They are copied into the model's sidecar
with the training settings, the loss curves and the command that made it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ohio_core import lazy, plotting
from ohio_core.learning.algos import TrainConfig, build
from ohio_core.learning.policy import LEVEL_FLOWS, LEVEL_GOAL, LEVEL_TORQUE, save_policy

REQUIRED_META = ("task", "level", "obs_layout")


@dataclass
class TrainResult:
    model: Path
    sidecar: Path
    plot: Path | None
    curves: dict          # metric -> list of (update, value)
    seconds: float
    transitions: int


def model_meta(dataset_meta: dict, config: TrainConfig, transitions: int) -> dict:
    missing = [k for k in REQUIRED_META if k not in dataset_meta]
    if missing:
        raise ValueError(f"dataset sidecar lacks {missing}: relabel it again with this version of ohio")
    level = dataset_meta["level"]
    if level not in (LEVEL_GOAL, LEVEL_TORQUE, LEVEL_FLOWS):
        raise ValueError(f"dataset level must be {LEVEL_GOAL!r}, {LEVEL_TORQUE!r} or {LEVEL_FLOWS!r}, got {level!r}")
    return {"task": dataset_meta["task"], "level": level, "k": int(dataset_meta.get("k", 1)),
            "controller": dataset_meta.get("controller") if level == LEVEL_GOAL else None,
            "obs_layout": dataset_meta["obs_layout"], "action_dim": int(dataset_meta["action_dim"]),
            "method": dataset_meta.get("method"), "train": config.to_dict(), "transitions": transitions,
            **({"robot": dataset_meta["robot"]} if "robot" in dataset_meta else {})}


def train(buffer, dataset_meta: dict, config: TrainConfig, out: str | Path, progress: bool = True,
          extra_meta: dict | None = None) -> TrainResult:
    """Fit ``config.algo`` on ``buffer`` (a d3rlpy dataset) for ``config.steps`` updates; save to ``out``."""
    torch, d3rlpy = lazy.torch(), lazy.d3rlpy()

    transitions = int(buffer.transition_count)
    meta = model_meta(dataset_meta, config, transitions)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        d3rlpy.seed(config.seed)
        observations = (np.concatenate([ep.observations for ep in buffer.episodes])
                        if config.ignore_observations else None)
        # the actions of the transitions (d3rlpy's own fit leaves out an unfinished episode's last one)
        actions = (np.concatenate([ep.actions[:ep.transition_count] for ep in buffer.episodes])
                   if config.action_scaling == "minmax" else None)
        algo = build(config, dataset_meta["obs_layout"], observations, actions)
        t0 = time.perf_counter()
        history = algo.fit(buffer, n_steps=config.steps, n_steps_per_epoch=config.steps_per_epoch,
                           logger_adapter=d3rlpy.logging.NoopAdapterFactory(), show_progress=progress,
                           experiment_name=f"ohio-{config.algo}")
        seconds = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    curves: dict[str, list] = {}
    for epoch, metrics in history:
        for name, value in metrics.items():
            if name.endswith("loss") or name in ("temp", "alpha"):
                curves.setdefault(name, []).append((epoch * config.steps_per_epoch, float(value)))
    meta.update({"curves": curves, "train_seconds": round(seconds, 2)}, **(extra_meta or {}))
    d3, js = save_policy(algo, meta, out)
    plot = plot_curves(curves, d3.with_suffix(".png"), f"{meta['task']} / {config.algo} / {meta.get('method')}")
    return TrainResult(d3, js, plot, curves, seconds, transitions)


def plot_curves(curves: dict, path: Path, title: str) -> Path | None:
    """One panel per loss against updates."""
    if not curves:
        return None
    plt = plotting.pyplot()
    names = sorted(curves)
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        x, y = np.array(curves[name]).T
        ax.plot(x, y, marker=".")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("updates")
        if np.all(y > 0) and y.max() / max(y.min(), 1e-12) > 50:
            ax.set_yscale("log")
    fig.suptitle(title, fontsize=10)
    return plotting.save(fig, path, dpi=90)
