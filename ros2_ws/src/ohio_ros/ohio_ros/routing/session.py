"""
The routing simulator node's world, without middleware: a fleet advanced one step at a time.

A ``RoutingSession`` wraps ``ohio_core.routing.env.FlatRoutingEnv`` (the simulator with
per-edge flows). Its state after a step's matching is a ``RoutingState``; ``step(flows)`` applies
feasible integer flows (``check`` refuses others with the reason) or holds (``None``: zero
flows), advances to the next step and matches it. After the last step of an episode the next
episode starts, its requests drawn from ``episode_seed(seed, episode)`` as ``rollout`` draws
them, so a loop that applies the flows ``RoutingEnv`` would compute earns the same rewards.
"""

from dataclasses import dataclass

import numpy as np
from ohio_core.routing.env import episode_seed, FlatRoutingEnv
from ohio_core.routing.scenario import Scenario, ScenarioError, synthetic
from ohio_core.routing.scenario_io import load_scenario
from ohio_core.routing.sim import check_flows
from ohio_ros.config import ParameterError
from ohio_ros.routing.config import RoutingSimNodeConfig
from ohio_ros.routing.convert import HOLD_NONE, RoutingState

#: steps per episode of a synthetic city when the parameter ``horizon`` is 0
SYNTHETIC_HORIZON = 60


def make_scenario(config: RoutingSimNodeConfig) -> Scenario:
    """Build the scenario the parameters describe; ParameterError naming a bad parameter."""
    horizon = config.horizon or None
    vehicles = config.vehicles or None
    if config.scenario_file:
        try:
            return load_scenario(config.scenario_file, horizon=horizon, vehicles=vehicles)
        except ScenarioError as exc:
            raise ParameterError(f"parameter 'scenario_file': {exc}") from None
    try:
        return synthetic(config.regions, vehicles, config.layout,
                         horizon=horizon or SYNTHETIC_HORIZON, seed=config.seed)
    except ScenarioError as exc:
        raise ParameterError(f'synthetic scenario (regions, layout, horizon, vehicles): '
                             f'{exc}') from None


@dataclass
class EpisodeRecord:
    """What happened in one episode (for the node's report)."""

    episode: int
    steps: int = 0
    return_: float = 0.0
    requests: int = 0
    served: int = 0
    held: int = 0


class RoutingSession:
    """A scenario's fleet over episodes, stepped by flows."""

    def __init__(self, scenario: Scenario, lookahead: int, seed: int):
        self.scenario = scenario
        self.env = FlatRoutingEnv(scenario, lookahead)
        self.seed = int(seed)
        self.episode = -1
        self.records: list[EpisodeRecord] = []
        self.obs = None
        self.next_episode()

    @property
    def regions(self) -> int:
        """Return n, the number of regions."""
        return self.scenario.regions

    @property
    def t(self) -> int:
        """Return the current step of the episode."""
        return self.env.sim.t

    def next_episode(self) -> None:
        """Start the next episode (its step 0 matched)."""
        self.episode += 1
        self.obs, _ = self.env.reset(seed=episode_seed(self.seed, self.episode))
        self.records.append(EpisodeRecord(self.episode))

    def state(self) -> RoutingState:
        """Return the state of the current step (after its matching)."""
        return RoutingState(self.episode, self.t, self.env.sim.idle.copy(), self.obs.copy(),
                            self.env.layout.lookahead)

    def check(self, flows) -> np.ndarray:
        """Return feasible integer flows (n, n) for the idle vehicles; else ValueError (why)."""
        return check_flows(flows, self.env.sim.idle)

    def step(self, flows, hold: int = HOLD_NONE) -> dict:
        """
        Apply ``flows`` (checked; None: zero flows) and advance; return the step's info.

        ``hold`` (``routing_convert.HOLD_*``) is recorded in the info. The info has the fields
        of ``routing_convert.STEP_INFO_FIELDS``; the episode ends after its last step
        (``episode_done``), and the next one starts with ``next_episode``.
        """
        sim, n = self.env.sim, self.regions
        x = np.zeros((n, n), dtype=np.int64) if flows is None else self.check(flows)
        episode, t = self.episode, self.t
        self.obs, reward, _, truncated, info = self.env.step(x.reshape(-1).astype(float))
        if not np.array_equal(info['flows'], x):          # the projection keeps feasible flows
            raise RuntimeError('the simulator changed feasible flows')
        idle, moving = int(sim.idle.sum()), sim.in_transit()
        if idle + moving != self.scenario.vehicles:
            raise RuntimeError(f'vehicles not conserved: {idle} idle + {moving} on their way != '
                               f'{self.scenario.vehicles}')
        rec = self.records[-1]
        rec.steps += 1
        rec.return_ += float(reward)
        rec.requests += int(info['requests'].sum())
        rec.served += int(info['served'].sum())
        rec.held += int(hold != HOLD_NONE)
        return {'episode': episode, 'step': t, 'reward': float(reward),
                'revenue': info['revenue'], 'trip_cost': info['trip_cost'],
                'rebalancing_cost': info['rebalancing_cost'],
                'requests': int(info['requests'].sum()), 'served': int(info['served'].sum()),
                'moved': int(x.sum()), 'hold': int(hold), 'idle_next': idle,
                'in_transit_next': moving, 'done': bool(truncated)}

    @property
    def episode_done(self) -> bool:
        """Whether the current episode has reached its horizon."""
        return self.env.sim.done

    def report(self) -> dict:
        """Scenario and episodes so far: steps, return, requests, served, held steps."""
        s = self.scenario
        return {'scenario': s.name, 'regions': s.regions, 'vehicles': s.vehicles,
                'horizon': s.horizon, 'lookahead': self.env.layout.lookahead, 'seed': self.seed,
                'episodes': [{'episode': r.episode, 'steps': r.steps, 'return': r.return_,
                              'requests': r.requests, 'served': r.served, 'held': r.held}
                             for r in self.records]}
