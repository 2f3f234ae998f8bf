"""Online fine-tuning of an offline model in the simulator, with its score curve and constraint violations.

``finetune(model, config, out)`` loads a trained model (``learning.policy``), builds the environment
it was trained for and continues training with d3rlpy's ``fit_online``:

- Environment and encoding: the exact action and observation encoding of the offline data.
  Arm: ``GoalArmEnv`` with the model's controller (goal level; normalized end-effector goals every
  k control periods) or ``TorqueArmEnv`` (torque level; torques normalized by the URDF limits).
  Routing: ``RoutingEnv`` with the LP, the action decoded as w = max(q + a, 0) around the idle
  distribution q (``pipeline.routing.decode_distribution``), or ``FlatRoutingEnv``, the action
  decoded as raw flows x_ij = (a_ij + 1) / 2 idle_i; rewards divided by the fleet size, as in training.
- Replay: the offline dataset and the online transitions in two buffers; every mini-batch takes
  half of its samples from each (``d3rlpy.dataset.MixedReplayBuffer``, ``online_ratio``). One
  update per online step, after ``warmup`` steps. Exploration samples the algorithm's stochastic
  policy (``sample_action``: IQL's Gaussian, Cal-QL's tanh-Gaussian), unclipped.
- Algorithms: the model's own (IQL or Cal-QL; ``config.algo`` must name it, since weights do not
  carry over between them). Cal-QL's Monte-Carlo returns (the lower bound of its conservative
  term) are computed by d3rlpy from each sampled transition's episode rewards (discounted
  rewards-to-go, ``TorchMiniBatch.returns_to_go``); the datasets need no extra field.
- Curve: a point at step 0 and every ``eval_every`` online steps (and at the last step): the
  normalized score of the greedy policy on fixed seeds, and the constraint violations of the
  online exploration steps since the previous point.

Constraint violations (counts of time steps, the unit being the control period for the arm and
the simulator step for routing; a step with several violated constraints counts once in ``any``
and once under each kind):

- arm, per control period of exploration, with the URDF limits of ``controllers.robot.PandaModel``
  and the state at the start of the period:
  ``joint_position``: some q_i < q_min_i - 1e-9 or q_i > q_max_i + 1e-9;
  ``joint_velocity``: some |qd_i| > qd_max_i (1 + 1e-9);
  ``torque``: some commanded |tau_i| > tau_max_i (1 + 1e-9), the command being what reaches the
  actuator before it clips: the flat policy's raw action times tau_max, or the controller's output
  for the goal policy. Reported besides, not counted in ``any``: ``torque_at_limit``, periods with
  some |tau_i| >= tau_max_i (1 - 1e-9) (a command at the limit: a saturated controller output, or
  a flat action of +-1; d3rlpy clamps IQL's exploration samples to [-1, 1], so the flat policy's
  normalized torques reach the limits but cannot pass them).
- routing, per simulator step of exploration, on the flows x before the low level's feasibility
  step (raw decoded flat action before ``project_flows``; the LP's flows for OHIO), diagonal ignored:
  ``flow_over_idle``: some region sends sum_{j != i} x_ij > idle_i + 1e-6 vehicles;
  ``negative_flow``: some x_ij < -1e-9.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from ohio_core import plotting
from ohio_core.learning.policy import (LEVEL_FLOWS, LEVEL_GOAL, LEVEL_TORQUE, Policy, PolicyMismatchError, load_policy,
                                       save_policy)

ONLINE_ALGOS = ("iql", "calql")
ARM_TASKS = ("reach", "lift")
ROUTING_TASK = "routing"
ARM_KINDS = ("joint_position", "joint_velocity", "torque", "torque_at_limit")
ROUTING_KINDS = ("flow_over_idle", "negative_flow")
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


# ------------------------------------------------------------------------------ violation counts

@dataclass(frozen=True)
class ArmLimits:
    q_min: np.ndarray
    q_max: np.ndarray
    qd_max: np.ndarray
    tau_max: np.ndarray

    @classmethod
    def from_model(cls, model) -> "ArmLimits":
        """The URDF limits of a ``controllers.robot.PandaModel``."""
        return cls(model.q_min.copy(), model.q_max.copy(), model.qd_max.copy(), model.tau_max.copy())


def arm_violations(q: np.ndarray, qd: np.ndarray, tau_cmd: np.ndarray, limits: ArmLimits) -> dict[str, int]:
    """Control periods (rows of (N, 7) arrays) violating each arm constraint (module docstring)."""
    q, qd, tau = (np.atleast_2d(np.asarray(x, float)) for x in (q, qd, tau_cmd))
    kinds = {"joint_position": ((q < limits.q_min - 1e-9) | (q > limits.q_max + 1e-9)).any(-1),
             "joint_velocity": (np.abs(qd) > limits.qd_max * (1 + 1e-9)).any(-1),
             "torque": (np.abs(tau) > limits.tau_max * (1 + 1e-9)).any(-1)}
    at_limit = (np.abs(tau) >= limits.tau_max * (1 - 1e-9)).any(-1)
    return {**{k: int(v.sum()) for k, v in kinds.items()}, "any": int(np.any(list(kinds.values()), 0).sum()),
            "torque_at_limit": int(at_limit.sum())}


def arm_worst(q: np.ndarray, qd: np.ndarray, tau_cmd: np.ndarray, limits: ArmLimits) -> dict[str, float]:
    """How far the worst row goes: joint position beyond its limit (rad, 0 inside), max |qd_i| / qd_max_i,
    max |tau_i| / tau_max_i."""
    q, qd, tau = (np.atleast_2d(np.asarray(x, float)) for x in (q, qd, tau_cmd))
    beyond = np.maximum(np.maximum(limits.q_min - q, q - limits.q_max), 0.0)
    return {"joint_position_rad": float(beyond.max(initial=0.0)),
            "joint_velocity_ratio": float((np.abs(qd) / limits.qd_max).max(initial=0.0)),
            "torque_ratio": float((np.abs(tau) / limits.tau_max).max(initial=0.0))}


def routing_worst(flows: np.ndarray, idle: np.ndarray) -> dict[str, float]:
    """Vehicles sent beyond the idle ones by the worst region, and the most negative flow (as a positive number)."""
    x = np.asarray(flows, float)
    x = x.reshape((-1,) + x.shape[-2:])
    a = np.asarray(idle, float).reshape(x.shape[:2])
    off = ~np.eye(x.shape[-1], dtype=bool)
    return {"over_idle_vehicles": float(np.maximum(np.where(off, x, 0.0).sum(-1) - a, 0.0).max(initial=0.0)),
            "negative_flow_vehicles": float(np.maximum(-np.where(off, x, 0.0), 0.0).max(initial=0.0))}


def routing_violations(flows: np.ndarray, idle: np.ndarray) -> dict[str, int]:
    """Steps (leading axis of flows (N, n, n), idle (N, n)) whose flows break each routing
    constraint (module docstring); the diagonal (vehicles staying) is ignored."""
    x = np.asarray(flows, float)
    x = x.reshape((-1,) + x.shape[-2:])
    a = np.asarray(idle, float).reshape(x.shape[:2])
    off = ~np.eye(x.shape[-1], dtype=bool)
    kinds = {"flow_over_idle": (np.where(off, x, 0.0).sum(-1) > a + 1e-6).any(-1),
             "negative_flow": ((x < -1e-9) & off).any((-1, -2))}
    return {**{k: int(v.sum()) for k, v in kinds.items()}, "any": int(np.any(list(kinds.values()), 0).sum())}


# ------------------------------------------------------------------------- online environments

class _CommandLog:
    """Controller proxy for ``GoalArmEnv``: records every torque the controller outputs."""

    def __init__(self, controller):
        self.controller, self.config, self.model = controller, controller.config, controller.model
        self.commands: list[np.ndarray] = []

    def goal_from_action(self, action, q):
        return self.controller.goal_from_action(action, q)

    def act(self, q, qd, goal):
        tau = self.controller.act(q, qd, goal)
        self.commands.append(np.asarray(tau, float).copy())
        return tau


class OnlineEnv(gym.Env):
    """The model's action space [-1, 1]^d over the simulator env, float32 observations, training
    reward scale; counts constraint violations of every step (``violations``, ``periods``).
    The first ``reset`` without a seed uses ``seed`` (later ones continue the env's generator)."""

    metadata = {"render_modes": []}

    def __init__(self, inner, domain: str, level: str, action_dim: int, seed: int, *, limits: ArmLimits | None = None,
                 reward_scale: float = 1.0):
        self.inner, self.domain, self.level, self.limits = inner, domain, level, limits
        self.reward_scale, self._seed, self._seeded = float(reward_scale), int(seed), False
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, inner.observation_space.shape, np.float32)
        kinds = ARM_KINDS if domain == "arm" else ROUTING_KINDS
        self.violations = dict.fromkeys((*kinds, "any"), 0)
        self.worst: dict[str, float] = {}
        self.periods = 0
        if domain == "arm" and level == LEVEL_GOAL:
            self.inner.controller = _CommandLog(inner.controller)
        if domain == "routing":
            self.vehicles = float(inner.scenario.vehicles)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and not self._seeded:
            seed = self._seed
        self._seeded = True
        obs, info = self.inner.reset(seed=seed, options=options)
        return np.asarray(obs, np.float32), info

    def take_counts(self) -> tuple[dict, int, dict]:
        """(violations, periods, worst) since the last call; the counters restart at zero."""
        out = (dict(self.violations), self.periods, dict(self.worst))
        self.violations = dict.fromkeys(self.violations, 0)
        self.worst, self.periods = {}, 0
        return out

    def _count(self, counts: dict, periods: int, worst: dict) -> None:
        for k, v in counts.items():
            self.violations[k] += v
        for k, v in worst.items():
            self.worst[k] = max(self.worst.get(k, 0.0), v)
        self.periods += periods

    def step(self, action):
        a = np.asarray(action, float)
        if self.domain == "arm":
            obs, r, term, trunc, info = self._arm_step(a)
        else:
            obs, r, term, trunc, info = self._routing_step(a)
        info["raw_reward"] = r
        return np.asarray(obs, np.float32), r * self.reward_scale, term, trunc, info

    def _arm_step(self, a: np.ndarray):
        if self.level == LEVEL_GOAL:
            log = self.inner.controller
            log.commands.clear()
            out = self.inner.step(a)
            tau = np.array(log.commands).reshape(-1, 7)
        else:
            out = self.inner.step(a)
            tau = a[None, :7] * self.inner.sim.tau_max
        trace = out[4]["trace"]
        args = (trace["q"], trace["qd"], tau, self.limits)
        self._count(arm_violations(*args), len(trace["q"]), arm_worst(*args))
        return out

    def _routing_step(self, a: np.ndarray):
        from ohio_core.pipeline.routing import decode_distribution, decode_flows, idle_distribution

        idle = self.inner.sim.idle.copy()
        if self.level == LEVEL_GOAL:
            out = self.inner.step(decode_distribution(a, idle_distribution(idle)))
            flows = out[4]["flows"]
        else:
            raw = decode_flows(a, idle, clip=False)
            out = self.inner.step(raw)
            flows = raw.reshape(len(idle), len(idle))
        self._count(routing_violations(flows, idle), 1, routing_worst(flows, idle))
        return out


