"""Mixed data: one dataset from several low levels, relabeled per part or as one.

Parts (episode counts from ``shares``), collected on ``task`` with the behavior policies expert,
noisy0.1, noisy0.3 in equal shares for the goal-level parts:

- ``osc``: the original OSC (kp 150, damping ratio 1, 0.05 m / 0.5 rad; ``configs.ORIGINAL``);
- ``qp``: the task-space QP with the same gains (``QPConfig()``);
- ``flat``: the flat torque policy (``policies.behavior.FlatPolicy``: torques of the OSC for the
  expert's goals plus N(0, (0.05 tau_max)^2) noise, no goals logged).

Every policy is deployed with ONE controller (each of ``deploy``). How "relabel each part with its
own source config where known, or with the deployment config where not" is read here: the goal a
policy emits must be a goal FOR the deployment controller (a normalized action of its output scale),
so the source config can only enter through the inverse. Two relabelings follow:

- ``source`` (intent): a part with a known source controller is inverted with THAT controller's
  inverse (osc part: the original OSC's closed form; qp part: the QP's KKT inverse), which recovers
  the goal pose the source was given; that pose is then expressed as the deployment controller's
  normalized action. The flat part has no known source controller: deployment-config inverse.
- ``deployment`` (behavior): every part inverted with the deployment config's inverse
  (``configs.inverse_methods``: ``analytical`` for an OSC, ``qp`` for the QP), i.e. the goal for
  which the deployment controller reproduces the logged torques, whatever produced them.

Baselines: ``standard`` (the logged goals as normalized actions of the collecting controller, for
the parts that logged them; the flat part has none and is dropped, counted) and ``flat`` (BC on
every part's 50 Hz torques). All configs here share the output scale, so a goal pose maps to the
same normalized action for each; a config with another scale is refused.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.base import make_controller
from controllers.config import QPConfig
from ohio_core import plotting
from ohio_core.data.collect import collect
from ohio_core.data.trajectory import Trajectories
from ohio_core.experiments import mismatch
from ohio_core.experiments.configs import ORIGINAL, ArmExperimentConfig, deployment_configs, inverse_methods
from ohio_core.experiments.mismatch import Artifacts, evaluate_plan, train_all, train_config
from ohio_core.pipeline.baselines import flat_transitions, logged_actions
from ohio_core.pipeline.dataset import save_dataset
from ohio_core.pipeline.relabel import HighLevelData, relabel

PARTS = ("osc", "qp", "flat")
SOURCES = {"osc": ORIGINAL, "qp": QPConfig(), "flat": None}      # None: source controller unknown
RELABELINGS = ("source", "deployment", "standard", "flat")
BEHAVIOR = ("expert", "noisy0.1", "noisy0.3")


@dataclass(frozen=True)
class MixedConfig(ArmExperimentConfig):
    episodes: int = 300
    shares: tuple = (0.4, 0.4, 0.2)          # of ``episodes``, for the parts osc, qp, flat
    deploy: tuple = ("damping3", "qp")
    relabelings: tuple = RELABELINGS

    def __post_init__(self):
        super().__post_init__()
        sh = np.asarray(self.shares, float)
        if sh.shape != (len(PARTS),) or not (np.isfinite(sh).all() and (sh >= 0).all() and sh.sum() > 0):
            raise ValueError(f"shares must be {len(PARTS)} non-negative numbers (osc, qp, flat), got {self.shares}")
        unknown = [r for r in self.relabelings if r not in RELABELINGS]
        if unknown:
            raise ValueError(f"unknown relabeling(s) {unknown}; expected some of {list(RELABELINGS)}")
        if not self.deploy:
            raise ValueError("deploy must name at least one deployment config")
        configs = deployment_configs(self.deploy)
        scales = {tuple(c.output_max) for c in list(configs.values()) + [ORIGINAL, SOURCES["qp"]]}
        if len(scales) != 1:
            raise ValueError("every deployment and source config must share the output scale (goal poses are "
                             f"carried over as normalized actions); got {sorted(scales)}")
        if self.eval_episodes < 1 or self.workers < 1 or self.k < 1:
            raise ValueError("eval_episodes, workers and k must be >= 1")
        if min(part_episodes(self).values()) < 0 or sum(part_episodes(self).values()) != self.episodes:
            raise ValueError("shares do not split the episodes")


def part_episodes(cfg: MixedConfig) -> dict[str, int]:
    """Episodes per part: ``episodes`` split by ``shares`` (rounded, summing to ``episodes``)."""
    sh = np.asarray(cfg.shares, float)
    bounds = np.round(np.r_[0.0, np.cumsum(sh / sh.sum())] * cfg.episodes).astype(int)
    return {p: int(n) for p, n in zip(PARTS, np.diff(bounds))}


# ---------------------------------------------------------------------------------------- data

def collect_parts(cfg: MixedConfig, progress: bool = True) -> dict:
    """``{part: Trajectories}``; episode ids are unique over all parts."""
    parts, first = {}, 0
    for part, n in part_episodes(cfg).items():
        if n == 0:
            continue
        if part == "flat":
            plan = [("flat", n)]
            config = ORIGINAL
        else:
            split = np.diff(np.linspace(0, n, len(BEHAVIOR) + 1).round().astype(int))
            plan = [(b, int(m)) for b, m in zip(BEHAVIOR, split) if m > 0]
            config = SOURCES[part]
        trajs = []
        for policy, m in plan:
            trajs.append(collect(cfg.task, policy, config, m, cfg.seed, cfg.k, first_episode=first, progress=progress))
            first += m
        parts[part] = Trajectories.concatenate(trajs)
    return parts


def concat_high_level(parts: dict):
    """One ``HighLevelData`` from per-part ones; the account keeps each part's and sums the counts."""
    datas = list(parts.values())
    cat = lambda name: np.concatenate([getattr(d, name) for d in datas])  # noqa: E731
    dropped: dict = {}
    for d in datas:
        for reason, n in d.account.get("segments_dropped", {}).items():
            dropped[reason] = dropped.get(reason, 0) + n
    total = lambda key: int(sum(d.account.get(key, 0) for d in datas))  # noqa: E731
    account = {"segments_built": total("segments_built"), "segments_written": total("segments_written"),
               "segments_dropped": dropped, "actions_clipped": total("actions_clipped"),
               "parts": {p: d.account for p, d in parts.items()}}
    return HighLevelData(observations=cat("observations"), actions=cat("actions"), rewards=cat("rewards"),
                         terminals=cat("terminals"), timeouts=cat("timeouts"), episode=cat("episode"),
                         residual=cat("residual"), account=account, obs_layout=datas[0].obs_layout)


