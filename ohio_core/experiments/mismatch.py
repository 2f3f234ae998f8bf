"""The controller-mismatch experiment: OHIO against standard, flat, naive and HIRO-style offline RL.

1. Behavior data on ``task`` under the ORIGINAL controller (``experiments.configs``): the scripted
   expert and noisy versions of it (``policies.behavior``), in memory or through rosbag2 bags.
2. Datasets, one per (method, deployment config) (identical ones are trained once):
   ``ohio_analytical``/``ohio_numerical`` relabel every segment for the deployment controller
   (``configs.inverse_methods``), ``naive`` takes the pose k periods later as the goal,
   ``standard`` keeps the logged normalized actions, ``flat`` the logged 50 Hz torques,
   ``hiro_joint``/``hiro_ops`` a high level of target states k periods ahead (joint or operational
   space) and a goal-conditioned low level of torques, both learned (``pipeline.hiro``).
3. One policy per distinct dataset (d3rlpy, same algorithm and settings for all), trained in
   parallel processes.
4. Every policy evaluated under every deployment config with the same seeds
   (``learning.evaluate``): normalized score mean and standard error, success rate.
   The rows ``expert`` and ``expert_full_pace`` need no data: the scripted expert's own closed loop
   through each deployment config, at the behavior's pace and at full pace, the most a policy
   reaches there as far as the expert shows (``learning.evaluate.evaluate_expert``).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.base import make_controller
from ohio_core import plotting
from ohio_core.data.bags import read_bag
from ohio_core.data.collect import collect, collect_bag
from ohio_core.data.trajectory import Trajectories
from ohio_core.experiments.configs import (ORIGINAL, ArmExperimentConfig, deployment_configs, inverse_methods,
                                           inversion_controller_config)
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.evaluate import evaluate, evaluate_expert
from ohio_core.learning.hierarchical import load_hierarchical, save_hierarchical
from ohio_core.learning.policy import load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.baselines import flat_transitions, logged_actions
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.hiro import hiro_datasets
from ohio_core.pipeline.relabel import relabel
from ohio_core.policies.scripted import PACE

#: the scripted expert's own closed loop through each deployment config, at the behavior's pace and at
#: full pace (``learning.evaluate.evaluate_expert``): no data, no training; what a policy can reach there
EXPERT_PACES = {"expert": PACE, "expert_full_pace": 1.0}
METHODS = ("ohio_analytical", "ohio_numerical", "ohio_state", "standard", "flat", "naive", "hiro_joint", "hiro_ops",
           *EXPERT_PACES)
#: methods that use no known controller: one policy, evaluated once for every deployment config
CONTROLLER_FREE = ("flat", "hiro_joint", "hiro_ops")
#: goal space of each HIRO-style baseline (a learned low level; ``pipeline.hiro``)
HIRO_SPACES = {"hiro_joint": "joint", "hiro_ops": "operational"}
#: the methods run unless asked for others (``ohio_state``, state matching, is slower: opt in)
DEFAULT_METHODS = ("ohio_analytical", "ohio_numerical", "standard", "flat", "naive")
BEHAVIOR = ("expert", "noisy0.1", "noisy0.3")


@dataclass(frozen=True)
class MismatchConfig(ArmExperimentConfig):
    episodes: int = 450                  # behavior episodes, split evenly over ``behavior``
    behavior: tuple = BEHAVIOR
    configs: tuple | None = None         # deployment configs (None: every changed one)
    methods: tuple = DEFAULT_METHODS
    bags: bool = False                   # go through rosbag2 bags (collect -> bag -> read) instead of memory
    # Under a changed controller the logged torques come from another law: no held goal matches all
    # k of them, and a residual is expected (damping3, reach: median ~5 N m with noisy data). A
    # residual threshold would empty those datasets, so none is applied; residuals are in the sidecars.
    max_residual: float = float("inf")
    numerical_iterations: int = 200

    def __post_init__(self):
        super().__post_init__()
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; expected some of {list(METHODS)}")
        if self.episodes < len(self.behavior) or self.eval_episodes < 1 or self.workers < 1:
            raise ValueError("episodes must cover every behavior policy; eval_episodes and workers >= 1")
        deployment_configs(self.configs)
        train_config(self)                   # TrainConfig checks the training settings


@dataclass
class Artifacts:
    datasets: dict = field(default_factory=dict)     # dataset name -> path
    models: dict = field(default_factory=dict)       # dataset name (or HIRO method) -> model path
    hiro: dict = field(default_factory=dict)         # HIRO method -> (goal space, goal scale)
    accounts: dict = field(default_factory=dict)     # dataset name -> relabel account
    seconds: dict = field(default_factory=dict)      # stage -> seconds


# ---------------------------------------------------------------------------------------- data

def behavior_data(cfg: MismatchConfig, out: Path, progress: bool = True):
    """Trajectories of the behavior policies under the original controller."""
    shares = np.diff(np.linspace(0, cfg.episodes, len(cfg.behavior) + 1).round().astype(int))
    parts, first = [], 0
    for policy, n in zip(cfg.behavior, shares):
        if cfg.bags:
            bag = out / "bags" / f"{cfg.task}-{policy}"
            if not bag.exists():
                collect_bag(bag, cfg.task, policy, ORIGINAL, int(n), cfg.seed + first, cfg.k, progress=progress)
            traj = read_bag(bag)
        else:
            traj = collect(cfg.task, policy, ORIGINAL, int(n), cfg.seed, cfg.k, first_episode=first,
                           progress=progress)
        traj.episode = traj.episode - traj.episode.min() + first
        parts.append(traj)
        first += int(n)
    return Trajectories.concatenate(parts)


def _digest(data) -> str:
    h = hashlib.sha256()
    for a in (data.observations, data.actions, data.rewards, data.terminals, data.timeouts):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def build_datasets(traj, cfg: MismatchConfig, out: Path, progress: bool = True) -> tuple[dict, Artifacts]:
    """Write every dataset the experiment needs; returns ``{(method, config): dataset name}``."""
    configs = deployment_configs(cfg.configs)
    art = Artifacts()
    seen: dict[str, str] = {}
    plan: dict = {}
    original = make_controller(ORIGINAL)

    def put(name: str, data, meta: dict) -> str:
        digest = _digest(data)
        if digest in seen:                      # identical data: one dataset, one policy
            return seen[digest]
        path = out / "datasets" / name
        save_dataset(data, path, {"task": cfg.task, **meta, "digest": digest})
        seen[digest] = name
        art.datasets[name] = str(path.with_suffix(".h5"))
        art.accounts[name] = data.account
        return name

    jobs = []
    if "standard" in cfg.methods:
        jobs.append(("standard", None))
    jobs += [(m, None) for m in CONTROLLER_FREE if m in cfg.methods]
    for cname, config in configs.items():
        jobs += [(m, cname) for m in cfg.methods
                 if m != "standard" and m not in CONTROLLER_FREE and m not in EXPERT_PACES]
    for method, cname in tqdm(jobs, desc="datasets", unit="set", disable=not progress, dynamic_ncols=True):
        if method == "standard":
            data = logged_actions(traj, original, cfg.k)
            name = put("standard", data, {"level": "goal", "k": cfg.k, "controller": ORIGINAL.to_dict(),
                                           "method": "logged"})
        elif method == "flat":
            data = flat_transitions(traj, original.tau_max)
            name = put("flat", data, {"level": "torque", "k": 1, "controller": None, "method": "flat"})
        elif method in HIRO_SPACES:
            space = HIRO_SPACES[method]
            high, low, scale = hiro_datasets(traj, cfg.k, space, original.tau_max)
            put(f"{method}-high", high, {"level": "goal", "k": cfg.k, "controller": None, "method": method})
            put(f"{method}-low", low, {"level": "torque", "k": 1, "controller": None, "method": f"{method}_low"})
            art.hiro[method] = (space, scale.tolist())
            name = method
        else:
            config = configs[cname]
            inv = "naive" if method == "naive" else inverse_methods(config)[method]
            inv_config = inversion_controller_config(config, inv)
            method_name = inv.split("@")[0]
            options = {"iterations": cfg.numerical_iterations} if method_name == "numerical" else {}
            data = relabel(traj, make_controller(inv_config), cfg.k, method_name, max_residual=cfg.max_residual,
                           workers=cfg.workers, **options)
            name = put(f"{method}-{cname}", data, {"level": "goal", "k": cfg.k, "controller": config.to_dict(),
                                                   "method": method, "inverse": inv})
        if method == "standard" or method in CONTROLLER_FREE:
            for c in configs:
                plan[(method, c)] = name
        else:
            plan[(method, cname)] = name
    return plan, art


# ------------------------------------------------------------------------------------ training

def _train_job(args: tuple) -> tuple[str, str, float]:
    name, h5, model, train_cfg = args

    buffer, meta = load_dataset(h5)
    res = train(buffer, meta, TrainConfig(**train_cfg), model, progress=False, extra_meta={"dataset": h5})
    return name, str(res.model), res.seconds


class _Inline:
    """The executor interface, in this process (one worker: no process start-up, plain tracebacks)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, jobs):
        return map(fn, jobs)


