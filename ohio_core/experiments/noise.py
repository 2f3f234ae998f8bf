"""Stochastic low level: goal recovery and learned policies under Gaussian action noise.

The low level is tau = clip(pi_LL(s, g) + eps), eps ~ N(0, diag(sigma^2)) per control period, with
sigma_i = f tau_max_i, a fraction f of each joint's torque limit (``envs.arm.noise``; the Panda's
limits are 87 N m on joints 1-4 and 12 N m on 5-7, so f = 0.01 is 0.87 / 0.12 N m).

1. Recovery (known goals, ``inverse.synthetic.simulate_segments``): per noise level f, segments of
   k periods from random states, each holding one random goal, through the noisy original OSC;
   the goals are recovered with ``analytical`` (closed form at the first period), ``numerical``
   (least squares over all k periods, equal weights) and ``ml`` (the maximum-likelihood inverse,
   weights 1 / sigma_i; censored entries: ``censored``). Reported: position error (m) and
   rotation error (rad) against the true goals, median and p95, and the share of segments solved
   (status OK), and the share of torque entries at the limits (censored). Goals are uniform
   normalized actions times ``action_scale``; start states have joint velocities of std
   ``velocity_std`` (large values saturate torques). At f = 0 ``ml`` uses the weights
   1 / tau_max_i (any weights are exact there).
2. Policies: per level in ``bc_levels``, behavior episodes (expert, noisy0.1, noisy0.3 in equal
   shares) with the noisy original OSC, relabeled for the deployment config by each inverse (and
   ``standard``: the logged goals), BC (or ``algo``) trained per dataset, evaluated under the
   deployment controller WITHOUT noise (normalized score: 0 random, 100 the expert).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.base import make_controller
from ohio_core import plotting
from ohio_core.data.collect import collect
from ohio_core.data.trajectory import Trajectories
from ohio_core.envs.arm.noise import torque_sigma
from ohio_core.experiments.configs import ORIGINAL, ArmExperimentConfig, deployment_configs
from ohio_core.experiments.mismatch import Artifacts, _eval_job, _pool, train_all, train_config
from ohio_core.inverse import invert
from ohio_core.inverse.ml import CENSORED
from ohio_core.inverse.synthetic import recovery as goal_errors
from ohio_core.inverse.synthetic import simulate_segments
from ohio_core.pipeline.baselines import logged_actions
from ohio_core.pipeline.dataset import save_dataset
from ohio_core.pipeline.relabel import relabel

INVERSES = ("analytical", "numerical", "ml")
POLICY_METHODS = INVERSES + ("standard",)
BEHAVIOR = ("expert", "noisy0.1", "noisy0.3")


@dataclass(frozen=True)
class NoiseConfig(ArmExperimentConfig):
    levels: tuple = (0.0, 0.005, 0.01, 0.02, 0.05)     # recovery: noise std as fractions of tau_max
    segments: int = 2000                                # recovery segments per level
    action_scale: float = 0.3                           # recovery goals: uniform normalized actions * scale
    velocity_std: float = 0.3                           # recovery start states: joint velocity std (rad/s)
    bc_levels: tuple = (0.0, 0.02, 0.05)                # policy part: noise levels with trained policies
    episodes: int = 150                                 # behavior episodes per policy level
    methods: tuple = POLICY_METHODS
    deploy: str = "original"                            # deployment config the goals are relabeled for
    censored: str = "hinge"                             # ml's handling of saturated entries
    numerical_iterations: int = 200

    def __post_init__(self):
        super().__post_init__()
        for name in ("levels", "bc_levels"):
            lv = np.asarray(getattr(self, name), float)
            if lv.ndim != 1 or not (np.isfinite(lv).all() and (lv >= 0).all()):
                raise ValueError(f"{name} must be noise fractions >= 0, got {getattr(self, name)}")
        if not self.levels:
            raise ValueError("levels must name at least one noise level")
        unknown = [m for m in self.methods if m not in POLICY_METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; expected some of {list(POLICY_METHODS)}")
        if self.censored not in CENSORED:
            raise ValueError(f"censored must be one of {CENSORED}, got {self.censored!r}")
        if self.segments < 1 or self.k < 1 or self.eval_episodes < 1 or self.workers < 1:
            raise ValueError("segments, k, eval_episodes and workers must be >= 1")
        if self.bc_levels and self.episodes < len(BEHAVIOR):
            raise ValueError(f"episodes must cover every behavior policy ({len(BEHAVIOR)}), got {self.episodes}")
        if not 0 < self.action_scale <= 1:
            raise ValueError(f"action_scale must be in (0, 1], got {self.action_scale}")
        if not (np.isfinite(self.velocity_std) and self.velocity_std >= 0):
            raise ValueError(f"velocity_std must be finite and >= 0, got {self.velocity_std}")
        deployment_configs([self.deploy])


def ml_sigma(level: float, tau_max: np.ndarray) -> np.ndarray:
    """The ml inverse's sigma for a noise fraction: level * tau_max, or tau_max itself at level 0."""
    return (level if level > 0 else 1.0) * np.asarray(tau_max, float)


