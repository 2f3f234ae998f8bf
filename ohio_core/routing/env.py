"""gymnasium environments for fleet rebalancing, with two action interfaces, and their step log.

- ``RoutingEnv`` (high level): action = desired distribution of idle vehicles over the n regions,
  as nonnegative weights (normalized here; all zero means uniform). A rebalancing controller passed
  in (``goal_from_action(p, idle) -> desired counts``, ``act(idle, desired, travel_time) -> flows``,
  e.g. ``controllers.rebalancing.Rebalancer``; the env takes it as an argument) turns it into
  integer flows.
- ``FlatRoutingEnv`` (end to end): action = per-edge flows (n * n,) in vehicles, row-major
  (``x[i * n + j]`` from i to j), made feasible by ``controllers.rebalancing.project_flows``.

One env step is one simulator step t (``sim`` module docstring): the matching of step t has
happened when the policy observes; the env applies the flows, then advances to t + 1 and matches.
Reward of step t = revenue of the trips served at t - ``op_cost`` (travel steps of those trips +
``sum_ij t_ij x_ij`` of the flows). Episodes end by truncation after ``horizon`` steps.

Observation (``ObsLayout``; V = fleet size, L = ``lookahead``), a flat float vector:

==========  =========  ===========================================================================
slice       size       content
==========  =========  ===========================================================================
idle        n          idle vehicles per region after step t's matching / V
arrivals    L * n      vehicles reaching each region at t+1 .. t+L (trips and rebalancing) / V,
                       step-major (row k: t+1+k)
demand      n          expected requests per origin at t+1, ``sum_j demand[t+1, i, j]`` / V
time        3          t / horizon, sin and cos of 2 pi (minute of day) / 1440
==========  =========  ===========================================================================

``info`` per step: t, requests and served (n, n), idle_before / idle_after (n,) (before and after
the flows leave), flows (n, n), revenue, trip_cost, rebalancing_cost; ``RoutingEnv`` adds goal (the
desired counts) and distribution (the normalized action).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np

from controllers.rebalancing import project_flows
from ohio_core.routing.scenario import Scenario
from ohio_core.routing.sim import RoutingSim

DEFAULT_LOOKAHEAD = 4
LEVEL_GOAL, LEVEL_FLOWS = "goal", "flows"


@dataclass(frozen=True)
class ObsLayout:
    """Where each block sits in the observation vector (module docstring)."""

    regions: int
    lookahead: int = DEFAULT_LOOKAHEAD

    @classmethod
    def from_list(cls, layout) -> "ObsLayout":
        """The inverse of ``as_list``; ValueError unless ``layout`` is the [[block, size], ...] of a
        routing observation (idle, arrivals, demand, time) of n >= 1 regions."""
        try:
            sizes = [[str(name), int(size)] for name, size in layout]
        except (TypeError, ValueError):
            raise ValueError(f"observation layout {layout!r} is not a list of [block, size]") from None
        n = sizes[0][1] if sizes and sizes[0][0] == "idle" else 0
        arrivals = dict(sizes).get("arrivals", -1)
        if n < 1 or arrivals < 0 or sizes != cls(n, arrivals // n).as_list():
            raise ValueError(f"observation layout {sizes} is not a routing ObsLayout (idle, arrivals, demand, time)")
        return cls(n, arrivals // n)

    @property
    def idle(self) -> slice:
        return slice(0, self.regions)

    @property
    def arrivals(self) -> slice:
        return slice(self.regions, self.regions * (1 + self.lookahead))

    @property
    def demand(self) -> slice:
        start = self.regions * (1 + self.lookahead)
        return slice(start, start + self.regions)

    @property
    def time(self) -> slice:
        start = self.regions * (2 + self.lookahead)
        return slice(start, start + 3)

    @property
    def size(self) -> int:
        return self.regions * (2 + self.lookahead) + 3

    def as_list(self) -> list[list]:
        """[[block, size], ...] in order (the form dataset and model sidecars record)."""
        n, L = self.regions, self.lookahead
        return [["idle", n], ["arrivals", L * n], ["demand", n], ["time", 3]]

    def split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """The blocks of observations (..., size); arrivals as (..., L, n). Arrays (numpy, torch) stay
        what they are; anything else becomes a numpy array."""
        obs = obs if hasattr(obs, "reshape") else np.asarray(obs)
        return {"idle": obs[..., self.idle],
                "arrivals": obs[..., self.arrivals].reshape(obs.shape[:-1] + (self.lookahead, self.regions)),
                "demand": obs[..., self.demand], "time": obs[..., self.time]}


class _RoutingBase(gym.Env):
    metadata = {"render_modes": []}
    level = ""

    def __init__(self, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD):
        if not isinstance(scenario, Scenario):
            raise TypeError(f"scenario must be a Scenario, got {type(scenario).__name__}")
        if isinstance(lookahead, bool) or not isinstance(lookahead, (int, np.integer)) or lookahead < 0:
            raise ValueError(f"lookahead must be an integer >= 0, got {lookahead!r}")
        self.scenario = scenario
        self.sim = RoutingSim(scenario)
        self.layout = ObsLayout(scenario.regions, int(lookahead))
        self.observation_space = gym.spaces.Box(-1.0, np.inf, (self.layout.size,), np.float64)

    @property
    def regions(self) -> int:
        return self.scenario.regions

    @property
    def horizon(self) -> int:
        return self.scenario.horizon

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Options: ``idle`` (n,) initial idle vehicles summing to the fleet (default: spread evenly)."""
        super().reset(seed=seed)
        self.sim.reset(self.np_random, (options or {}).get("idle"))
        sim = self.sim
        return self.observation(), {"t": 0, "requests": sim.requests, "served": sim.served, "idle": sim.idle.copy()}

    def observation(self) -> np.ndarray:
        s, sim, lay = self.scenario, self.sim, self.layout
        V, n, t = float(s.vehicles), s.regions, sim.t
        ahead = np.zeros((lay.lookahead, n))
        got = sim.arrivals_ahead(lay.lookahead)
        ahead[:got.shape[0]] = got
        minute = 2.0 * np.pi * ((60.0 * s.start_hour + t * s.step_minutes) % 1440.0) / 1440.0
        return np.concatenate([sim.idle / V, ahead.ravel() / V, s.demand[min(t + 1, s.steps - 1)].sum(-1) / V,
                               [t / s.horizon, np.sin(minute), np.cos(minute)]])

    def _check_action(self, action) -> np.ndarray:
        a = np.asarray(action, dtype=float)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError("action is not finite")
        if self.sim.done:
            raise RuntimeError("episode is over (horizon reached): call reset()")
        return a

    def _finish(self, idle: np.ndarray, flows: np.ndarray, extra: dict):
        sim = self.sim
        t, requests, served, revenue, trip_cost = sim.t, sim.requests, sim.served, sim.revenue, sim.trip_cost
        rebalancing_cost = sim.apply_flows(flows)
        info = {"t": t, "requests": requests, "served": served, "idle_before": idle, "idle_after": sim.idle.copy(),
                "flows": flows, "revenue": revenue, "trip_cost": trip_cost, "rebalancing_cost": rebalancing_cost,
                **extra}
        sim.advance()
        return self.observation(), revenue - trip_cost - rebalancing_cost, False, sim.done, info


