"""Sensitivity of the inverse methods to model error.

The data come from the ORIGINAL controller built on the nominal Pinocchio model, acting in MuJoCo
(the robot's own controller knows its model). The offline inverse has a model that may be wrong,
in two ways, each swept over error levels e (fractions, e.g. 0.15):

- ``model``: the controller each inverse uses is built on a copy of the nominal model whose body i
  has mass and inertia times f_i = 1 + e s_i, with signs s_i in {-1, +1} drawn once per seed
  (``numpy.random.default_rng(seed)``) and shared by every level, so the levels scale one error
  direction (``mass_factors``); the plant is nominal;
- ``plant``: the simulator adds joint damping ``e * damping_per_level`` (N m s/rad) and dry friction
  ``e * friction_per_level`` (N m) on the arm joints, which no model knows; the inverse's model is
  nominal;
- ``both``: the two at once.

Per (condition, level): behavior data in that plant (expert and noisy versions, goals logged: the
ground truth), every method inverted with that model (``analytical`` and ``numerical`` match the
logged torques, ``state_matching`` the logged next state through the model's dynamics), goal
errors against the logged goals, and a BC policy trained on each relabeled dataset and evaluated
in the same plant under the ORIGINAL controller (normalized score). ``logged`` trains on the true
goals of each plant: what a perfect inverse would reach there. Level 0 is one shared cell.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.osc import OSC
from controllers.robot import ArmModel
from ohio_core import plotting
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.experiments.configs import ORIGINAL, ArmExperimentConfig
from ohio_core.experiments.mismatch import _pool
from ohio_core.experiments.recovery import (BEHAVIOR, accept_best_fit, behavior_data, goal_errors, pct, recovery_stats,
                                            train_eval_job, true_goals, write_dataset, write_logged_dataset)
from ohio_core.inverse import invert
from ohio_core.learning.algos import TrainConfig
from ohio_core.pipeline.relabel import segments_of

METHODS = ("analytical", "numerical", "state_matching")
CONDITIONS = ("model", "plant", "both")


@dataclass(frozen=True)
class ModelErrorConfig(ArmExperimentConfig):
    levels: tuple = (0.0, 0.05, 0.15, 0.30)
    conditions: tuple = ("model", "plant")
    methods: tuple = METHODS
    logged: bool = True                  # also train on the true goals of each plant (reference rows)
    episodes: int = 150                  # behavior episodes per plant (expert, noisy0.1, noisy0.3)
    damping_per_level: float = 2.0       # N m s/rad of added joint damping per unit of error level
    friction_per_level: float = 2.0      # N m of added joint dry friction per unit of error level
    numerical_iterations: int = 200

    def __post_init__(self):
        super().__post_init__()
        if not self.levels or any(not 0.0 <= float(e) < 1.0 for e in self.levels):
            raise ValueError(f"levels must be fractions in [0, 1), got {self.levels}")
        for name, given, known in (("method", self.methods, METHODS), ("condition", self.conditions, CONDITIONS)):
            unknown = [m for m in given if m not in known]
            if unknown or not given:
                raise ValueError(f"unknown {name}(s) {unknown or given}; expected some of {list(known)}")
        if self.episodes < len(BEHAVIOR) or self.eval_episodes < 1 or self.workers < 1 or self.k < 1:
            raise ValueError("episodes must cover every behavior policy; eval_episodes, workers and k >= 1")
        if self.damping_per_level < 0 or self.friction_per_level < 0:
            raise ValueError("damping_per_level and friction_per_level must be >= 0")
        object.__setattr__(self, "levels", tuple(sorted({float(e) for e in self.levels})))
        object.__setattr__(self, "methods", tuple(self.methods))
        object.__setattr__(self, "conditions", tuple(self.conditions))

    def cells(self) -> list[tuple[str, float]]:
        """(condition, level) pairs; level 0 once, as ("none", 0)."""
        return ([("none", 0.0)] if 0.0 in self.levels else []) + [
            (c, e) for c in self.conditions for e in self.levels if e > 0]

    def plant_level(self, condition: str, level: float) -> float:
        return level if condition in ("plant", "both") else 0.0

    def model_level(self, condition: str, level: float) -> float:
        return level if condition in ("model", "both") else 0.0

    def scene(self, plant_level: float) -> dict:
        return asdict(SceneConfig(arm_damping=plant_level * self.damping_per_level,
                                  arm_frictionloss=plant_level * self.friction_per_level))


def mass_factors(level: float, seed: int, n: int = 7) -> np.ndarray:
    """f_i = 1 + level * s_i, s_i = +-1 drawn from ``default_rng(seed)`` (one draw per seed)."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], n)
    return 1.0 + level * signs


def _tag(level: float) -> str:
    """A file-name tag of an error level: 0.15 -> "15pct" (no dot, which a suffix would eat)."""
    return f"{100 * level:g}pct".replace(".", "p")