def inverse_for(part: str, relabeling: str, deploy) -> tuple[str, object, str]:
    """(inverse method, controller config it runs on, "source" or "deployment") for a part."""
    source = SOURCES[part]
    if relabeling == "source" and source is not None:
        return inverse_methods(source)["ohio_analytical"], source, "source"
    return inverse_methods(deploy)["ohio_analytical"], deploy, "deployment"


def relabel_parts(parts: dict, relabeling: str, deploy, cfg: MixedConfig):
    """The mixed dataset of one relabeling for deployment config ``deploy``, with what each part used."""
    out, used = {}, {}
    for part, traj in parts.items():
        if relabeling == "flat":
            out[part] = flat_transitions(traj, make_controller(ORIGINAL).tau_max)
            used[part] = "flat"
        elif relabeling == "standard":
            if traj.goal is None:
                used[part] = "dropped (no logged goals)"
                continue
            out[part] = logged_actions(traj, make_controller(SOURCES[part]), cfg.k)
            used[part] = "logged"
        else:
            method, config, which = inverse_for(part, relabeling, deploy)
            out[part] = relabel(traj, make_controller(config), cfg.k, method, max_residual=float("inf"),
                                workers=cfg.workers)
            used[part] = f"{method} inverse of the {which} config ({config.kind})"
    return concat_high_level(out), used


def build_datasets(parts: dict, cfg: MixedConfig, out: Path, progress: bool = True):
    """Datasets per (relabeling, deployment config); ``standard`` and ``flat`` once for all configs."""
    configs = deployment_configs(cfg.deploy)
    art, plan, used = Artifacts(), {}, {}
    jobs = [(r, None) for r in cfg.relabelings if r in ("standard", "flat")]
    jobs += [(r, c) for c in configs for r in cfg.relabelings if r not in ("standard", "flat")]
    for relabeling, cname in tqdm(jobs, desc="datasets", unit="set", disable=not progress, dynamic_ncols=True):
        deploy = configs[cname] if cname else None
        data, how = relabel_parts(parts, relabeling, deploy, cfg)
        name = relabeling if cname is None else f"{relabeling}-{cname}"
        if relabeling == "flat":
            meta = {"level": "torque", "k": 1, "controller": None, "method": "flat"}
        elif relabeling == "standard":
            meta = {"level": "goal", "k": cfg.k, "controller": ORIGINAL.to_dict(), "method": "logged"}
        else:
            meta = {"level": "goal", "k": cfg.k, "controller": deploy.to_dict(), "method": relabeling}
        path = out / "datasets" / name
        save_dataset(data, path, {"task": cfg.task, **meta, "parts": how})
        art.datasets[name] = str(path.with_suffix(".h5"))
        art.accounts[name] = data.account
        used[name] = how
        for c in ([cname] if cname else list(configs)):
            plan[(relabeling, c)] = name
    return art, plan, used