class RoutingEnv(_RoutingBase):
    """High level: a desired distribution of idle vehicles each step, the controller in the loop."""

    level = LEVEL_GOAL

    def __init__(self, scenario: Scenario, controller, lookahead: int = DEFAULT_LOOKAHEAD):
        super().__init__(scenario, lookahead)
        for method in ("goal_from_action", "act"):
            if not callable(getattr(controller, method, None)):
                raise TypeError(f"controller must have a {method}() method (e.g. controllers.rebalancing.Rebalancer)")
        self.controller = controller
        self.action_space = gym.spaces.Box(0.0, 1.0, (scenario.regions,), np.float64)

    def step(self, action):
        w = self._check_action(action)
        if (w < 0).any():
            raise ValueError(f"action weights must be >= 0; min is {w.min()}")
        p = w / w.sum() if w.sum() > 0 else np.full(w.shape, 1.0 / w.size)
        idle = self.sim.idle.copy()
        desired = np.asarray(self.controller.goal_from_action(p, idle))
        flows = np.asarray(self.controller.act(idle, desired, self.scenario.travel_time))
        return self._finish(idle, flows, {"goal": desired, "distribution": p})


class FlatRoutingEnv(_RoutingBase):
    """End to end: per-edge flows each step, projected onto the feasible integer flows."""

    level = LEVEL_FLOWS

    def __init__(self, scenario: Scenario, lookahead: int = DEFAULT_LOOKAHEAD):
        super().__init__(scenario, lookahead)
        n = scenario.regions
        self.action_space = gym.spaces.Box(0.0, float(scenario.vehicles), (n * n,), np.float64)

    def step(self, action):
        raw = self._check_action(action)
        idle = self.sim.idle.copy()
        n = self.regions
        return self._finish(idle, project_flows(raw.reshape(n, n), idle), {})


