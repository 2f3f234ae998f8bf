"""State matching with a learned dynamics model against the known (Pinocchio) model.

Per simulated plant (``nominal``: the URDF's joints; ``friction``: joint damping and dry friction
added in the simulator only, which the Pinocchio model lacks):

1. Behavior data through the ORIGINAL controller (expert and noisy versions; goals logged: the
   ground truth).
2. A dynamics model learned from the same data (``learning.dynamics``: one control period ahead
   from (q, qd, tau); episodes split into training and validation, best validation checkpoint).
3. State matching (no torques used) with the known model (``known``) and with the learned one
   (``learned``): goal errors against the logged goals, on every segment and on the held-out
   episodes only, and the distance between the two methods' goals.
4. A BC policy per relabeled dataset (and on the true goals, ``logged``), evaluated in the same plant
   under the ORIGINAL controller (normalized score).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from controllers.base import make_controller
from ohio_core import plotting
from ohio_core.envs.arm.scene import SceneConfig
from ohio_core.experiments.configs import ORIGINAL, ArmExperimentConfig
from ohio_core.experiments.mismatch import _pool
from ohio_core.experiments.recovery import (BEHAVIOR, accept_best_fit, behavior_data, goal_errors, pct, recovery_stats,
                                            train_eval_job, true_goals, write_dataset, write_logged_dataset)
from ohio_core.inverse import invert
from ohio_core.inverse.state_matching import PinocchioDynamics
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.dynamics import DynamicsConfig, prediction_error, split_by_episode, train_dynamics, transitions
from ohio_core.pipeline.relabel import segments_of

PLANTS = ("nominal", "friction")
METHODS = ("known", "learned")


@dataclass(frozen=True)
class LearnedDynamicsConfig(ArmExperimentConfig):
    plants: tuple = PLANTS
    plant_damping: float = 0.6           # N m s/rad added on the arm joints of the friction plant
    plant_friction: float = 0.6          # N m of dry friction added there (model_error's 30% level)
    episodes: int = 150
    dynamics_kind: str = "mlp"
    dynamics_epochs: int = 200
    dynamics_hidden: tuple = (256, 256)
    val_fraction: float = 0.2
    logged: bool = True

    def __post_init__(self):
        super().__post_init__()
        unknown = [p for p in self.plants if p not in PLANTS]
        if unknown or not self.plants:
            raise ValueError(f"unknown plant(s) {unknown or self.plants}; expected some of {list(PLANTS)}")
        if self.episodes < len(BEHAVIOR) or self.eval_episodes < 1 or self.workers < 1 or self.k < 1:
            raise ValueError("episodes must cover every behavior policy; eval_episodes, workers and k >= 1")
        if self.plant_damping < 0 or self.plant_friction < 0:
            raise ValueError("plant_damping and plant_friction must be >= 0")
        object.__setattr__(self, "plants", tuple(self.plants))
        object.__setattr__(self, "dynamics_hidden", tuple(int(h) for h in self.dynamics_hidden))
        self.dynamics()        # validates the dynamics settings

    def dynamics(self):
        return DynamicsConfig(kind=self.dynamics_kind, hidden=self.dynamics_hidden, epochs=self.dynamics_epochs,
                              val_fraction=self.val_fraction, seed=self.seed)

    def scene(self, plant: str) -> dict:
        if plant == "nominal":
            return dataclasses.asdict(SceneConfig())
        return dataclasses.asdict(SceneConfig(arm_damping=self.plant_damping, arm_frictionloss=self.plant_friction))


def _plant_job(args: tuple) -> tuple[str, dict]:
    """Collect, learn the dynamics, state-match with both models, write the datasets."""
    cfg, plant, out = args

    seconds = {}
    t = time.perf_counter()
    traj = behavior_data(cfg.task, cfg.episodes, cfg.seed, cfg.k, SceneConfig(**cfg.scene(plant)))
    seconds["collect"] = time.perf_counter() - t
    t = time.perf_counter()
    data = transitions(traj)
    dyn = train_dynamics(data, cfg.dynamics())
    model_path = dyn.save(out / "dynamics" / plant)
    seconds["dynamics_train"] = time.perf_counter() - t
    val_eps = np.unique(data.episode[split_by_episode(data.episode, cfg.val_fraction, cfg.seed)])
    val = np.isin(data.episode, val_eps)
    controller = make_controller(ORIGINAL)
    dynamics_info = {"model": str(model_path), "best_epoch": dyn.history["best_epoch"],
                     "epochs_run": len(dyn.history["val"]), "train_loss": dyn.history["train"],
                     "val_loss": dyn.history["val"], "val_episodes": int(len(val_eps)),
                     "prediction_val": prediction_error(dyn, data.take(val)),
                     "prediction_val_known": _known_prediction_error(controller, data.take(val))}
    index, segs = segments_of(traj, cfg.k)
    gp, gR = true_goals(traj, index.start)
    common = np.isfinite(segs.q_next).all(-1)
    held_out = common & np.isin(traj.episode[index.start], val_eps)
    recovery, datasets, goals = {}, {}, {}
    for method, dynamics in (("known", None), ("learned", dyn)):
        t = time.perf_counter()
        res = invert("state_matching", segs, controller, dynamics=dynamics)
        seconds[f"invert_{method}"] = time.perf_counter() - t
        perr, oerr = goal_errors(res.goal_p, res.goal_R, gp, gR)
        recovery[method] = {**recovery_stats(perr[common], oerr[common], res.status[common]),
                            "held_out": recovery_stats(perr[held_out], oerr[held_out])}
        goals[method] = (res.goal_p, res.goal_R)
        datasets[method] = write_dataset(traj, controller, cfg.k, "state_matching", accept_best_fit(res),
                                         out / "datasets" / f"{method}-{plant}", cfg.task, {"dynamics": method})
    dp, do = goal_errors(*goals["learned"], *goals["known"])
    between = recovery_stats(dp[common], do[common])
    if cfg.logged:
        datasets["logged"] = write_logged_dataset(traj, cfg.k, out / "datasets" / f"logged-{plant}", cfg.task)
    return plant, {"dynamics": dynamics_info, "recovery": recovery, "learned_vs_known": between,
                   "datasets": datasets, "segments": int(len(segs)), "segments_compared": int(common.sum()),
                   "segments_held_out": int(held_out.sum()), "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def _known_prediction_error(controller, data) -> dict:
    """One-period prediction error of the Pinocchio model (the known model) on the same transitions."""
    return prediction_error(PinocchioDynamics(controller.model, controller.config.control_period), data)


def train_config(cfg: LearnedDynamicsConfig):
    return TrainConfig.for_task(cfg.task, algo=cfg.algo, steps=cfg.steps, seed=cfg.seed)


def run(cfg: LearnedDynamicsConfig, out: str | Path, progress: bool = True) -> dict:
    """Writes data sets, dynamics models, policies, ``result.json``, ``dynamics.png`` and
    ``learned_dynamics.png`` under ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bar = lambda total, desc: tqdm(total=total, desc=desc, disable=not progress, dynamic_ncols=True)  # noqa: E731
    t0 = time.perf_counter()
    plants: dict = {}
    with bar(len(cfg.plants), "collect + learn dynamics + invert") as b, \
            _pool(min(cfg.workers, len(cfg.plants))) as pool:
        for plant, info in pool.map(_plant_job, [(cfg, p, out) for p in cfg.plants]):
            plants[plant] = info
            b.update()
    t1 = time.perf_counter()
    tc = train_config(cfg).to_dict()
    jobs = [((p, m), h5, str(out / "models" / f"{m}-{p}"), tc, cfg.scene(p), cfg.eval_episodes, cfg.seed + 1000)
            for p in cfg.plants for m, h5 in plants[p]["datasets"].items()]
    with bar(len(jobs), f"train {cfg.algo} + evaluate") as b, _pool(min(cfg.workers, len(jobs))) as pool:
        for (p, m), score, seconds in pool.map(train_eval_job, jobs):
            plants[p].setdefault("scores", {})[m] = {**score, "train_s": round(seconds, 1)}
            b.update()
    t2 = time.perf_counter()
    result = {"task": cfg.task, "plants": {p: {**plants[p], "scene": cfg.scene(p)} for p in cfg.plants},
              "settings": {**dataclasses.asdict(cfg), "dynamics": cfg.dynamics().to_dict(), "train": tc},
              "seconds": {"collect_learn_invert": round(t1 - t0, 1), "train_evaluate": round(t2 - t1, 1),
                          "total": round(t2 - t0, 1)}}
    (out / "result.json").write_text(json.dumps(result, indent=1))
    plot_dynamics(result, out / "dynamics.png")
    plot(result, out / "learned_dynamics.png")
    return result


