"""The online environment of a model: the simulator it was trained for, with the exact action and
observation encoding of its offline data, counting the constraint violations of every step
(``learning.violations``).

- Arm: ``GoalArmEnv`` with the model's controller (goal level; normalized end-effector goals every
  k control periods) or ``TorqueArmEnv`` (torque level; torques normalized by the URDF limits).
- Routing: ``RoutingEnv`` with the LP, the action decoded as w = max(q + a, 0) around the idle
  distribution q (``routing.datasets.decode_distribution``), or ``FlatRoutingEnv``, the action
  decoded as raw flows x_ij = (a_ij + 1) / 2 idle_i; rewards divided by the fleet size, as in training.

``make_env`` builds the simulator of the model's domain.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from controllers.base import make_controller
from controllers.rebalancing import Rebalancer, RebalancingConfig
from controllers.robot import ArmModel
from ohio_core.envs.arm.env import GoalArmEnv, TorqueArmEnv
from ohio_core.envs.arm.tasks import OBS_LAYOUT, TaskConfig
from ohio_core.learning.policy import LEVEL_FLOWS, LEVEL_GOAL, LEVEL_TORQUE, Policy
from ohio_core.learning.violations import (ARM_KINDS, ROUTING_KINDS, ArmLimits, arm_violations, arm_worst,
                                           routing_violations, routing_worst)
from ohio_core.routing.city import recorded_city
from ohio_core.routing.datasets import decode_distribution, decode_flows, idle_distribution, reward_scale
from ohio_core.routing.env import FlatRoutingEnv, ObsLayout, RoutingEnv

ARM_TASKS = ("reach", "lift")
ROUTING_TASK = "routing"


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
            tau = np.array(log.commands).reshape(-1, self.inner.sim.n)
        else:
            out = self.inner.step(a)
            tau = a[None, :self.inner.sim.n] * self.inner.sim.tau_max
        trace = out[4]["trace"]
        args = (trace["q"], trace["qd"], tau, self.limits)
        self._count(arm_violations(*args), len(trace["q"]), arm_worst(*args))
        return out

    def _routing_step(self, a: np.ndarray):
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


def domain_of(task: str) -> str:
    if task in ARM_TASKS:
        return "arm"
    if task == ROUTING_TASK:
        return "routing"
    raise ValueError(f"unknown task {task!r}; expected one of {[*ARM_TASKS, ROUTING_TASK]}")


def routing_scenario(meta: dict):
    """The model's city: ``meta["scenario"]`` (``routing.city.recorded_city``: synthetic settings or a
    scenario file, its demand scale and fleet; a ``ScenarioError`` when the file is gone) or, without
    it, the routing experiment's default city with the model's region count (grid, horizon 60, seed 0)."""
    record = meta.get("scenario") or {}
    return recorded_city(record, None if "regions" in record or record.get("file")
                         else ObsLayout.from_list(meta["obs_layout"]).regions)


def make_env(policy: Policy, seed: int, horizon: int | None = None) -> OnlineEnv:
    """The online env of ``policy`` (module docstring), checked against the model's sidecar."""
    domain = domain_of(policy.task)
    if domain == "arm":
        if policy.level == LEVEL_GOAL:
            config = policy.controller_config()
            policy.check(policy.task, OBS_LAYOUT, policy.k, config)
            inner = GoalArmEnv(make_controller(config, ArmModel(policy.robot)),
                               TaskConfig(name=policy.task, k=policy.k, horizon=horizon,
                                          control_period=config.control_period))
            limits = ArmLimits.from_model(inner.controller.model)
        elif policy.level == LEVEL_TORQUE:
            policy.check(policy.task, OBS_LAYOUT)
            inner = TorqueArmEnv(TaskConfig(name=policy.task, k=1, horizon=horizon), robot=policy.robot)
            limits = ArmLimits.from_model(ArmModel(policy.robot))
        else:
            raise ValueError(f"an arm model has level goal or torque, got {policy.level!r}")
        return OnlineEnv(inner, domain, policy.level, policy.action_dim, seed, limits=limits)

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
