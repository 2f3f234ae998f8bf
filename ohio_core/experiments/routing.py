"""The routing experiment: OHIO against the flat end-to-end policy and the behavior heuristics.

For a city (``envs.routing.scenario.synthetic``), per behavior dataset (heuristics run through the
low level they act on: the LP for distribution policies, directly for the greedy dispatcher):

1. roll out ``episodes`` episodes of the behavior policy (``envs.routing.env.rollout``);
2. relabel: OHIO recovers the desired distribution from the logged flows
   (``pipeline.routing``); the flat baseline keeps the per-edge flows;
3. train both with d3rlpy (``learning``; OHIO's goal policy on region-shared networks,
   ``learning.region_net``, unless ``network="mlp"``; the flat policy's n^2 actions on MLPs) and
   evaluate them on the same ``eval_episodes`` seeds as
   every behavior policy: OHIO through the LP (``RoutingEnv``), flat through the feasibility
   projection (``FlatRoutingEnv``);
4. normalized score = 100 (R - R_random) / (R_best - R_random), R_random the random-distribution
   policy's mean return and R_best the best behavior heuristic's, on the evaluation seeds.

With ``mixed`` (the default) both methods are also trained on the behavior datasets pooled into one
(dataset ``mixed``): data in which some actions are better than others, which offline RL can
improve on, where each single-heuristic dataset holds one behavior only.

The scaling study repeats OHIO on the demand-proportional data for growing cities and reports
the inverse time, the training time (``scaling_steps`` updates: a region-shared network sees every
region in each sample, and one update costs time linear in the regions) and the score, normalized
there between the random distribution policy (0) and the demand-proportional behavior itself
(100). ``datasets=False`` runs the scaling study alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

BEHAVIORS = ("demand_proportional", "random_distribution", "greedy_dispatcher")
REFERENCE_RANDOM = "random_distribution"
METHODS = ("ohio", "flat")
MIXED = "mixed"                             # the dataset pooling every behavior dataset


@dataclass(frozen=True)
class RoutingExperimentConfig:
    """Settings of ``run`` (validated on construction)."""

    regions: int = 16
    layout: str = "grid"
    horizon: int = 60
    episodes: int = 100                      # per behavior dataset
    behaviors: tuple = BEHAVIORS
    algo: str = "iql"
    steps: int = 10000
    eval_episodes: int = 10
    seed: int = 0
    scaling: tuple = ()                      # region counts of the scaling study (OHIO only)
    mixed: bool = True                       # also train on the pooled behavior datasets
    scaling_episodes: int = 100
    scaling_steps: int = 2000                # updates per scaling city (each covers every region)
    datasets: bool = True                    # the per-dataset comparison (False: the scaling study only)
    scaling_eval_episodes: int = 5
    flat_max_regions: int = 40               # the flat policy's n^2 actions: not trained beyond this
    network: str = "region"                  # OHIO's networks: "region" (shared by all regions) or "mlp"
    region_hidden: int = 32                  # width of the region network
    temperature: float = 10.0                # IQL's advantage temperature (TrainConfig.temperature)

    @property
    def eval_seed(self) -> int:
        """Seed of the evaluation episodes, apart from the behavior data's ``seed``."""
        return self.seed + 1000

    def train_config(self, method: str):
        """OHIO's (goal level) or the flat policy's training settings; flat is an MLP (n^2 actions)."""
        from ohio_core.learning.algos import TrainConfig

        common = {"algo": self.algo, "steps": self.steps, "seed": self.seed, "temperature": self.temperature}
        if method != "ohio":
            return TrainConfig(**common)
        width = {"hidden": (self.region_hidden,)} if self.network == "region" else {}
        return TrainConfig(**common, network=self.network, **width)

    def __post_init__(self):
        from ohio_core.learning.algos import ALGOS
        from ohio_core.policies.routing import POLICIES

        unknown = [b for b in self.behaviors if b not in POLICIES]
        if unknown:
            raise ValueError(f"unknown behavior policies {unknown}; known: {sorted(POLICIES)}")
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; expected one of {list(ALGOS)}")
        for name in ("regions", "horizon", "episodes", "steps", "eval_episodes", "scaling_episodes", "scaling_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.region_hidden) < 1:
            raise ValueError(f"region_hidden must be >= 1, got {self.region_hidden}")
        self.train_config("ohio")            # TrainConfig checks network and temperature
        if any(int(r) < 2 for r in self.scaling):
            raise ValueError(f"scaling region counts must be >= 2, got {list(self.scaling)}")
        if not self.datasets and not self.scaling:
            raise ValueError("nothing to run: no datasets and no scaling region counts")


@dataclass
class PolicyScore:
    returns: list
    normalized: list = field(default_factory=list)

    def summary(self) -> dict:
        n = np.asarray(self.normalized, float)
        se = float(np.std(n, ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0
        return {"mean": float(n.mean()), "se": se, "return_mean": float(np.mean(self.returns))}


def _city(config: RoutingExperimentConfig, regions: int):
    from ohio_core.envs.routing.scenario import synthetic

    return synthetic(regions, layout=config.layout, horizon=config.horizon, seed=config.seed)


def _envs(scenario):
    from controllers.rebalancing import RebalancingConfig, Rebalancer
    from ohio_core.envs.routing.env import FlatRoutingEnv, RoutingEnv

    return RoutingEnv(scenario, Rebalancer(RebalancingConfig())), FlatRoutingEnv(scenario)


def _returns(env, policy, episodes: int, seed: int) -> list:
    from ohio_core.envs.routing.env import rollout

    return [float(r) for r in rollout(env, policy, episodes, seed).returns()]


def _train(data, config: RoutingExperimentConfig, out: Path, name: str, level: str, scenario):
    """Fit ``config.algo`` on ``data``; the model is saved to ``out/name`` (d3 + sidecar, with the city's
    synthetic settings that ``learning.finetune.routing_scenario`` reads) and loaded back."""
    from ohio_core.learning.train import train
    from ohio_core.pipeline.dataset import load_dataset, save_dataset

    save_dataset(data, out / "datasets" / name, {"task": "routing", "level": level, "k": 1,
                                                  "regions": scenario.regions, "method": data.account["method"]})
    buffer, meta = load_dataset(out / "datasets" / name)
    tc = config.train_config("ohio" if level == "goal" else "flat")
    t0 = time.perf_counter()
    city = {"regions": scenario.regions, "layout": config.layout, "horizon": config.horizon, "seed": config.seed}
    res = train(buffer, meta, tc, out / "models" / name, progress=False, extra_meta={"scenario": city})
    from ohio_core.learning.policy import load_policy

    return load_policy(res.model), time.perf_counter() - t0


def _pooled(parts: list):
    """The relabeled behavior datasets as one (``pipeline.relabel.concat``), accounts kept per part."""
    from ohio_core.pipeline.relabel import concat

    data = concat(parts)
    data.account = {"method": parts[0].account["method"], "parts": [p.account for p in parts]}
    return data


def run(config: RoutingExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """The whole experiment; writes ``out/result.json`` and ``out/scores.png``; returns the result."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    result = _datasets(config, out, progress) if config.datasets else \
        {"datasets": {}, "references": {}, "accounts": {}, "train_seconds": {}, "scenario": {}}
    result["scaling"] = _scaling(config, out, progress)
    result.update({"config": asdict(config), "seconds": round(time.perf_counter() - t_start, 1)})
    (out / "result.json").write_text(json.dumps(result, indent=1, default=list))
    if result["datasets"]:
        plot_scores(result, out / "scores.png")
    return result


def _datasets(config: RoutingExperimentConfig, out: Path, progress: bool) -> dict:
    """Steps 1-4 of the module docstring on the ``config.regions`` city, per behavior dataset (and pooled)."""
    from ohio_core.envs.routing.env import rollout
    from ohio_core.pipeline.routing import ModelRoutingPolicy, relabel_routing, reward_scale
    from ohio_core.policies.routing import make_routing_policy

    scenario = _city(config, config.regions)
    env, flat_env = _envs(scenario)
    refs = {}
    for name in sorted(set(config.behaviors) | {REFERENCE_RANDOM}):
        pol = make_routing_policy(name, scenario)
        refs[name] = _returns(flat_env if pol.level == "flows" else env, pol, config.eval_episodes, config.eval_seed)
    r_random = float(np.mean(refs[REFERENCE_RANDOM]))
    r_best = max(float(np.mean(refs[b])) for b in config.behaviors)
    if r_best <= r_random:
        raise ValueError(f"the best behavior heuristic ({r_best:.1f}) does not beat the random distribution "
                         f"policy ({r_random:.1f}): no score scale")

    def norm(returns):
        return [100.0 * (r - r_random) / (r_best - r_random) for r in returns]

    n = scenario.regions
    idle_slice = env.layout.idle
    datasets, accounts, timings = {}, {}, {}
    relabeled = {m: [] for m in METHODS}

    def fit_and_score(name: str, data_by_method: dict) -> None:
        scores = {b: PolicyScore(refs[b], norm(refs[b])).summary() for b in config.behaviors}
        for method, data in data_by_method.items():
            level = "goal" if method == "ohio" else "flows"
            policy, seconds = _train(data, config, out, f"{name}_{method}", level, scenario)
            learned = ModelRoutingPolicy(policy, idle_slice, scenario.vehicles)
            returns = _returns(env if method == "ohio" else flat_env, learned, config.eval_episodes, config.eval_seed)
            scores[method] = PolicyScore(returns, norm(returns)).summary()
            accounts[f"{name}/{method}"] = data.account
            timings[f"{name}/{method}"] = round(seconds, 2)
            if progress:
                print(f"[routing] {name}/{method}: {scores[method]['mean']:.1f} +- {scores[method]['se']:.1f}",
                      flush=True)
        datasets[name] = scores

    for behavior in config.behaviors:
        pol = make_routing_policy(behavior, scenario)
        log = rollout(flat_env if pol.level == "flows" else env, pol, config.episodes, config.seed)
        log.meta["obs_layout"] = env.layout.as_list()
        data_by_method = {}
        for method in METHODS:
            if method == "flat" and n > config.flat_max_regions:
                continue
            data = relabel_routing(log, scenario.travel_time, method)
            data.rewards = data.rewards * reward_scale(scenario)
            data_by_method[method] = data
            relabeled[method].append(data)
        fit_and_score(behavior, data_by_method)
    if config.mixed and len(config.behaviors) > 1:
        fit_and_score(MIXED, {m: _pooled(parts) for m, parts in relabeled.items() if parts})
    return {"datasets": datasets,
            "references": {"random_return": r_random, "best_behavior_return": r_best,
                           "behavior_returns": {b: float(np.mean(v)) for b, v in refs.items()}},
            "accounts": accounts, "train_seconds": timings,
            "scenario": {"regions": n, "vehicles": int(scenario.vehicles), "horizon": scenario.horizon}}


def _scaling(config: RoutingExperimentConfig, out: Path, progress: bool) -> list:
    """OHIO on the demand-proportional data of each city of ``config.scaling`` (module docstring)."""
    from ohio_core.envs.routing.env import rollout
    from ohio_core.inverse.routing import desired_from_flows, invert_flows
    from ohio_core.pipeline.routing import ModelRoutingPolicy, relabel_routing, reward_scale
    from ohio_core.policies.routing import make_routing_policy

    scaling = []
    for regions in config.scaling:
        city = _city(config, int(regions))
        env_s, _ = _envs(city)
        pol = make_routing_policy("demand_proportional", city)
        log = rollout(env_s, pol, config.scaling_episodes, config.seed)
        log.meta["obs_layout"] = env_s.layout.as_list()
        t0 = time.perf_counter()
        desired_from_flows(log.idle, log.flows)
        closed_form_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        invert_flows(log.idle, log.flows, city.travel_time)
        inverse_s = time.perf_counter() - t0
        data = relabel_routing(log, city.travel_time, "ohio")
        data.rewards = data.rewards * reward_scale(city)
        policy, train_s = _train(data, replace(config, steps=config.scaling_steps), out / f"scaling_{regions}",
                                 "ohio", "goal", city)
        n_eval = min(config.eval_episodes, config.scaling_eval_episodes)
        ref_r = _returns(env_s, make_routing_policy(REFERENCE_RANDOM, city), n_eval, config.eval_seed)
        ref_b = _returns(env_s, pol, n_eval, config.eval_seed)
        got = _returns(env_s, ModelRoutingPolicy(policy, env_s.layout.idle, city.vehicles),
                       n_eval, config.eval_seed)
        span = np.mean(ref_b) - np.mean(ref_r)
        score = float(100.0 * (np.mean(got) - np.mean(ref_r)) / span) if span > 0 else float("nan")
        scaling.append({"regions": int(regions), "vehicles": int(city.vehicles), "transitions": int(len(log)),
                        "inverse_s": inverse_s, "closed_form_s": closed_form_s,
                        "inverse_per_transition_us": 1e6 * inverse_s / max(len(log), 1),
                        "train_s": train_s, "updates": config.scaling_steps, "ohio_score": score})
        if progress:
            print(f"[routing] scaling {regions} regions: inverse {inverse_s:.3f} s, train {train_s:.1f} s, "
                  f"OHIO {score:.1f}", flush=True)
    return scaling


def summary_json(result: dict) -> dict:
    """The one-line JSON of ``ohio experiment routing --json``."""
    return {"datasets": {d: {m: {"mean": s["mean"], "se": s["se"]} for m, s in v.items()}
                         for d, v in result["datasets"].items()},
            "scaling": [{k: row[k] for k in ("regions", "inverse_s", "train_s", "ohio_score")}
                        for row in result["scaling"]]}


def table_rows(result: dict) -> tuple[list, list]:
    datasets = list(result["datasets"])
    methods = []
    for v in result["datasets"].values():
        methods += [m for m in v if m not in methods]
    rows = [[m] + [f"{result['datasets'][d][m]['mean']:6.1f} +- {result['datasets'][d][m]['se']:4.1f}"
                   if m in result["datasets"][d] else "-" for d in datasets] for m in methods]
    return rows, ["method"] + [f"data: {d}" for d in datasets]


def plot_scores(result: dict, path: Path) -> Path | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    datasets = list(result["datasets"])
    methods = []
    for v in result["datasets"].values():
        methods += [m for m in v if m not in methods]
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(datasets), 3.6))
    width = 0.8 / max(len(methods), 1)
    for i, m in enumerate(methods):
        xs = [j + i * width for j, d in enumerate(datasets) if m in result["datasets"][d]]
        ys = [result["datasets"][d][m]["mean"] for d in datasets if m in result["datasets"][d]]
        es = [result["datasets"][d][m]["se"] for d in datasets if m in result["datasets"][d]]
        ax.bar(xs, ys, width, yerr=es, label=m, capsize=2)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(datasets))], datasets, fontsize=8)
    ax.axhline(100, color="k", lw=0.6, ls="--")
    ax.set_ylabel("normalized score")
    ax.set_title(f"routing, {result['scenario']['regions']} regions: policies trained on each dataset", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