def summary_json(result: dict) -> dict:
    return {"task": result["task"], "plants": {
        p: {"methods": {m: {**{k: r[k] for k in ("pos_median_m", "rot_median_rad", "recovered")},
                            "score": v["scores"][m]["mean"]} for m, r in v["recovery"].items()},
            "logged": v["scores"]["logged"]["mean"] if "logged" in v["scores"] else None,
            "dynamics_val_qd_rms": v["dynamics"]["prediction_val"]["qd_rms"]}
        for p, v in result["plants"].items()}}


def table_rows(result: dict) -> tuple[list, list]:
    score = lambda s: f"{s['mean']:6.1f} +- {s['se']:4.1f}  ({pct(s['success_rate'])})"  # noqa: E731
    rows = []
    for p, v in result["plants"].items():
        for m, r in v["recovery"].items():
            rows.append([p, m, f"{1e3 * r['pos_median_m']:.2f} / {1e3 * r['pos_p95_m']:.2f}",
                         f"{r['rot_median_rad']:.4f} / {r['rot_p95_rad']:.4f}", pct(r["recovered"]),
                         pct(r["held_out"]["recovered"]), score(v["scores"][m])])
        if "logged" in v["scores"]:
            rows.append([p, "(true goals)", "", "", "", "", score(v["scores"]["logged"])])
    return rows, ["plant", "state matching dynamics", "goal position error mm, median / p95",
                  "goal rotation error rad, median / p95", "recovered", "recovered, held-out episodes",
                  "normalized score"]