# --- step log ----------------------------------------------------------------------------------

_LOG_ARRAYS = ("obs", "next_obs", "idle", "flows", "action", "desired", "reward", "revenue", "trip_cost",
               "rebalancing_cost", "served", "requests", "terminal", "timeout", "episode", "t")


@dataclass
class RoutingLog:
    """Per-step records of rollouts, (S, ...) over all steps of all episodes, in order.

    ``obs`` what the policy saw at step t, ``idle`` the idle vehicles then (after matching, before
    the flows), ``flows`` (S, n, n) what the low level sent, ``reward``, ``terminal`` (always False:
    episodes end by time) and ``timeout`` (last step of an episode), ``next_obs``, ``episode``, ``t``;
    also ``action`` (what the policy output), ``revenue``, ``trip_cost``, ``rebalancing_cost`` and
    the totals ``served``, ``requests``. ``desired`` holds the desired counts the controller used
    (-1 for flat data): ground truth to check inverses against, never needed to relabel.
    """

    obs: np.ndarray
    next_obs: np.ndarray
    idle: np.ndarray
    flows: np.ndarray
    action: np.ndarray
    desired: np.ndarray
    reward: np.ndarray
    revenue: np.ndarray
    trip_cost: np.ndarray
    rebalancing_cost: np.ndarray
    served: np.ndarray
    requests: np.ndarray
    terminal: np.ndarray
    timeout: np.ndarray
    episode: np.ndarray
    t: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.reward.shape[0]

    @property
    def episodes(self) -> int:
        return int(np.unique(self.episode).size)

    def returns(self) -> np.ndarray:
        """Return of each episode, in order of episode id."""
        ids, inverse = np.unique(self.episode, return_inverse=True)
        return np.bincount(inverse, weights=self.reward, minlength=ids.size)

    def operations(self) -> dict:
        """How the fleet was run, per step on average: ``revenue``, ``trip_cost`` and ``rebalancing_cost``
        per vehicle of the fleet (``V = meta["vehicles"]``), ``moved`` (vehicles sent to rebalance), ``idle``
        (idle vehicles before the flows) and ``served_share`` (trips served / requests, over the log)."""
        if "vehicles" not in self.meta:
            raise ValueError("the log's meta does not say the fleet size ('vehicles'): no per-vehicle operations")
        V = max(int(self.meta["vehicles"]), 1)
        if not len(self):
            raise ValueError("an empty log has no operations to summarize")
        return {"revenue": float(self.revenue.mean()) / V, "trip_cost": float(self.trip_cost.mean()) / V,
                "rebalancing_cost": float(self.rebalancing_cost.mean()) / V,
                "moved": float(self.flows.sum((1, 2), dtype=np.int64).mean()),
                "idle": float(self.idle.sum(1).mean()),
                "served_share": float(self.served.sum() / max(self.requests.sum(), 1))}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, meta=np.array(json.dumps(self.meta)),
                            **{k: getattr(self, k) for k in _LOG_ARRAYS})
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RoutingLog":
        with np.load(path, allow_pickle=False) as z:
            return cls(meta=json.loads(str(z["meta"])), **{k: z[k] for k in _LOG_ARRAYS})

    @classmethod
    def concatenate(cls, logs: list["RoutingLog"]) -> "RoutingLog":
        """Logs one after another; episode ids are offset to stay distinct. The meta keeps each part's, and
        the fleet size (``vehicles``) where every part has the same one."""
        parts, offset = [], 0
        for log in logs:
            parts.append(dataclasses.replace(log, episode=log.episode + offset))
            offset += int(log.episode.max()) + 1 if len(log) else 0
        meta = {"parts": [log.meta for log in logs]}
        fleets = {log.meta.get("vehicles") for log in logs}
        if len(fleets) == 1 and None not in fleets:
            meta["vehicles"] = fleets.pop()
        return cls(meta=meta,
                   **{k: np.concatenate([getattr(p, k) for p in parts]) for k in _LOG_ARRAYS})


