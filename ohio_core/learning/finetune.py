"""Online fine-tuning of an offline model in the simulator, with its score curve and constraint violations.

``finetune(model, config, out)`` loads a trained model (``learning.policy``), builds the environment
it was trained for and continues training with d3rlpy's ``fit_online``:

- Environment and encoding: the exact action and observation encoding of the offline data
  (``learning.online_env``).
- Replay: the offline dataset and the online transitions in two buffers; every mini-batch takes
  half of its samples from each (``d3rlpy.dataset.MixedReplayBuffer``, ``online_ratio``). One
  update per online step, after ``warmup`` steps. Exploration samples the algorithm's stochastic
  policy (``sample_action``: IQL's Gaussian, Cal-QL's tanh-Gaussian), unclipped.
- Algorithms: the model's own (IQL or Cal-QL; ``config.algo`` must name it, since weights do not
  carry over between them). Cal-QL's Monte-Carlo returns (the lower bound of its conservative
  term) are computed by d3rlpy from each sampled transition's episode rewards (discounted
  rewards-to-go, ``TorchMiniBatch.returns_to_go``); the datasets need no extra field.
- Curve: a point at step 0 and every ``eval_every`` online steps (and at the last step): the
  normalized score of the greedy policy on fixed seeds, and the constraint violations
  (``learning.violations``) of the online exploration steps since the previous point; plotted by
  ``learning.finetune_plot``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from controllers.rebalancing import Rebalancer, RebalancingConfig
from ohio_core import lazy
from ohio_core.learning.evaluate import evaluate
from ohio_core.learning.finetune_plot import plot_curve
from ohio_core.learning.online_env import domain_of, make_env, routing_scenario
from ohio_core.learning.policy import LEVEL_FLOWS, LEVEL_GOAL, Policy, PolicyMismatchError, load_policy, save_policy
from ohio_core.pipeline.dataset import load_dataset
from ohio_core.routing.datasets import ModelRoutingPolicy
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv, rollout
from ohio_core.routing.policies import make_routing_policy

ONLINE_ALGOS = ("iql", "calql")
#: the routing reference heuristics (0 = the first, 100 = the best of the others), as in the routing experiment
ROUTING_RANDOM, ROUTING_BEHAVIORS = "random_distribution", ("demand_proportional", "random_distribution",
                                                            "greedy_dispatcher")


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of ``finetune`` (validated on construction)."""

    steps: int = 3000                 # online env steps (one update each)
    algo: str | None = None           # None: the model's own; else must equal it
    eval_every: int = 500
    eval_episodes: int = 10
    seed: int = 0                     # exploration env, d3rlpy; evaluation uses seed + 1000
    online_ratio: float = 0.5         # share of each mini-batch drawn from the online transitions
    warmup: int = 50                  # online steps before the first update
    threads: int = 1
    horizon: int | None = None        # arm episodes in control periods (None: the task's default)

    def __post_init__(self):
        if self.algo is not None and self.algo not in ONLINE_ALGOS:
            raise ValueError(f"online fine-tuning supports {list(ONLINE_ALGOS)}, got {self.algo!r}")
        for name in ("steps", "eval_every", "eval_episodes", "threads"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.horizon is not None and self.horizon < 5:
            raise ValueError(f"FinetuneConfig.horizon must be >= 5 control periods, got {self.horizon}")
        if self.warmup < 1:
            raise ValueError(f"FinetuneConfig.warmup must be >= 1, got {self.warmup}")
        if not 0.0 < self.online_ratio < 1.0:
            raise ValueError(f"FinetuneConfig.online_ratio must be in (0, 1), got {self.online_ratio}")

    @property
    def eval_seed(self) -> int:
        return self.seed + 1000

    def eval_steps(self) -> list[int]:
        """Online steps at which the curve has a point: 0, eval_every, 2 eval_every, ..., steps."""
        return sorted(set(range(0, self.steps, self.eval_every)) | {self.steps})


# ---------------------------------------------------------------------------- offline dataset

def dataset_path(policy: Policy, dataset: str | Path | None) -> Path:
    """The offline dataset: ``dataset``, else the model's ``meta["dataset"]``, else the experiments'
    convention ``<out>/datasets/NAME.h5`` beside ``<out>/models/NAME.d3``."""
    if dataset is not None:
        return Path(dataset)
    if policy.meta.get("dataset"):
        return Path(policy.meta["dataset"])
    if policy.path is not None:
        guess = policy.path.parent.parent / "datasets" / policy.path.with_suffix(".h5").name
        if guess.is_file():
            return guess
    raise FileNotFoundError(f"model {policy.path} records no offline dataset: pass it (--dataset)")


# ---------------------------------------------------------------------------------- evaluation

class Scorer:
    """Normalized score of a policy's greedy actions on fixed seeds, as the offline evaluations do:
    arm ``learning.evaluate`` (0 = random high-level actions, 100 = scripted expert); routing the
    routing experiment (0 = random distributions, 100 = the best behavior heuristic)."""

    def __init__(self, policy: Policy, episodes: int, seed: int, horizon: int | None = None):
        self.policy, self.episodes, self.seed, self.horizon = policy, episodes, seed, horizon
        self.domain = domain_of(policy.task)
        if self.domain == "routing":
            self._routing_refs()

    def _routing_refs(self) -> None:
        scenario = routing_scenario(self.policy.meta)
        self.env = RoutingEnv(scenario, Rebalancer(RebalancingConfig()))
        self.flat_env = FlatRoutingEnv(scenario)
        refs = {}
        for name in ROUTING_BEHAVIORS:
            pol = make_routing_policy(name, scenario)
            env = self.flat_env if pol.level == LEVEL_FLOWS else self.env
            refs[name] = float(rollout(env, pol, self.episodes, self.seed).returns().mean())
        self.r_random, self.r_best = refs[ROUTING_RANDOM], max(refs.values())
        self.reference = {"random_return": self.r_random, "best_behavior_return": self.r_best,
                          "behavior_returns": refs}

    def score(self, algo) -> dict:
        """{mean, se, return_mean} of the greedy policy of ``algo`` (the model being trained)."""
        policy = Policy(algo, self.policy.meta, self.policy.path)
        if self.domain == "arm":
            s = evaluate(policy, episodes=self.episodes, seed=self.seed, horizon=self.horizon).summary
            return {"mean": s["mean"], "se": s["se"], "return_mean": s["return_mean"],
                    "success_rate": s["success_rate"]}

        env = self.env if policy.level == LEVEL_GOAL else self.flat_env
        returns = rollout(env, ModelRoutingPolicy(policy, env.layout.idle, env.scenario.vehicles), self.episodes,
                          self.seed).returns()
        n = 100.0 * (returns - self.r_random) / (self.r_best - self.r_random)
        se = float(np.std(n, ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0
        return {"mean": float(n.mean()), "se": se, "return_mean": float(returns.mean())}


# ------------------------------------------------------------------------------------ the loop

@dataclass
class FinetuneResult:
    model: Path
    plot: Path
    curve: list            # per point: step, score {mean, se, ...}, violations since the last point, periods
    totals: dict           # violations over all exploration steps, periods, seconds
    meta: dict

    def to_dict(self) -> dict:
        return {"model": str(self.model), "plot": str(self.plot), "curve": self.curve, "totals": self.totals,
                "meta": self.meta}


def model_algo(policy: Policy) -> str:
    return str((policy.meta.get("train") or {}).get("algo", ""))


def finetune(model: str | Path, config: FinetuneConfig, out: str | Path, dataset: str | Path | None = None,
             progress: bool = True, label: str | None = None) -> FinetuneResult:
    """Fine-tune ``model`` online (module docstring); writes ``out/model.d3`` (+ sidecar),
    ``out/curve.png`` and ``out/result.json``."""
    torch, d3rlpy = lazy.torch(), lazy.d3rlpy()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    policy = load_policy(model)
    algo_name = model_algo(policy)
    if algo_name not in ONLINE_ALGOS:
        raise ValueError(f"model {policy.path} was trained with {algo_name!r}; online fine-tuning needs a model "
                         f"trained with one of {list(ONLINE_ALGOS)} (ohio train --algo iql|calql)")
    if config.algo is not None and config.algo != algo_name:
        raise ValueError(f"model {policy.path} was trained with {algo_name!r}, not {config.algo!r}: fine-tuning "
                         f"continues the model's own algorithm (train the offline model with --algo {config.algo})")
    offline, offline_meta = load_dataset(dataset_path(policy, dataset))
    if int(offline_meta["action_dim"]) != policy.action_dim:
        raise PolicyMismatchError(f"dataset {dataset_path(policy, dataset)} holds actions of size "
                                  f"{offline_meta['action_dim']}, model {policy.path} acts with {policy.action_dim}")
    label = label or f"{policy.task}/{policy.level}"
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    try:
        d3rlpy.seed(config.seed)
        algo = policy.algo
        env = make_env(policy, config.seed, config.horizon)
        online = d3rlpy.dataset.ReplayBuffer(d3rlpy.dataset.InfiniteBuffer(), env=env,
                                             action_space=d3rlpy.constants.ActionSpace.CONTINUOUS,
                                             action_size=policy.action_dim)
        buffer = d3rlpy.dataset.MixedReplayBuffer(online, offline, secondary_mix_ratio=1.0 - config.online_ratio)
        scorer = Scorer(policy, config.eval_episodes, config.eval_seed, config.horizon)
        at = set(config.eval_steps())
        curve = [_point(0, scorer.score(algo), *env.take_counts())]
        if progress:
            _print_point(label, curve[-1])

        def callback(algo_, epoch, step):
            if step in at:
                curve.append(_point(step, scorer.score(algo_), *env.take_counts()))
                if progress:
                    _print_point(label, curve[-1])

        algo.fit_online(env, buffer, n_steps=config.steps, n_steps_per_epoch=config.steps,
                        update_start_step=config.warmup, logger_adapter=d3rlpy.logging.NoopAdapterFactory(),
                        show_progress=False, with_timestamp=False, callback=callback,
                        experiment_name=f"ohio-finetune-{algo_name}")
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    totals = {"violations": {k: int(sum(p["violations"][k] for p in curve)) for k in curve[0]["violations"]},
              "periods": int(sum(p["periods"] for p in curve)), "seconds": round(seconds, 1),
              "worst": {k: max(p["worst"].get(k, 0.0) for p in curve)
                        for k in sorted({k for p in curve for k in p["worst"]})},
              "online_transitions": int(online.transition_count), "offline_transitions": int(offline.transition_count)}
    meta = {k: v for k, v in policy.meta.items() if k != "format"}
    meta["finetune"] = {**asdict(config), "algo": algo_name, "from_model": str(policy.path),
                        "dataset": str(dataset_path(policy, dataset)), "totals": totals}
    d3, _ = save_policy(algo, meta, out / "model")
    plot = plot_curve(curve, out / "curve.png", f"{label}: online fine-tuning ({algo_name})",
                      "control periods" if domain_of(policy.task) == "arm" else "steps")
    result = FinetuneResult(d3, plot, curve, totals, {"task": policy.task, "level": policy.level, "algo": algo_name,
                                                      "reference": getattr(scorer, "reference", None),
                                                      "city": _city(env)})
    (out / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def _city(env) -> dict | None:
    """The routing city the model ran in (name, regions, fleet, horizon); None for the arm."""
    if env.domain != "routing":
        return None
    s = env.inner.scenario
    return {"name": s.name, "regions": int(s.regions), "vehicles": int(s.vehicles), "horizon": int(s.horizon)}


def _point(step: int, score: dict, violations: dict, periods: int, worst: dict) -> dict:
    return {"step": int(step), "score": score, "violations": violations, "periods": int(periods), "worst": worst}


def _print_point(label: str, p: dict) -> None:
    print(f"[finetune] {label} step {p['step']}: score {p['score']['mean']:.1f} +- {p['score']['se']:.1f}, "
          f"violations {p['violations']['any']} of {p['periods']}", flush=True)