# --------------------------------------------------------------------------------- model setup

def domain_of(task: str) -> str:
    if task in ARM_TASKS:
        return "arm"
    if task == ROUTING_TASK:
        return "routing"
    raise ValueError(f"unknown task {task!r}; expected one of {[*ARM_TASKS, ROUTING_TASK]}")


def routing_scenario(meta: dict):
    """The model's city: ``meta["scenario"]`` (synthetic settings) or, without it, the routing
    experiment's default city with the model's region count (16-region grid, horizon 60, seed 0)."""
    from ohio_core.envs.routing.env import ObsLayout
    from ohio_core.envs.routing.scenario import synthetic

    s = meta.get("scenario") or {}
    regions = int(s["regions"]) if "regions" in s else ObsLayout.from_list(meta["obs_layout"]).regions
    return synthetic(regions, layout=s.get("layout", "grid"), horizon=int(s.get("horizon", 60)),
                     seed=int(s.get("seed", 0)))


def make_env(policy: Policy, seed: int, horizon: int | None = None) -> OnlineEnv:
    """The online env of ``policy`` (module docstring), checked against the model's sidecar."""
    domain = domain_of(policy.task)
    if domain == "arm":
        from controllers.robot import PandaModel
        from controllers.base import make_controller
        from ohio_core.envs.arm.env import GoalArmEnv, TorqueArmEnv
        from ohio_core.envs.arm.tasks import OBS_LAYOUT, TaskConfig

        if policy.level == LEVEL_GOAL:
            config = policy.controller_config()
            policy.check(policy.task, OBS_LAYOUT, policy.k, config)
            inner = GoalArmEnv(make_controller(config), TaskConfig(name=policy.task, k=policy.k, horizon=horizon,
                                                                   control_period=config.control_period))
            limits = ArmLimits.from_model(inner.controller.model)
        elif policy.level == LEVEL_TORQUE:
            policy.check(policy.task, OBS_LAYOUT)
            inner = TorqueArmEnv(TaskConfig(name=policy.task, k=1, horizon=horizon))
            limits = ArmLimits.from_model(PandaModel())
        else:
            raise ValueError(f"an arm model has level goal or torque, got {policy.level!r}")
        return OnlineEnv(inner, domain, policy.level, policy.action_dim, seed, limits=limits)
    from controllers.rebalancing import RebalancingConfig, Rebalancer
    from ohio_core.envs.routing.env import FlatRoutingEnv, RoutingEnv
    from ohio_core.pipeline.routing import reward_scale

    scenario = routing_scenario(policy.meta)
    if policy.level == LEVEL_GOAL:
        inner = RoutingEnv(scenario, Rebalancer(RebalancingConfig()))
    elif policy.level == LEVEL_FLOWS:
        inner = FlatRoutingEnv(scenario)
    else:
        raise ValueError(f"a routing model has level goal or flows, got {policy.level!r}")
    policy.check(policy.task, inner.layout.as_list())
    scale = float(policy.meta.get("reward_scale", reward_scale(scenario)))
    return OnlineEnv(inner, domain, policy.level, policy.action_dim, seed, reward_scale=scale)


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
        from controllers.rebalancing import RebalancingConfig, Rebalancer
        from ohio_core.envs.routing.env import FlatRoutingEnv, RoutingEnv, rollout
        from ohio_core.policies.routing import make_routing_policy

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
            from ohio_core.learning.evaluate import evaluate

            s = evaluate(policy, episodes=self.episodes, seed=self.seed, horizon=self.horizon).summary
            return {"mean": s["mean"], "se": s["se"], "return_mean": s["return_mean"],
                    "success_rate": s["success_rate"]}
        from ohio_core.envs.routing.env import rollout
        from ohio_core.pipeline.routing import ModelRoutingPolicy

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
    import torch

    from ohio_core.pipeline.d3 import import_d3rlpy
    from ohio_core.pipeline.dataset import load_dataset

    d3rlpy = import_d3rlpy()
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
                                                      "reference": getattr(scorer, "reference", None)})
    (out / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


def _point(step: int, score: dict, violations: dict, periods: int, worst: dict) -> dict:
    return {"step": int(step), "score": score, "violations": violations, "periods": int(periods), "worst": worst}


def _print_point(label: str, p: dict) -> None:
    print(f"[finetune] {label} step {p['step']}: score {p['score']['mean']:.1f} +- {p['score']['se']:.1f}, "
          f"violations {p['violations']['any']} of {p['periods']}", flush=True)


def plot_curve(curves: list | dict, path: Path, title: str, unit: str = "periods") -> Path:
    """Two panels against online steps: normalized score (mean +- s.e.) and the cumulative count of
    time steps with a constraint violation. ``curves``: one curve, or {label: curve}."""
    plt = plotting.pyplot()
    curves = curves if isinstance(curves, dict) else {"": curves}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.3))
    for name, curve in curves.items():
        x = np.array([p["step"] for p in curve])
        m = np.array([p["score"]["mean"] for p in curve])
        se = np.array([p["score"]["se"] for p in curve])
        line, = ax1.plot(x, m, marker=".", label=name or None)
        ax1.fill_between(x, m - se, m + se, alpha=0.2, color=line.get_color())
        ax2.plot(x, np.cumsum([p["violations"]["any"] for p in curve]), marker=".", label=name or None)
    ax1.set_xlabel("online steps")
    ax1.set_ylabel("normalized score")
    ax2.set_xlabel("online steps")
    ax2.set_ylabel(f"{unit} with a violation (cumulative)")
    if len(curves) > 1:
        ax1.legend(fontsize=7)
        ax2.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return plotting.save(fig, path)
