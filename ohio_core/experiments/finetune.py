"""The fine-tuning experiment: does online fine-tuning stay safe for OHIO and for the flat policy?

Per domain, offline models are trained (or reused) on a small behavior dataset with the building
blocks of the other experiments, then each is fine-tuned online with the same budget
(``learning.finetune``: same number of online steps and updates, same seeds):

- arm (``task``, default reach): behavior data of the scripted expert and its noisy versions under
  the original OSC (``experiments.mismatch.behavior_data``). OHIO relabels it for each controller in
  ``arm_controllers`` with that controller's exact inverse (``experiments.configs.inverse_methods``:
  the OSC's closed form, the QP's KKT conditions) and deploys through it; the flat policy keeps the
  logged 50 Hz torques (``pipeline.baselines.flat_transitions``).
- routing (``regions``-region grid city): rollouts of ``routing_behavior`` (``routing.experiment.
  behavior_log``: a goal-level heuristic through the LP, the greedy dispatcher's flows directly); OHIO's
  distributions recovered by the closed-form inverse, the flat policy's per-edge flows
  (``routing.datasets.relabel_routing``), rewards per vehicle, as in the routing experiment; OHIO's
  goal policy on region-shared networks (``routing.region_net``), the flat policy on MLPs.

Reported per method: the normalized score at the start, its minimum over the curve, the final
score, and the violation counts over all exploration steps (definitions in ``learning.violations``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from controllers.base import make_controller
from ohio_core.experiments.configs import ORIGINAL, deployment_configs, inverse_methods, inversion_controller_config
from ohio_core.experiments.mismatch import MismatchConfig, behavior_data
from ohio_core.learning.algos import TrainConfig
from ohio_core.learning.finetune import ONLINE_ALGOS, FinetuneConfig, finetune
from ohio_core.learning.finetune_plot import plot_curve
from ohio_core.learning.train import train
from ohio_core.pipeline.baselines import flat_transitions
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.relabel import relabel
from ohio_core.routing.datasets import relabel_routing, reward_scale
from ohio_core.routing.experiment import behavior_log, routing_envs
from ohio_core.routing.policies import POLICIES
from ohio_core.routing.scenario import synthetic

DOMAINS = ("arm", "routing")
#: OHIO's routing goal policy on region-shared networks, as in the routing experiment (flat: MLPs)
ROUTING_OHIO_NETWORK = {"network": "region", "hidden": [32]}     # as JSON keeps it (offline_key)


@dataclass(frozen=True)
class FinetuneExperimentConfig:
    """Settings of ``run`` (validated on construction)."""

    domain: str = "both"                       # arm, routing or both
    algo: str = "iql"                          # offline training and fine-tuning
    steps: int = 3000                          # online steps per method
    eval_every: int = 500
    eval_episodes: int = 10
    online_ratio: float = 0.5                  # share of each mini-batch from the online transitions
    seed: int = 0
    task: str = "reach"
    arm_controllers: tuple = ("qp", "original")   # OHIO's controllers (names of experiments.configs)
    arm_episodes: int = 150                    # behavior episodes (expert, noisy0.1, noisy0.3)
    arm_offline_steps: int = 5000
    horizon: int | None = None                 # arm episode length in control periods (None: task default)
    regions: int = 16
    routing_behavior: str = "demand_proportional"
    routing_episodes: int = 50
    routing_offline_steps: int = 5000

    def __post_init__(self):
        if self.domain not in (*DOMAINS, "both"):
            raise ValueError(f"domain must be arm, routing or both, got {self.domain!r}")
        if self.algo not in ONLINE_ALGOS:
            raise ValueError(f"algo must be one of {list(ONLINE_ALGOS)} (online fine-tuning), got {self.algo!r}")
        if self.task not in ("reach", "lift"):
            raise ValueError(f"task must be reach or lift, got {self.task!r}")
        if not self.arm_controllers:
            raise ValueError("arm_controllers must name at least one controller config")
        deployment_configs(self.arm_controllers)
        if self.routing_behavior not in POLICIES:
            raise ValueError(f"unknown routing behavior {self.routing_behavior!r}; known: {sorted(POLICIES)}")
        for name in ("steps", "eval_every", "eval_episodes", "arm_episodes", "arm_offline_steps", "regions",
                     "routing_episodes", "routing_offline_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.arm_episodes < 3:
            raise ValueError(f"arm_episodes must cover the three behavior policies, got {self.arm_episodes}")
        if self.regions < 2:
            raise ValueError(f"regions must be >= 2, got {self.regions}")
        self.finetune_config()

    @property
    def domains(self) -> tuple:
        return DOMAINS if self.domain == "both" else (self.domain,)

    def finetune_config(self):
        return FinetuneConfig(steps=self.steps, algo=self.algo, eval_every=self.eval_every,
                              eval_episodes=self.eval_episodes, seed=self.seed, horizon=self.horizon,
                              online_ratio=self.online_ratio)


# ------------------------------------------------------------------------------ offline models

def _reusable(model: Path, key: dict) -> bool:
    """A model from an earlier run with the same offline settings."""
    sidecar = model.with_suffix(".json")
    return model.with_suffix(".d3").is_file() and sidecar.is_file() and \
        json.loads(sidecar.read_text()).get("offline_key") == key


def _train(h5: Path, cfg: FinetuneExperimentConfig, steps: int, model: Path, extra: dict, **network) -> Path:
    """Offline ``cfg.algo`` for ``steps`` updates on ``h5`` (``network``: ``TrainConfig`` network settings)."""
    buffer, meta = load_dataset(h5)
    tc = TrainConfig(algo=cfg.algo, steps=steps, seed=cfg.seed, **network)
    return train(buffer, meta, tc, model, progress=False, extra_meta={"dataset": str(h5), **extra}).model


def arm_models(cfg: FinetuneExperimentConfig, out: Path, progress: bool = True) -> dict[str, Path]:
    """``{method: model}``: ``ohio_<controller>`` per controller and ``flat``, trained on one dataset."""
    configs = deployment_configs(cfg.arm_controllers)
    models = {f"ohio_{c}": out / "models" / f"ohio_{c}" for c in configs} | {"flat": out / "models" / "flat"}
    key = {"task": cfg.task, "episodes": cfg.arm_episodes, "algo": cfg.algo, "steps": cfg.arm_offline_steps,
           "seed": cfg.seed}
    todo = {m: p for m, p in models.items() if not _reusable(p, {**key, "method": m})}
    if not todo:
        if progress:
            print(f"[finetune] arm: reusing the offline models in {out / 'models'}", flush=True)
        return {m: p.with_suffix(".d3") for m, p in models.items()}
    mcfg = MismatchConfig(task=cfg.task, episodes=cfg.arm_episodes, seed=cfg.seed, workers=1)
    traj = behavior_data(mcfg, out, progress)
    k = mcfg.k
    for method, model in todo.items():
        t0 = time.perf_counter()
        if method == "flat":
            data = flat_transitions(traj, make_controller(ORIGINAL).tau_max)
            meta = {"task": cfg.task, "level": "torque", "k": 1, "controller": None, "method": "flat"}
        else:
            config = configs[method.removeprefix("ohio_")]
            inv = inverse_methods(config)["ohio_analytical"]
            data = relabel(traj, make_controller(inversion_controller_config(config, inv)), k, inv.split("@")[0],
                           max_residual=float("inf"), workers=1)
            meta = {"task": cfg.task, "level": "goal", "k": k, "controller": config.to_dict(), "method": method,
                    "inverse": inv}
        h5, _ = save_dataset(data, out / "datasets" / method, meta)
        _train(h5, cfg, cfg.arm_offline_steps, model, {"offline_key": {**key, "method": method}})
        if progress:
            print(f"[finetune] arm: offline {method} on {len(data.rewards)} transitions "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {m: p.with_suffix(".d3") for m, p in models.items()}


def routing_models(cfg: FinetuneExperimentConfig, out: Path, progress: bool = True) -> dict[str, Path]:
    """``{"ohio": model, "flat": model}`` trained on rollouts of ``cfg.routing_behavior``."""
    city = {"regions": cfg.regions, "layout": "grid", "horizon": 60, "seed": cfg.seed}
    models = {m: out / "models" / m for m in ("ohio", "flat")}
    key = {**city, "behavior": cfg.routing_behavior, "episodes": cfg.routing_episodes, "algo": cfg.algo,
           "steps": cfg.routing_offline_steps, "ohio_network": ROUTING_OHIO_NETWORK}
    todo = {m: p for m, p in models.items() if not _reusable(p, {**key, "method": m})}
    if not todo:
        if progress:
            print(f"[finetune] routing: reusing the offline models in {out / 'models'}", flush=True)
        return {m: p.with_suffix(".d3") for m, p in models.items()}
    scenario = synthetic(cfg.regions, layout=city["layout"], horizon=city["horizon"], seed=city["seed"])
    log = behavior_log(cfg.routing_behavior, scenario, *routing_envs(scenario), cfg.routing_episodes, cfg.seed)
    scale = reward_scale(scenario)
    for method, model in todo.items():
        t0 = time.perf_counter()
        data = relabel_routing(log, scenario.travel_time, method, reward_scale=scale)
        h5, _ = save_dataset(data, out / "datasets" / method,
                             {"task": "routing", "level": "goal" if method == "ohio" else "flows", "k": 1,
                              "regions": scenario.regions, "method": method})
        _train(h5, cfg, cfg.routing_offline_steps, model,
               {"offline_key": {**key, "method": method}, "scenario": city, "reward_scale": scale},
               **(ROUTING_OHIO_NETWORK if method == "ohio" else {}))
        if progress:
            print(f"[finetune] routing: offline {method} on {len(data.rewards)} transitions "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return {m: p.with_suffix(".d3") for m, p in models.items()}


# ------------------------------------------------------------------------------------ the run

def summarize(curve: list, totals: dict) -> dict:
    """Start, minimum and final score of a curve, and its violation totals."""
    means = [p["score"]["mean"] for p in curve]
    return {"start": means[0], "start_se": curve[0]["score"]["se"], "min": float(np.min(means)),
            "final": means[-1], "final_se": curve[-1]["score"]["se"], "violations": totals["violations"],
            "worst": totals["worst"],
            "periods": totals["periods"], "seconds": totals["seconds"]}


def run(config: FinetuneExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """The experiment; writes ``out/result.json`` and ``out/DOMAIN.png`` (curves of every method)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    fcfg = config.finetune_config()
    result = {"domains": {}, "curves": {}, "settings": {**asdict(config), "finetune": asdict(fcfg)}}
    for domain in config.domains:
        where = out / domain
        t0 = time.perf_counter()
        models = (arm_models if domain == "arm" else routing_models)(config, where, progress)
        offline_s = time.perf_counter() - t0
        rows, curves = {}, {}
        for method, model in models.items():
            res = finetune(model, fcfg, where / "finetune" / method, progress=progress, label=f"{domain}/{method}")
            rows[method] = summarize(res.curve, res.totals)
            curves[method] = res.curve
        unit = "control periods" if domain == "arm" else "steps"
        title = f"{config.task if domain == 'arm' else f'routing, {config.regions} regions'}: online fine-tuning " \
                f"({config.algo}, {config.steps} steps)"
        plot_curve(curves, out / f"{domain}.png", title, unit)
        result["domains"][domain] = rows
        result["curves"][domain] = curves
        result.setdefault("offline_seconds", {})[domain] = round(offline_s, 1)
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    return result