def inverse_options(method: str, level: float, tau_max, cfg: NoiseConfig) -> dict:
    if method == "ml":
        return {"sigma": ml_sigma(level, tau_max), "censored": cfg.censored, "iterations": cfg.numerical_iterations}
    return {"iterations": cfg.numerical_iterations} if method == "numerical" else {}


# ------------------------------------------------------------------------------------ recovery

def error_stats(perr: np.ndarray, oerr: np.ndarray, ok: np.ndarray) -> dict:
    """Median and p95 of position (m) and rotation (rad) errors over all segments; share solved."""
    return {"pos_median": float(np.median(perr)), "pos_p95": float(np.percentile(perr, 95)),
            "rot_median": float(np.median(oerr)), "rot_p95": float(np.percentile(oerr, 95)),
            "ok": float(np.mean(ok))}


def recovery(cfg: NoiseConfig, progress: bool = True) -> dict:
    """``{level: {method: error_stats}}`` on simulated segments with known goals."""
    controller = make_controller(ORIGINAL)
    out = {}
    for level in tqdm(cfg.levels, desc="recovery", unit="level", disable=not progress, dynamic_ncols=True):
        sigma = torque_sigma(level, controller.tau_max) if level > 0 else None
        syn = simulate_segments(controller, cfg.segments, cfg.k, seed=cfg.seed, action_scale=cfg.action_scale,
                                velocity_std=cfg.velocity_std, torque_sigma=sigma)
        row = {"saturated_entries": float(syn.saturated.mean())}
        for method in INVERSES:
            res = invert(method, syn.segments, controller, **inverse_options(method, level, controller.tau_max, cfg))
            perr, oerr, _ = goal_errors(res, syn.goal_p, syn.goal_R)
            row[method] = error_stats(perr, oerr, res.ok)
        out[f"{level:g}"] = row
    return out


# ------------------------------------------------------------------------------------ policies

def behavior_data(cfg: NoiseConfig, level: float, progress: bool = True):
    """Behavior episodes under the original OSC with torque noise ``level``."""
    shares = np.diff(np.linspace(0, cfg.episodes, len(BEHAVIOR) + 1).round().astype(int))
    parts, first = [], 0
    for policy, n in zip(BEHAVIOR, shares):
        traj = collect(cfg.task, policy, ORIGINAL, int(n), cfg.seed, cfg.k, first_episode=first,
                       progress=progress, torque_noise=level)
        parts.append(traj)
        first += int(n)
    return Trajectories.concatenate(parts)