def _name(condition: str, level: float) -> str:
    return f"{condition}-{_tag(level)}"


def _collect_job(args: tuple) -> tuple[float, dict]:
    """Behavior data in one plant, saved for the inverse jobs; the logged-goal dataset."""
    cfg, plant_level, out = args

    t0 = time.perf_counter()
    traj = behavior_data(cfg.task, cfg.episodes, cfg.seed, cfg.k, SceneConfig(**cfg.scene(plant_level)))
    path = out / "data" / f"plant-{_tag(plant_level)}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(traj))
    info = {"data": str(path), "seconds": time.perf_counter() - t0,
            "behavior_return_mean": float(traj.reward.sum() / len(np.unique(traj.episode)))}
    if cfg.logged:
        info["logged"] = write_logged_dataset(traj, cfg.k, out / "datasets" / f"logged-plant-{_tag(plant_level)}",
                                              cfg.task)
    return plant_level, info


def _invert_job(args: tuple) -> tuple[tuple, dict]:
    """One method on one cell: goal errors against the logged goals, and the relabeled dataset."""
    cfg, condition, level, method, data, out = args

    traj = pickle.loads(Path(data).read_bytes())
    index, segs = segments_of(traj, cfg.k)
    gp, gR = true_goals(traj, index.start)
    common = np.isfinite(segs.q_next).all(-1)          # segments every method can invert
    controller = OSC(ArmModel().scaled(mass_factors(cfg.model_level(condition, level), cfg.seed)), ORIGINAL)
    t0 = time.perf_counter()
    options = {"iterations": cfg.numerical_iterations} if method == "numerical" else {}
    res = invert(method, segs, controller, **options)
    seconds = time.perf_counter() - t0
    perr, oerr = goal_errors(res.goal_p, res.goal_R, gp, gR)
    info = {"recovery": {**recovery_stats(perr[common], oerr[common], res.status[common]), "seconds": seconds},
            "dataset": write_dataset(traj, controller, cfg.k, method, accept_best_fit(res),
                                     out / "datasets" / f"{method}-{_name(condition, level)}", cfg.task,
                                     {"condition": condition, "error_level": level})}
    return (condition, level, method), info


def train_config(cfg: ModelErrorConfig):
    return TrainConfig.for_task(cfg.task, algo=cfg.algo, steps=cfg.steps, seed=cfg.seed)