def _kinds(v: dict) -> str:
    return ", ".join(f"{k} {n}" for k, n in v.items() if k != "any")


WORST_FORMAT = {"joint_position_rad": "q {:.3f} rad", "joint_velocity_ratio": "qd {:.2f}x",
                "torque_ratio": "tau {:.2f}x", "over_idle_vehicles": "over idle {:.0f} veh",
                "negative_flow_vehicles": "negative {:.0f} veh"}


def _worst(w: dict) -> str:
    return ", ".join(WORST_FORMAT[k].format(v) for k, v in w.items() if k in WORST_FORMAT)


def table_rows(result: dict) -> tuple[list, list]:
    rows = []
    for domain, methods in result["domains"].items():
        for m, s in methods.items():
            rows.append([domain, m, f"{s['start']:6.1f} +- {s['start_se']:4.1f}", f"{s['min']:6.1f}",
                         f"{s['final']:6.1f} +- {s['final_se']:4.1f}", f"{s['violations']['any']} / {s['periods']}",
                         _kinds(s["violations"]), _worst(s["worst"])])
    return rows, ["domain", "method", "start score", "min score", "final score", "violations / steps", "by kind",
                  "worst (beyond limit / of limit)"]


def summary_json(result: dict) -> dict:
    """The one-line JSON of ``ohio experiment finetune --json``."""
    return {"domains": {d: {m: {k: s[k] for k in ("start", "min", "final", "violations", "periods", "worst")}
                            for m, s in v.items()} for d, v in result["domains"].items()}}