def build_datasets(cfg: NoiseConfig, out: Path, progress: bool = True):
    """Per policy level and method a dataset; returns (Artifacts, ``{level: {method: name}}``, data stats)."""
    deploy = deployment_configs([cfg.deploy])[cfg.deploy]
    controller, original = make_controller(deploy), make_controller(ORIGINAL)
    art, plan, stats = Artifacts(), {}, {}
    for level in cfg.bc_levels:
        key = f"{level:g}"
        traj = behavior_data(cfg, level, progress)
        stats[key] = {"episodes": int(len(np.unique(traj.episode))), "control_steps": int(len(traj)),
                      "behavior_return_mean": float(traj.reward.sum() / max(len(np.unique(traj.episode)), 1))}
        plan[key] = {}
        for method in cfg.methods:
            if method == "standard":
                data = logged_actions(traj, original, cfg.k)
                meta = {"controller": ORIGINAL.to_dict(), "method": "logged"}
            else:
                data = relabel(traj, controller, cfg.k, method, max_residual=float("inf"), workers=cfg.workers,
                               **inverse_options(method, level, controller.tau_max, cfg))
                meta = {"controller": deploy.to_dict(), "method": method}
            name = f"{method}-f{key.replace('.', 'p')}"       # no dot: file names take their suffix after it
            path = out / "datasets" / name
            save_dataset(data, path, {"task": cfg.task, "level": "goal", "k": cfg.k, "torque_noise": level, **meta})
            art.datasets[name] = str(path.with_suffix(".h5"))
            art.accounts[name] = data.account
            plan[key][method] = name
    return art, plan, stats


def evaluate_all(cfg: NoiseConfig, plan: dict, art, progress: bool = True) -> dict:
    """``{level: {method: evaluation}}`` under the deployment controller (noise-free)."""
    jobs = [(f"{level}|{method}", cfg.deploy, art.models[name], cfg.eval_episodes, cfg.seed + 1000,
             method == "standard" and cfg.deploy != "original")
            for level, methods in plan.items() for method, name in methods.items()]
    results = {level: {} for level in plan}
    bar = tqdm(total=len(jobs), desc="evaluate", unit="policy", disable=not progress, dynamic_ncols=True)
    with bar, _pool(min(cfg.workers, max(len(jobs), 1))) as pool:
        for tag, _, res in pool.map(_eval_job, jobs):
            level, method = tag.split("|")
            results[level][method] = res
            bar.update()
    return {level: {m: results[level][m] for m in plan[level]} for level in plan}


# ------------------------------------------------------------------------------------- the run