def episode_seed(seed: int, episode: int) -> int:
    """The env seed of episode ``episode`` of a rollout seeded ``seed`` (independent streams)."""
    return int(np.random.SeedSequence([seed, episode]).generate_state(1)[0])


def rollout(env: _RoutingBase, policy, episodes: int, seed: int = 0) -> RoutingLog:
    """Run ``policy`` (obs -> action; ``reset(rng)`` called per episode if it has one; a ``level``
    attribute, if any, must match the env's) for ``episodes`` episodes; episode e resets the env with
    ``episode_seed(seed, e)`` and the policy with a generator on ``SeedSequence([seed, e, 1])``."""
    level = getattr(policy, "level", None)
    if level is not None and level != env.level:
        raise ValueError(f"policy {getattr(policy, 'name', policy)!r} acts at level {level!r} but the env "
                         f"takes {env.level!r} actions ({type(env).__name__})")
    n = env.regions
    rows: dict[str, list] = {k: [] for k in _LOG_ARRAYS}
    for e in range(int(episodes)):
        obs, _ = env.reset(seed=episode_seed(seed, e))
        if hasattr(policy, "reset"):
            policy.reset(np.random.default_rng(np.random.SeedSequence([seed, e, 1])))
        done = False
        while not done:
            action = policy(obs)
            next_obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            for key, value in (("obs", obs), ("next_obs", next_obs), ("idle", info["idle_before"]),
                               ("flows", np.asarray(info["flows"], dtype=np.int32)),    # n^2 per step
                               ("action", np.asarray(action, dtype=np.float32)),
                               ("desired", info.get("goal", np.full(n, -1))), ("reward", reward),
                               ("revenue", info["revenue"]), ("trip_cost", info["trip_cost"]),
                               ("rebalancing_cost", info["rebalancing_cost"]), ("served", info["served"].sum()),
                               ("requests", info["requests"].sum()), ("terminal", terminated), ("timeout", truncated),
                               ("episode", e), ("t", info["t"])):
                rows[key].append(value)
            obs = next_obs
    dtypes = {"flows": np.int32, "idle": np.int64, "desired": np.int64, "served": np.int64, "requests": np.int64,
              "terminal": bool, "timeout": bool, "episode": np.int64, "t": np.int64, "action": np.float32}
    arrays = {k: np.asarray(v, dtype=dtypes.get(k, np.float64)) for k, v in rows.items()}
    if not rows["reward"]:
        a = env.action_space.shape[0]
        arrays.update(obs=np.zeros((0, env.layout.size)), next_obs=np.zeros((0, env.layout.size)),
                      idle=np.zeros((0, n), np.int64), flows=np.zeros((0, n, n), np.int32),
                      action=np.zeros((0, a), np.float32), desired=np.zeros((0, n), np.int64))
    meta = {"scenario": env.scenario.name, "env": type(env).__name__, "level": env.level,
            "policy": getattr(policy, "name", type(policy).__name__), "episodes": int(episodes), "seed": seed,
            "regions": n, "vehicles": env.scenario.vehicles, "lookahead": env.layout.lookahead}
    return RoutingLog(meta=meta, **arrays)