def _pool(workers: int):
    if workers <= 1:
        return _Inline()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def train_config(cfg: MismatchConfig):
    """The one training configuration every method's policy is trained with."""
    return TrainConfig.for_task(cfg.task, algo=cfg.algo, steps=cfg.steps,
                                seed=cfg.seed if cfg.train_seed is None else cfg.train_seed,
                                action_scaling=cfg.action_scaling, ignore_observations=cfg.ignore_observations)


def train_all(cfg: MismatchConfig, art: Artifacts, out: Path, progress: bool = True) -> None:
    tc = train_config(cfg).to_dict()
    jobs = [(name, h5, str(out / "models" / name), tc) for name, h5 in art.datasets.items()]
    bar = tqdm(total=len(jobs), desc=f"train {cfg.algo} x{len(jobs)}", unit="model", disable=not progress,
               dynamic_ncols=True)
    with bar, _pool(min(cfg.workers, len(jobs))) as pool:
        for name, model, seconds in pool.map(_train_job, jobs):
            art.models[name] = model
            art.seconds[f"train:{name}"] = round(seconds, 1)
            bar.update()
    for method, (space, scale) in art.hiro.items():
        art.models[method] = str(save_hierarchical(out / "models" / method, art.models[f"{method}-high"],
                                                   art.models[f"{method}-low"], space, cfg.k, scale))