def dynamics_rows(result: dict) -> tuple[list, list]:
    rows = [[p, f"{v['dynamics']['best_epoch']} / {v['dynamics']['epochs_run']}",
             f"{v['dynamics']['val_loss'][v['dynamics']['best_epoch'] - 1]:.2e}",
             f"{v['dynamics']['prediction_val']['q_rms']:.2e}", f"{v['dynamics']['prediction_val']['qd_rms']:.2e}",
             f"{v['dynamics']['prediction_val_known']['q_rms']:.2e}",
             f"{v['dynamics']['prediction_val_known']['qd_rms']:.2e}",
             f"{1e3 * v['learned_vs_known']['pos_median_m']:.2f}"] for p, v in result["plants"].items()]
    return rows, ["plant", "best epoch / run", "val loss", "learned q rms (rad)", "learned qd rms (rad/s)",
                  "known q rms", "known qd rms", "learned vs known goal, median mm"]


def plot_dynamics(result: dict, path: Path) -> Path:
    """Training and validation loss of each plant's dynamics model, best epoch marked."""
    plt = plotting.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (p, v) in enumerate(result["plants"].items()):
        d = v["dynamics"]
        epochs = np.arange(1, len(d["val_loss"]) + 1)
        ax.semilogy(epochs, d["train_loss"], color=f"C{i}", lw=0.8, ls="--", label=f"{p}: train")
        ax.semilogy(epochs, d["val_loss"], color=f"C{i}", label=f"{p}: validation (held-out episodes)")
        ax.axvline(d["best_epoch"], color=f"C{i}", lw=0.6, ls=":")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE of the standardized one-period delta")
    ax.legend(fontsize=7)
    ax.set_title(f"{result['task']}: learned dynamics (dotted: best checkpoint kept)", fontsize=9)
    return plotting.save(fig, path)


def plot(result: dict, path: Path) -> Path:
    """Per plant: median goal position error (p95 as error bar top) and normalized score per method."""
    plt = plotting.pyplot()
    plants = list(result["plants"])
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = np.arange(len(plants))
    methods = list(result["plants"][plants[0]]["scores"])
    width = 0.8 / len(methods)
    for i, m in enumerate(methods):
        dx = (i - (len(methods) - 1) / 2) * width
        s = [result["plants"][p]["scores"][m] for p in plants]
        a1.bar(x + dx, [v["mean"] for v in s], width, yerr=[v["se"] for v in s], capsize=2, label=m)
        if m in result["plants"][plants[0]]["recovery"]:
            r = [result["plants"][p]["recovery"][m] for p in plants]
            med = np.array([1e3 * v["pos_median_m"] for v in r])
            a0.bar(x + dx, med, width, yerr=[np.zeros_like(med), [1e3 * v["pos_p95_m"] - mm for v, mm in zip(r, med)]],
                   capsize=2, label=m)
    a0.set_yscale("log")
    a0.set_ylabel("goal position error (mm), median and p95")
    a1.set_ylabel("normalized score")
    a1.axhline(100, color="k", lw=0.6, ls="--")
    for ax in (a0, a1):
        ax.set_xticks(x, plants)
        ax.legend(fontsize=7)
    fig.suptitle(f"{result['task']}: state matching with the known (Pinocchio) or a learned dynamics model",
                 fontsize=9)
    return plotting.save(fig, path)