def run(cfg: ModelErrorConfig, out: str | Path, progress: bool = True) -> dict:
    """Run the sweep; writes data, datasets, models, ``result.json`` and ``model_error.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bar = lambda total, desc: tqdm(total=total, desc=desc, disable=not progress, dynamic_ncols=True)  # noqa: E731
    t0 = time.perf_counter()
    cells = cfg.cells()
    plants = sorted({cfg.plant_level(c, e) for c, e in cells})
    data: dict = {}
    with bar(len(plants), "collect") as b, _pool(min(cfg.workers, len(plants))) as pool:
        for level, info in pool.map(_collect_job, [(cfg, e, out) for e in plants]):
            data[level] = info
            b.update()
    t1 = time.perf_counter()
    jobs = [(cfg, c, e, m, data[cfg.plant_level(c, e)]["data"], out) for c, e in cells for m in cfg.methods]
    inverted: dict = {}
    with bar(len(jobs), "invert") as b, _pool(min(cfg.workers, len(jobs))) as pool:
        for key, info in pool.map(_invert_job, jobs):
            inverted[key] = info
            b.update()
    t2 = time.perf_counter()
    tc = train_config(cfg).to_dict()
    datasets = {(c, e, m): inverted[(c, e, m)]["dataset"] for c, e in cells for m in cfg.methods}
    if cfg.logged:
        datasets.update({("logged", p, "logged"): data[p]["logged"] for p in plants})
    plant_of = lambda key: key[1] if key[0] == "logged" else cfg.plant_level(*key[:2])  # noqa: E731
    jobs = [(key, h5, str(out / "models" / Path(h5).stem), tc, cfg.scene(plant_of(key)), cfg.eval_episodes,
             cfg.seed + 1000) for key, h5 in datasets.items()]
    scores: dict = {}
    with bar(len(jobs), f"train {cfg.algo} + evaluate") as b, _pool(min(cfg.workers, len(jobs))) as pool:
        for key, score, seconds in pool.map(train_eval_job, jobs):
            scores[key] = {**score, "train_s": round(seconds, 1)}
            b.update()
    t3 = time.perf_counter()
    result = {
        "task": cfg.task,
        "cells": [{"condition": c, "level": e, "mass_factors": mass_factors(cfg.model_level(c, e), cfg.seed).tolist(),
                   "scene": cfg.scene(cfg.plant_level(c, e)),
                   "recovery": {m: inverted[(c, e, m)]["recovery"] for m in cfg.methods},
                   "scores": {m: scores[(c, e, m)] for m in cfg.methods},
                   "logged_score": scores.get(("logged", cfg.plant_level(c, e), "logged"))} for c, e in cells],
        "plants": {f"{p:g}": {k: v for k, v in data[p].items() if k != "data"} for p in plants},
        "settings": {**dataclasses.asdict(cfg), "train": tc},
        "seconds": {"collect": round(t1 - t0, 1), "invert": round(t2 - t1, 1), "train_evaluate": round(t3 - t2, 1),
                    "total": round(t3 - t0, 1)},
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    plot(result, out / "model_error.png")
    return result


def summary_json(result: dict) -> dict:
    """``{"task", "cells": [{condition, level, methods: {method: {pos_median_m, rot_median_rad, recovered,
    score}}, logged}]}``."""
    return {"task": result["task"], "cells": [
        {"condition": c["condition"], "level": c["level"],
         "methods": {m: {**{k: r[k] for k in ("pos_median_m", "rot_median_rad", "recovered")},
                         "score": c["scores"][m]["mean"]} for m, r in c["recovery"].items()},
         "logged": c["logged_score"]["mean"] if c["logged_score"] else None} for c in result["cells"]]}


def table_rows(result: dict) -> tuple[list, list]:
    score = lambda s: f"{s['mean']:6.1f} +- {s['se']:4.1f}  ({pct(s['success_rate'])})"  # noqa: E731
    rows = []
    for c in result["cells"]:
        for m, r in c["recovery"].items():
            rows.append([c["condition"], f"{100 * c['level']:g}%", m,
                         f"{1e3 * r['pos_median_m']:.2f} / {1e3 * r['pos_p95_m']:.2f}",
                         f"{r['rot_median_rad']:.4f} / {r['rot_p95_rad']:.4f}", pct(r["recovered"]),
                         score(c["scores"][m])])
        if c["logged_score"]:
            rows.append([c["condition"], f"{100 * c['level']:g}%", "(true goals)", "", "", "",
                         score(c["logged_score"])])
    return rows, ["error in", "level", "method", "goal position error mm, median / p95",
                  "goal rotation error rad, median / p95", "recovered", "normalized score"]


def plot(result: dict, path: Path) -> Path:
    """One row per condition, three panels against the error level: median goal position error
    (p95 dashed), median rotation error, normalized score (mean +- s.e.; true goals in black).
    Errors below 1e-9 m and 1e-12 rad (exact recovery) are drawn at that floor of the log scale."""
    plt = plotting.pyplot()
    cells = result["cells"]
    base = [c for c in cells if c["condition"] == "none"]
    conditions = sorted({c["condition"] for c in cells} - {"none"}) or ["none"]
    methods = list(cells[0]["recovery"])
    fig, axes = plt.subplots(len(conditions), 3, figsize=(12, 3.2 * len(conditions)), squeeze=False)
    for row, cond in zip(axes, conditions):
        cs = base + [c for c in cells if c["condition"] == cond]
        x = [100 * c["level"] for c in cs]
        for i, m in enumerate(methods):
            color = f"C{i}"
            row[0].semilogy(x, [1e3 * max(c["recovery"][m]["pos_median_m"], 1e-9) for c in cs], "o-", color=color,
                            label=m)
            row[0].semilogy(x, [1e3 * max(c["recovery"][m]["pos_p95_m"], 1e-9) for c in cs], "--", color=color, lw=0.8)
            row[1].semilogy(x, [max(c["recovery"][m]["rot_median_rad"], 1e-12) for c in cs], "o-", color=color)
            row[1].semilogy(x, [max(c["recovery"][m]["rot_p95_rad"], 1e-12) for c in cs], "--", color=color, lw=0.8)
            row[2].errorbar(x, [c["scores"][m]["mean"] for c in cs], [c["scores"][m]["se"] for c in cs], fmt="o-",
                            color=color, capsize=2, label=m)
        logged = [(100 * c["level"], c["logged_score"]) for c in cs if c["logged_score"]]
        if logged:
            row[2].errorbar([v[0] for v in logged], [v[1]["mean"] for v in logged], [v[1]["se"] for v in logged],
                            fmt="s:", color="k", capsize=2, label="true goals")
        row[0].set_ylabel(f"error in {cond}\ngoal position error (mm)")
        row[1].set_ylabel("goal rotation error (rad)")
        row[2].set_ylabel("normalized score")
        row[2].axhline(100, color="k", lw=0.6, ls="--")
        for ax in row:
            ax.set_xlabel("error level (%)")
    axes[0][0].set_title("median (p95 dashed)", fontsize=9)
    axes[0][2].legend(fontsize=7)
    fig.suptitle(f"{result['task']}: inverse methods under model error (model: masses and inertias of the "
                 f"inverse's model; plant: friction and damping in the simulator)", fontsize=9)
    return plotting.save(fig, path)
