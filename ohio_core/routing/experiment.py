"""The routing experiment: OHIO against the flat end-to-end policy and the behavior heuristics.

For a city (``routing.city.CitySpec``: synthetic, or a scenario file in the public AMoD format with
its requests scaled by ``demand_scale`` and its fleet set by ``vehicles``), per behavior dataset
(heuristics run through the low level they act on: the LP for distribution policies, directly for
the greedy dispatcher):

1. roll out ``episodes`` episodes of the behavior policy (``routing.env.rollout``);
2. relabel: OHIO recovers the desired distribution from the logged flows
   (``routing.datasets``); the flat baseline keeps the per-edge flows;
3. train both with d3rlpy (``learning``; OHIO's goal policy on region-shared networks,
   ``routing.region_net``, unless ``network="mlp"``; the flat policy's n^2 actions on MLPs) and
   evaluate them on the same ``eval_episodes`` seeds as
   every behavior policy: OHIO through the LP (``RoutingEnv``), flat through the feasibility
   projection (``FlatRoutingEnv``);
4. normalized score = 100 (R - R_random) / (R_best - R_random), R_random the random-distribution
   policy's mean return and R_best the best behavior heuristic's, on the evaluation seeds.

With ``mixed`` (the default) both methods are also trained on the behavior datasets pooled into one
(dataset ``mixed``): data in which some actions are better than others, which offline RL can
improve on, where each single-heuristic dataset holds one behavior only.

The scaling study repeats both methods on one behavior's data (``scaling_behavior``: by default the
greedy dispatcher, the best heuristic at 16 regions; ``mixed``: the behavior datasets pooled) for
growing cities. It reports the inverse time, the training time (``scaling_steps`` updates: a
region-shared network sees every region in each sample, and one update costs time linear in the
regions) and the scores on the datasets' scale (0 = the random distribution policy, 100 = the best
behavior heuristic in that city). The flat policy is trained up to ``flat_max_regions`` regions
(n^2 actions). ``datasets=False`` runs the scaling study alone.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from controllers.rebalancing import Rebalancer, RebalancingConfig
from ohio_core import plotting
from ohio_core.learning.algos import ALGOS, TrainConfig
from ohio_core.learning.policy import load_policy
from ohio_core.learning.train import train
from ohio_core.pipeline.dataset import load_dataset, save_dataset
from ohio_core.pipeline.relabel import concat
from ohio_core.routing.city import CitySpec, check_formulation
from ohio_core.routing.datasets import ModelRoutingPolicy, relabel_routing, reward_scale
from ohio_core.routing.env import FlatRoutingEnv, RoutingEnv, rollout
from ohio_core.routing.inverse import desired_from_flows, invert_flows
from ohio_core.routing.policies import POLICIES, make_routing_policy

BEHAVIORS = ("demand_proportional", "random_distribution", "greedy_dispatcher")
REFERENCE_RANDOM = "random_distribution"
METHODS = ("ohio", "flat")
MIXED = "mixed"                             # the dataset pooling every behavior dataset


class NoScoreScale(ValueError):
    """The best behavior heuristic does not beat the random distribution policy: scores are undefined."""


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
    scaling: tuple = ()                      # region counts of the scaling study
    mixed: bool = True                       # also train on the pooled behavior datasets
    scaling_episodes: int = 100
    scaling_steps: int = 2000                # updates per scaling city (each covers every region)
    datasets: bool = True                    # the per-dataset comparison (False: the scaling study only)
    scaling_eval_episodes: int = 5
    flat_max_regions: int = 100              # the flat policy's n^2 actions: not trained beyond this
    scaling_behavior: str = "greedy_dispatcher"   # whose data the scaling study trains on (or MIXED: all pooled)
    network: str = "region"                  # OHIO's networks: "region" (shared by all regions) or "mlp"
    region_hidden: int = 32                  # width of the region network
    temperature: float = 10.0                # IQL's advantage temperature (TrainConfig.temperature)
    action_scaling: str = "none"             # TrainConfig.action_scaling of every policy ("minmax": each action
                                             # dimension from its dataset's range onto [-1, 1])
    lp_formulation: str = "edges"            # the rebalancing LP's (RebalancingConfig.formulation)
    scenario: str | None = None              # a scenario file (public AMoD JSON) instead of a synthetic city
    demand_scale: float = 1.0                # the scenario file's requests times this
    vehicles: int | None = None              # the fleet (None: the file's, else Little's law)

    @property
    def eval_seed(self) -> int:
        """Seed of the evaluation episodes, apart from the behavior data's ``seed``."""
        return self.seed + 1000

    def city(self, regions: int | None = None) -> CitySpec:
        """The comparison's city (``regions`` None) or a synthetic city of the scaling study."""
        if regions is None and self.scenario is not None:
            return CitySpec(file=str(self.scenario), demand_scale=self.demand_scale, vehicles=self.vehicles)
        if regions is not None:
            return CitySpec(regions=int(regions), layout=self.layout, horizon=self.horizon, seed=self.seed)
        return CitySpec(regions=self.regions, layout=self.layout, horizon=self.horizon, seed=self.seed,
                        demand_scale=self.demand_scale, vehicles=self.vehicles)

    def rebalancing_config(self):
        """The low level's settings: the rebalancing LP in ``lp_formulation``."""
        return RebalancingConfig(formulation=self.lp_formulation)

    def train_config(self, method: str):
        """OHIO's (goal level) or the flat policy's training settings; flat is an MLP (n^2 actions)."""
        common = {"algo": self.algo, "steps": self.steps, "seed": self.seed, "temperature": self.temperature,
                  "action_scaling": self.action_scaling}
        if method != "ohio":
            return TrainConfig(**common)
        width = {"hidden": (self.region_hidden,)} if self.network == "region" else {}
        return TrainConfig(**common, network=self.network, **width)

    def __post_init__(self):
        unknown = [b for b in self.behaviors if b not in POLICIES]
        if unknown:
            raise ValueError(f"unknown behavior policies {unknown}; known: {sorted(POLICIES)}")
        if self.scaling_behavior not in POLICIES and self.scaling_behavior != MIXED:
            raise ValueError(f"unknown behavior policies {[self.scaling_behavior]} for the scaling study; known: "
                             f"{sorted(POLICIES)} and {MIXED!r}")
        if self.algo not in ALGOS:
            raise ValueError(f"unknown algorithm {self.algo!r}; expected one of {list(ALGOS)}")
        for name in ("regions", "horizon", "episodes", "steps", "eval_episodes", "scaling_episodes", "scaling_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.flat_max_regions) < 0:
            raise ValueError(f"flat_max_regions must be >= 0 (0: no flat policy), got {self.flat_max_regions}")
        if int(self.region_hidden) < 1:
            raise ValueError(f"region_hidden must be >= 1, got {self.region_hidden}")
        self.train_config("ohio")            # TrainConfig checks network and temperature
        self.rebalancing_config()            # RebalancingConfig checks the formulation
        if any(int(r) < 2 for r in self.scaling):
            raise ValueError(f"scaling region counts must be >= 2, got {list(self.scaling)}")
        if not self.datasets and not self.scaling:
            raise ValueError("nothing to run: no datasets and no scaling region counts")
        if self.scenario is not None and self.scaling:
            raise ValueError("the scaling study builds synthetic cities: run it without a scenario file")
        self.city()                          # CitySpec checks the demand scale and the fleet


@dataclass
class PolicyScore:
    returns: list
    normalized: list = field(default_factory=list)
    operations: dict = field(default_factory=dict)     # RoutingLog.operations() of the evaluation episodes

    def summary(self) -> dict:
        n = np.asarray(self.normalized, float)
        se = float(np.std(n, ddof=1) / np.sqrt(len(n))) if len(n) > 1 else 0.0
        return {"mean": float(n.mean()), "se": se, "return_mean": float(np.mean(self.returns)),
                "operations": self.operations}


def check_city(config: RoutingExperimentConfig):
    """The comparison's city, built and checked against the LP formulation (``routing.city``); a
    ``ScenarioError`` naming the file when it cannot be read or its travel times do not suit ``transport``."""
    scenario = config.city().build()
    check_formulation(scenario, config.lp_formulation, config.scenario)
    return scenario


def routing_envs(scenario, rebalancing=None):
    """``(RoutingEnv, FlatRoutingEnv)`` of ``scenario``: the goal level with the LP in the loop (``rebalancing``:
    its ``RebalancingConfig``, default settings if None), and per-edge flows."""
    return RoutingEnv(scenario, Rebalancer(rebalancing or RebalancingConfig())), FlatRoutingEnv(scenario)


def _evaluate(env, policy, episodes: int, seed: int) -> tuple[list, dict]:
    """Returns of ``episodes`` episodes of ``policy`` and how it ran the fleet (``RoutingLog.operations``)."""
    log = rollout(env, policy, episodes, seed)
    return [float(r) for r in log.returns()], log.operations()


@dataclass(frozen=True)
class ScoreScale:
    """Normalized score 100 (R - R_random) / (R_best - R_random) of one city (module docstring, step 4).

    ``returns``: every reference policy's returns on the evaluation seeds; ``random`` and ``best``:
    the random distribution policy's and the best behavior heuristic's mean return; ``operations``:
    how each reference policy ran the fleet (``RoutingLog.operations``)."""

    returns: dict
    random: float
    best: float
    operations: dict = field(default_factory=dict)

    def __call__(self, returns) -> list:
        return [100.0 * (r - self.random) / (self.best - self.random) for r in returns]

    def score(self, returns, operations: dict | None = None) -> PolicyScore:
        return PolicyScore(list(returns), self(returns), dict(operations or {}))

    def reference(self, name: str) -> PolicyScore:
        """The score of reference policy ``name``, with its operations."""
        return self.score(self.returns[name], self.operations.get(name))


def _score_scale(config: RoutingExperimentConfig, scenario, env, flat_env, episodes: int) -> ScoreScale:
    """Every behavior heuristic and the random distribution policy on the evaluation seeds of ``scenario``."""
    refs, operations = {}, {}
    for name in sorted(set(config.behaviors) | {REFERENCE_RANDOM}):
        pol = make_routing_policy(name, scenario)
        refs[name], operations[name] = _evaluate(flat_env if pol.level == "flows" else env, pol, episodes,
                                                 config.eval_seed)
    r_random = float(np.mean(refs[REFERENCE_RANDOM]))
    r_best = max(float(np.mean(refs[b])) for b in config.behaviors)
    if r_best <= r_random:
        raise NoScoreScale(f"the best behavior heuristic ({r_best:.1f}) does not beat the random distribution "
                           f"policy ({r_random:.1f}) in city {scenario.name} ({scenario.regions} regions, "
                           f"{scenario.vehicles} vehicles): no score scale")
    return ScoreScale(refs, r_random, r_best, operations)


def behavior_log(behavior: str, scenario, env, flat_env, episodes: int, seed: int):
    """``episodes`` episodes of ``behavior`` through the low level it acts on (the LP or, for flows, none);
    ``env``, ``flat_env``: ``routing_envs(scenario)``. The log's meta records the observation layout."""
    pol = make_routing_policy(behavior, scenario)
    log = rollout(flat_env if pol.level == "flows" else env, pol, episodes, seed)
    log.meta["obs_layout"] = env.layout.as_list()
    return log


def _relabeled(log, scenario, method: str, result=None):
    """``method``'s training data from ``log`` (``routing.datasets.relabel_routing``), rewards per vehicle;
    ``result``: OHIO's inverse already run on the log."""
    return relabel_routing(log, scenario.travel_time, method, reward_scale(scenario), result)


def _fit_and_score(data, method: str, config: RoutingExperimentConfig, out: Path, name: str, scenario, city: dict,
                   envs: tuple, scale: ScoreScale, episodes: int) -> tuple[PolicyScore, float]:
    """Train ``method`` on ``data`` (``_train``) and score it on the evaluation seeds: OHIO through the LP,
    flat through the feasibility projection; ``city``: the city's record for the sidecar. Returns the score
    and the training seconds."""
    env, flat_env = envs
    level = "goal" if method == "ohio" else "flows"
    policy, seconds = _train(data, config, out, name, level, scenario, city)
    learned = ModelRoutingPolicy(policy, env.layout.idle, scenario.vehicles)
    returns, operations = _evaluate(env if method == "ohio" else flat_env, learned, episodes, config.eval_seed)
    return scale.score(returns, operations), seconds


def _train(data, config: RoutingExperimentConfig, out: Path, name: str, level: str, scenario, city: dict):
    """Fit ``config.algo`` on ``data``; the model is saved to ``out/name`` (d3 + sidecar, with the city's
    record, ``CitySpec.record``, that ``learning.online_env.routing_scenario`` reads) and loaded back."""
    save_dataset(data, out / "datasets" / name, {"task": "routing", "level": level, "k": 1,
                                                  "regions": scenario.regions, "method": data.account["method"]})
    buffer, meta = load_dataset(out / "datasets" / name)
    tc = config.train_config("ohio" if level == "goal" else "flat")
    t0 = time.perf_counter()
    res = train(buffer, meta, tc, out / "models" / name, progress=False, extra_meta={"scenario": city})

    return load_policy(res.model), time.perf_counter() - t0


def _pooled(parts: list):
    """The relabeled behavior datasets as one (``pipeline.relabel.concat``), accounts kept per part."""
    data = concat(parts)
    data.account = {"method": parts[0].account["method"], "parts": [p.account for p in parts]}
    return data


def run(config: RoutingExperimentConfig, out: str | Path, progress: bool = True) -> dict:
    """The whole experiment; writes ``out/result.json``, ``out/scores.png`` (datasets) and
    ``out/scaling.png`` (scaling study); returns the result."""
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
    if result["scaling"]:
        plot_scaling(result["scaling"], out / "scaling.png")
    return result


def _datasets(config: RoutingExperimentConfig, out: Path, progress: bool) -> dict:
    """Steps 1-4 of the module docstring on the ``config.regions`` city, per behavior dataset (and pooled)."""
    scenario = check_city(config)
    city = config.city().record(scenario)
    envs = routing_envs(scenario, config.rebalancing_config())
    scale = _score_scale(config, scenario, *envs, config.eval_episodes)
    n = scenario.regions
    datasets, accounts, timings = {}, {}, {}
    relabeled = {m: [] for m in METHODS}

    def fit_and_score(name: str, data_by_method: dict) -> None:
        scores = {b: scale.reference(b).summary() for b in config.behaviors}
        for method, data in data_by_method.items():
            got, seconds = _fit_and_score(data, method, config, out, f"{name}_{method}", scenario, city, envs,
                                          scale, config.eval_episodes)
            scores[method] = got.summary()
            accounts[f"{name}/{method}"] = data.account
            timings[f"{name}/{method}"] = round(seconds, 2)
            if progress:
                print(f"[routing] {name}/{method}: {scores[method]['mean']:.1f} +- {scores[method]['se']:.1f}",
                      flush=True)
        datasets[name] = scores

    for behavior in config.behaviors:
        log = behavior_log(behavior, scenario, *envs, config.episodes, config.seed)
        data_by_method = {}
        for method in METHODS:
            if method == "flat" and n > config.flat_max_regions:
                continue
            data_by_method[method] = _relabeled(log, scenario, method)
            relabeled[method].append(data_by_method[method])
        fit_and_score(behavior, data_by_method)
    if config.mixed and len(config.behaviors) > 1:
        fit_and_score(MIXED, {m: _pooled(parts) for m, parts in relabeled.items() if parts})
    return {"datasets": datasets,
            "references": {"random_return": scale.random, "best_behavior_return": scale.best,
                           "behavior_returns": {b: float(np.mean(v)) for b, v in scale.returns.items()},
                           "operations": scale.operations},
            "accounts": accounts, "train_seconds": timings,
            "scenario": city}


def _scaling(config: RoutingExperimentConfig, out: Path, progress: bool) -> list:
    """Both methods on ``config.scaling_behavior``'s data (``mixed``: every behavior's, pooled) of each city of
    ``config.scaling`` (module docstring)."""
    scaling = []
    settings = replace(config, steps=config.scaling_steps)
    n_eval = min(config.eval_episodes, config.scaling_eval_episodes)
    for regions in config.scaling:
        spec = config.city(int(regions))
        city = spec.build()
        envs = routing_envs(city, config.rebalancing_config())
        sources = config.behaviors if config.scaling_behavior == MIXED else (config.scaling_behavior,)
        logs = [behavior_log(b, city, *envs, config.scaling_episodes, config.seed) for b in sources]
        t0 = time.perf_counter()
        for log in logs:
            desired_from_flows(log.idle, log.flows)
        closed_form_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        inverses = [invert_flows(log.idle, log.flows, city.travel_time) for log in logs]
        inverse_s = time.perf_counter() - t0
        transitions = sum(len(log) for log in logs)
        scale = _score_scale(config, city, *envs, n_eval)
        row = {"regions": int(regions), "vehicles": int(city.vehicles), "transitions": int(transitions),
               "behavior": config.scaling_behavior, "inverse_s": inverse_s, "closed_form_s": closed_form_s,
               "inverse_per_transition_us": 1e6 * inverse_s / max(transitions, 1), "updates": config.scaling_steps,
               "behavior_scores": {b: float(np.mean(scale(scale.returns[b]))) for b in config.behaviors},
               "flat_score": None, "flat_train_s": None}
        for method in METHODS:
            if method == "flat" and regions > config.flat_max_regions:
                continue
            parts = [_relabeled(log, city, method, inverse if method == "ohio" else None)
                     for log, inverse in zip(logs, inverses)]
            data = _pooled(parts) if len(parts) > 1 else parts[0]
            got, seconds = _fit_and_score(data, method, settings, out / f"scaling_{regions}", method, city,
                                          spec.record(city), envs, scale, n_eval)
            row[f"{method}_score"] = got.summary()["mean"]
            row["train_s" if method == "ohio" else f"{method}_train_s"] = seconds
        scaling.append(row)
        if progress:
            flat = "not trained" if row["flat_score"] is None else f"{row['flat_score']:.1f}"
            print(f"[routing] scaling {regions} regions: inverse {inverse_s:.3f} s, train {row['train_s']:.1f} s, "
                  f"OHIO {row['ohio_score']:.1f}, flat {flat}", flush=True)
    return scaling


def summary_json(result: dict) -> dict:
    """The one-line JSON of ``ohio experiment routing --json``."""
    return {"datasets": {d: {m: {"mean": s["mean"], "se": s["se"]} for m, s in v.items()}
                         for d, v in result["datasets"].items()},
            "scaling": [{k: row[k] for k in ("regions", "inverse_s", "train_s", "ohio_score", "flat_score")}
                        for row in result["scaling"]]}


def table_rows(result: dict) -> tuple[list, list]:
    datasets = list(result["datasets"])
    methods = []
    for v in result["datasets"].values():
        methods += [m for m in v if m not in methods]
    rows = [[m] + [f"{result['datasets'][d][m]['mean']:6.1f} +- {result['datasets'][d][m]['se']:4.1f}"
                   if m in result["datasets"][d] else "-" for d in datasets] for m in methods]
    return rows, ["method"] + [f"data: {d}" for d in datasets]


def operations_rows(result: dict) -> tuple[list, list]:
    """How each policy ran the fleet (``RoutingLog.operations``): the reference policies, then every trained one."""
    def row(policy: str, data: str, ops: dict) -> list:
        return [policy, data, f"{ops['revenue']:.3f}", f"{ops['trip_cost']:.3f}", f"{ops['rebalancing_cost']:.3f}",
                f"{ops['moved']:.1f}", f"{100 * ops['served_share']:.1f}"]

    rows = [row(name, "-", ops) for name, ops in result["references"].get("operations", {}).items()]
    for data, scores in result["datasets"].items():
        rows += [row(m, data, s["operations"]) for m, s in scores.items() if m in METHODS and s.get("operations")]
    return rows, ["policy", "trained on", "revenue", "trip cost", "rebalancing cost", "moved", "served %"]


def plot_scores(result: dict, path: Path) -> Path | None:
    try:
        plt = plotting.pyplot()
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
    city = result["scenario"]
    ax.set_title(f"routing, {city['name']} ({city['regions']} regions, {city['vehicles']} vehicles): "
                 "policies trained on each dataset", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return plotting.save(fig, path, dpi=110)


def plot_scaling(rows: list, path: Path) -> Path | None:
    """Scores (OHIO, flat, behaviors) and times (inverse, closed form, training) against the region count."""
    try:
        plt = plotting.pyplot()
    except ImportError:
        return None
    regions = [r["regions"] for r in rows]
    fig, (ax_s, ax_t) = plt.subplots(1, 2, figsize=(9.0, 3.6))
    for key, label, style in (("ohio_score", "OHIO", "o-"), ("flat_score", "flat", "s-")):
        pts = [(r["regions"], r[key]) for r in rows if r.get(key) is not None]
        if pts:
            ax_s.plot(*zip(*pts), style, label=label)
    for b in rows[0]["behavior_scores"]:
        ax_s.plot(regions, [r["behavior_scores"][b] for r in rows], ":", lw=1, label=b)
    ax_s.set_xlabel("regions")
    ax_s.set_ylabel("normalized score")
    ax_s.set_title(f"trained on {rows[0]['behavior']} data", fontsize=9)
    ax_s.legend(fontsize=7)
    for key, label in (("inverse_s", "inverse + optimality check"), ("closed_form_s", "closed form"),
                       ("train_s", "OHIO training"), ("flat_train_s", "flat training")):
        pts = [(r["regions"], r[key]) for r in rows if r.get(key)]
        if pts:
            ax_t.loglog(*zip(*pts), "o-", label=label)
    ax_t.set_xlabel("regions")
    ax_t.set_ylabel("seconds (whole dataset)")
    ax_t.legend(fontsize=7)
    return plotting.save(fig, path, dpi=110)