# ---------------------------------------------------------------------------------- evaluation

def _eval_job(args: tuple) -> tuple[str, str, dict]:
    method, cname, model, episodes, seed, allow_controller_change = args

    if method in EXPERT_PACES:                 # model: (task, k)
        task, k = model
        res = evaluate_expert(task, deployment_configs([cname])[cname], episodes, seed, EXPERT_PACES[method], k)
        return method, cname, res.to_dict()
    policy = load_hierarchical(model) if method in HIRO_SPACES else load_policy(model)
    config = deployment_configs([cname])[cname] if policy.level == "goal" else None
    res = evaluate(policy, config, episodes, seed, allow_controller_change=allow_controller_change)
    return method, cname, res.to_dict()


def evaluate_plan(plan: dict, models: dict, methods, configs, episodes: int, seed: int, workers: int,
                  allow_change, progress: bool = True, task: str | None = None, k: int = 5) -> dict:
    """``{config: {method: evaluation}}`` of the model ``models[plan[(method, config)]]`` under each
    deployment config, ``episodes`` episodes from ``seed``; a controller-free policy (flat, HIRO-style)
    is evaluated once (it uses no controller); the expert rows (``EXPERT_PACES``) run ``task``'s
    scripted expert with ``k``. ``allow_change(method, config)`` says whether that model may meet a
    controller other than the one its dataset was relabeled for."""
    configs = list(configs)
    jobs = [(m, c, (task, k) if m in EXPERT_PACES else models[plan[(m, c)]], episodes, seed,
             m not in EXPERT_PACES and allow_change(m, c))
            for c in configs for m in methods if not (m in CONTROLLER_FREE and c != configs[0])]
    results: dict = {c: {} for c in configs}
    bar = tqdm(total=len(jobs), desc="evaluate", unit="policy", disable=not progress, dynamic_ncols=True)
    with bar, _pool(min(workers, len(jobs))) as pool:
        for method, cname, res in pool.map(_eval_job, jobs):
            for c in (configs if method in CONTROLLER_FREE else [cname]):
                results[c][method] = res
            bar.update()
    return {c: {m: results[c][m] for m in methods} for c in configs}