def run(cfg: NoiseConfig, out: str | Path, progress: bool = True) -> dict:
    """Run both parts; writes datasets, models, ``result.json``, ``recovery.png`` and ``scores.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rec = recovery(cfg, progress)
    t1 = time.perf_counter()
    seconds = {"recovery": round(t1 - t0, 1)}
    scores, evals, accounts, data, models = {}, {}, {}, {}, {}
    if cfg.bc_levels:
        art, plan, data = build_datasets(cfg, out, progress)
        t2 = time.perf_counter()
        train_all(cfg, art, out, progress)
        t3 = time.perf_counter()
        evals = evaluate_all(cfg, plan, art, progress)
        t4 = time.perf_counter()
        seconds.update({"collect_relabel": round(t2 - t1, 1), "train": round(t3 - t2, 1),
                        "evaluate": round(t4 - t3, 1)})
        scores = {lv: {m: {k: e[k] for k in ("mean", "se", "success_rate")} for m, e in ms.items()}
                  for lv, ms in evals.items()}
        accounts = {n: {k: a[k] for k in ("segments_built", "segments_written", "segments_dropped",
                                          "actions_clipped", "residual_n_m")} for n, a in art.accounts.items()}
        models = art.models
    seconds["total"] = round(time.perf_counter() - t0, 1)
    result = {
        "task": cfg.task, "deploy": cfg.deploy, "recovery": rec, "scores": scores,
        "settings": {**asdict(cfg), "train": train_config(cfg).to_dict()},
        "data": data, "accounts": accounts, "evaluations": evals, "models": models, "seconds": seconds,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    plot_recovery(result, out / "recovery.png")
    if scores:
        plot_scores(result, out / "scores.png")
    return result


def summary_json(result: dict) -> dict:
    """``{"task", "deploy", "recovery": {level: {method: stats}},
    "scores": {level: {method: {mean, se, success_rate}}}}``."""
    return {k: result[k] for k in ("task", "deploy", "recovery", "scores")}


def table_rows(result: dict) -> tuple[list, list]:
    """Recovery: one row per (noise level, inverse)."""
    rows = []
    for level, row in result["recovery"].items():
        for m in INVERSES:
            s = row[m]
            rows.append([level, m, f"{1e3 * s['pos_median']:.2f}", f"{1e3 * s['pos_p95']:.2f}",
                         f"{s['rot_median']:.4f}", f"{s['rot_p95']:.4f}", f"{100 * s['ok']:.1f}%",
                         f"{100 * row['saturated_entries']:.1f}%"])
    return rows, ["noise f", "inverse", "pos median mm", "pos p95 mm", "rot median rad", "rot p95 rad", "solved",
                  "entries at limit"]


def score_rows(result: dict) -> tuple[list, list]:
    """Policies: one row per method, one column per noise level."""
    levels = list(result["scores"])
    methods = list(next(iter(result["scores"].values()))) if levels else []
    rows = [[m] + [f"{result['scores'][lv][m]['mean']:6.1f} +- {result['scores'][lv][m]['se']:4.1f}"
                   f"  ({100 * result['scores'][lv][m]['success_rate']:.0f}%)" for lv in levels] for m in methods]
    return rows, ["method"] + [f"f = {lv}" for lv in levels]


def plot_recovery(result: dict, path: Path) -> Path:
    """Median (line) and p95 (dashed) goal errors vs noise level > 0, position and rotation (log scale;
    at f = 0 every inverse that solves a segment is exact to round-off, see the table)."""
    plt = plotting.pyplot()
    keys = [lv for lv in result["recovery"] if float(lv) > 0] or list(result["recovery"])
    levels = [float(lv) for lv in keys]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    panels = (("pos", 1e3, "position error (mm)"), ("rot", 1.0, "rotation error (rad)"))
    for ax, (key, scale, unit) in zip(axes, panels):
        for i, m in enumerate(INVERSES):
            rows = [result["recovery"][lv][m] for lv in keys]
            color = f"C{i}"
            ax.plot(levels, [scale * r[f"{key}_median"] for r in rows], "o-", color=color, label=f"{m} median")
            ax.plot(levels, [scale * r[f"{key}_p95"] for r in rows], "s--", color=color, alpha=0.6, label=f"{m} p95")
        ax.set_xlabel("torque noise std / torque limit")
        ax.set_ylabel(unit)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"goal recovery under action noise (k = {result['settings']['k']}, true goals known)", fontsize=9)
    return plotting.save(fig, path)


def plot_scores(result: dict, path: Path) -> Path:
    """Grouped bars: normalized score (mean +- s.e.) per method, one group per noise level."""
    plt = plotting.pyplot()
    levels = list(result["scores"])
    methods = list(result["scores"][levels[0]])
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.8 * len(levels) + 2.5, 3.4))
    x = np.arange(len(levels))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [result["scores"][lv][m]["mean"] for lv in levels], width,
               yerr=[result["scores"][lv][m]["se"] for lv in levels], capsize=2, label=m)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, [f"f = {lv}" for lv in levels])
    ax.set_ylabel("normalized score")
    ax.set_title(f"{result['task']}: data from a noisy OSC, deployed under {result['deploy']} (noise-free)", fontsize=9)
    ax.legend(fontsize=7, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return plotting.save(fig, path)