def evaluate_all(cfg: MixedConfig, plan: dict, art, progress: bool = True) -> dict:
    """``{config: {relabeling: evaluation}}``; only the ``standard`` baseline meets a controller other
    than the one its dataset was relabeled for."""
    return evaluate_plan(plan, art.models, cfg.relabelings, deployment_configs(cfg.deploy), cfg.eval_episodes,
                         cfg.seed + 1000, cfg.workers, lambda r, c: r == "standard", progress)


# ------------------------------------------------------------------------------------- the run

def run(cfg: MixedConfig, out: str | Path, progress: bool = True) -> dict:
    """Collect the parts, build every relabeling, train, evaluate; writes ``result.json`` and ``scores.png``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = collect_parts(cfg, progress)
    t1 = time.perf_counter()
    art, plan, used = build_datasets(parts, cfg, out, progress)
    t2 = time.perf_counter()
    train_all(cfg, art, out, progress)
    t3 = time.perf_counter()
    evals = evaluate_all(cfg, plan, art, progress)
    t4 = time.perf_counter()
    result = {
        "task": cfg.task,
        "configs": {c: {r: {k: e[k] for k in ("mean", "se", "success_rate")} for r, e in rs.items()}
                    for c, rs in evals.items()},
        "parts": {p: {"episodes": int(len(np.unique(t.episode))), "control_steps": int(len(t)),
                      "behavior_return_mean": float(t.reward.sum() / max(len(np.unique(t.episode)), 1))}
                  for p, t in parts.items()},
        "inverses": used,
        "accounts": {n: {k: a[k] for k in ("segments_built", "segments_written", "segments_dropped",
                                           "actions_clipped")} | {"parts": {p: {k: pa[k] for k in (
                                               "segments_built", "segments_written", "actions_clipped")}
                                               for p, pa in a["parts"].items()}}
                     for n, a in art.accounts.items()},
        "settings": {**asdict(cfg), "train": train_config(cfg).to_dict()},
        "evaluations": evals,
        "models": art.models,
        "seconds": {**art.seconds, "collect": round(t1 - t0, 1), "relabel": round(t2 - t1, 1),
                    "train": round(t3 - t2, 1), "evaluate": round(t4 - t3, 1), "total": round(t4 - t0, 1)},
    }
    (out / "result.json").write_text(json.dumps(result, indent=1))
    plot_scores(result, out / "scores.png")
    return result


def summary_json(result: dict) -> dict:
    """``{"task", "parts", "configs": {config: {relabeling: {mean, se, success_rate}}}}``."""
    return {"task": result["task"], "parts": result["parts"], "configs": result["configs"]}


def table_rows(result: dict) -> tuple[list, list]:
    return mismatch.table_rows(result, "relabeling")


def plot_scores(result: dict, path: Path) -> Path:
    """Grouped bars: normalized score (mean +- s.e.) per relabeling, one group per deployment config."""
    plt = plotting.pyplot()
    configs = list(result["configs"])
    relabelings = list(result["configs"][configs[0]])
    width = 0.8 / len(relabelings)
    fig, ax = plt.subplots(figsize=(1.9 * len(configs) + 2.5, 3.4))
    x = np.arange(len(configs))
    for i, r in enumerate(relabelings):
        ax.bar(x + (i - (len(relabelings) - 1) / 2) * width, [result["configs"][c][r]["mean"] for c in configs],
               width, yerr=[result["configs"][c][r]["se"] for c in configs], capsize=2, label=r)
    ax.axhline(100, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, configs)
    ax.set_ylabel("normalized score")
    shares = ", ".join(f"{p} {v['episodes']}" for p, v in result["parts"].items())
    ax.set_title(f"{result['task']}: mixed data ({shares} episodes), per deployment config", fontsize=9)
    ax.legend(fontsize=7, ncol=len(relabelings), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return plotting.save(fig, path)