def evaluate_all(cfg: MismatchConfig, plan: dict, art: Artifacts, progress: bool = True) -> dict:
    """``{config: {method: evaluation}}``. A model meets a controller other than its own when that is
    the baseline (``standard``: logged actions under a changed controller) or when its dataset came
    out identical for both configs."""
    return evaluate_plan(plan, art.models, cfg.methods, deployment_configs(cfg.configs), cfg.eval_episodes,
                         cfg.seed + 1000, cfg.workers,
                         lambda m, c: m == "standard" or plan[(m, c)] != f"{m}-{c}", progress, cfg.task, cfg.k)


# ------------------------------------------------------------------------------------- the run

def run(cfg: MismatchConfig, out: str | Path, progress: bool = True) -> dict:
    """Run the experiment; writes datasets, models, ``result.json`` and ``scores.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    needs_data = any(m not in EXPERT_PACES for m in cfg.methods)
    traj = behavior_data(cfg, out, progress) if needs_data else None
    t1 = time.perf_counter()
    plan, art = build_datasets(traj, cfg, out, progress)
    t2 = time.perf_counter()
    train_all(cfg, art, out, progress)
    t3 = time.perf_counter()
    evals = evaluate_all(cfg, plan, art, progress)
    t4 = time.perf_counter()
    art.seconds.update({"collect": round(t1 - t0, 1), "relabel": round(t2 - t1, 1), "train": round(t3 - t2, 1),
                        "evaluate": round(t4 - t3, 1), "total": round(t4 - t0, 1)})
    configs = deployment_configs(cfg.configs)
    result = {
        "task": cfg.task,
        "configs": {c: {m: {k: evals[c][m][k] for k in ("mean", "se", "success_rate")} for m in cfg.methods}
                    for c in configs},
        "inverse": {c: inverse_methods(conf) for c, conf in configs.items()},
        "reference": evals[next(iter(configs))][cfg.methods[0]]["reference"],
        "settings": {**asdict(cfg), "max_residual": cfg.max_residual if np.isfinite(cfg.max_residual) else None,
                     "train": train_config(cfg).to_dict()},
        "data": ({"episodes": int(len(np.unique(traj.episode))), "control_steps": int(len(traj)),
                  "behavior_return_mean": float(traj.reward.sum() / max(len(np.unique(traj.episode)), 1))}
                 if traj is not None else {"episodes": 0, "control_steps": 0, "behavior_return_mean": None}),
        "accounts": {n: {k: a[k] for k in ("segments_built", "segments_written", "segments_dropped",
                                           "actions_clipped")} for n, a in art.accounts.items()},
        "evaluations": evals,
        "models": art.models,
        "seconds": art.seconds,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    plot_scores(result, out / "scores.png")
    return result


def summary_json(result: dict) -> dict:
    """The one-line JSON of the experiment: ``{"task", "configs": {config: {method: {mean, se, success_rate}}}}``."""
    return {"task": result["task"], "configs": result["configs"]}


def table_rows(result: dict, label: str = "method") -> tuple[list, list]:
    """One row per method (first column headed ``label``), one column per deployment config."""
    configs = list(result["configs"])
    methods = list(next(iter(result["configs"].values())))
    rows = [[m] + [f"{result['configs'][c][m]['mean']:6.1f} +- {result['configs'][c][m]['se']:4.1f}"
                   f"  ({100 * result['configs'][c][m]['success_rate']:.0f}%)" for c in configs] for m in methods]
    return rows, [label] + configs


def plot_scores(result: dict, path: Path) -> Path:
    """Grouped bars: normalized score (mean +- s.e.) per method, one group per deployment config."""
    plt = plotting.pyplot()
    configs = list(result["configs"])
    methods = list(next(iter(result["configs"].values())))
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.9 * len(configs) + 2.5, 3.6))
    x = np.arange(len(configs))
    for i, m in enumerate(methods):
        mean = [result["configs"][c][m]["mean"] for c in configs]
        se = [result["configs"][c][m]["se"] for c in configs]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, mean, width, yerr=se, capsize=2, label=m)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.axhline(85, color="gray", lw=0.8, ls=":")
    ax.set_xticks(x, configs)
    ax.set_ylabel("normalized score")
    ax.set_title(f"{result['task']}: deployment under a changed controller (100 = expert, 0 = random)", fontsize=9)
    ax.legend(fontsize=7, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return plotting.save(fig, path)
