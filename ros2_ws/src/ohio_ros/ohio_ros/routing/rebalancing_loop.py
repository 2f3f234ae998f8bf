"""
The rebalancing node's logic, without middleware: goals in, flows out, with the safety rules.

Rules:

- a goal (desired distribution) is made for the state of one step (episode, step); a goal that
  carries no step is taken for the latest state received (or the first one to come);
- weights that are non-finite, negative or of the wrong size are rejected and counted; they
  never replace the latest good goal;
- for the state of step t the goal made for step s of the same episode is used while
  ``0 <= t - s <= max_goal_age_steps``; an older goal (or one of another episode) is stale: the
  flows are zero (the fleet holds), counted;
- before the first goal has arrived there are no flows at all (counted): the simulator offers
  its state again or holds after its step timeout, and the policy answers a state offered again
  with its goal again, so a goal lost while the nodes discover each other is sent once more;
- flows are those of ``RoutingEnv.step``: the weights are normalized (all zero: uniform), the
  controller's ``goal_from_action`` turns them into desired counts of the idle vehicles and
  ``act`` into flows (``controllers.rebalancing.Rebalancer``: the LP); should it fail, the
  flows are zero, counted;
- without the travel times of the network there are no flows.
"""

from dataclasses import dataclass, field

import numpy as np
from ohio_ros.routing.convert import RoutingState

#: how the flows of a state came about
CURRENT = 'current_goal'            # the goal made for this state
OLDER = 'older_goal'                # an older goal, within max_goal_age_steps
STALE = 'stale_goal'                # zero flows: the latest goal is too old
NO_GOAL = 'no_goal'                 # no flows: no goal has arrived yet
FAILED = 'lp_failed'                # zero flows: the controller failed


class GoalError(ValueError):
    """A goal cannot be used (the message names why)."""


@dataclass
class Goal:
    """Normalized distribution and the step of the state it was made for (None: not yet known)."""

    distribution: np.ndarray
    episode: int | None
    step: int | None


@dataclass
class Counters:
    """Cumulative event counts (reported in /diagnostics)."""

    states: int = 0
    goals_received: int = 0
    goals_rejected: int = 0
    flows_published: int = 0
    states_without_travel_time: int = 0
    by_status: dict = field(default_factory=dict)


class RebalancingLoop:
    """Latest goal, its age in steps, and the flows for a state."""

    def __init__(self, controller, max_goal_age_steps: int):
        for method in ('goal_from_action', 'act'):
            if not callable(getattr(controller, method, None)):
                raise TypeError(f'controller must have a {method}() method')
        self.controller = controller
        self.max_age = int(max_goal_age_steps)
        self.travel_time = None
        self.goal: Goal | None = None
        self.last_state: tuple[int, int] | None = None
        self.regions: int | None = None
        self.counters = Counters()

    def set_travel_time(self, travel_time) -> None:
        """Use the network's travel times (n, n) from now on."""
        self.travel_time = np.asarray(travel_time, dtype=np.int64)

    def reject_goal(self) -> None:
        """Count a goal message that could not even be read."""
        self.counters.goals_received += 1
        self.counters.goals_rejected += 1

    def on_goal(self, weights, stamp: tuple[int, int] | None) -> Goal:
        """
        Take a goal (weights made for the state ``stamp``, or None: the latest state).

        Raises GoalError, counted, for weights that are not finite, negative or of another size
        than the states; the previous goal stays. All-zero weights mean uniform.
        """
        c = self.counters
        c.goals_received += 1
        w = np.asarray(weights, dtype=float).reshape(-1)
        problem = None
        if not np.isfinite(w).all():
            problem = f'weights are not finite: {w.tolist()}'
        elif (w < 0).any():
            problem = f'weights must be >= 0; min is {w.min()}'
        elif self.regions is not None and w.size != self.regions:
            problem = f'{w.size} weights for {self.regions} regions'
        if problem:
            c.goals_rejected += 1
            raise GoalError(problem)
        p = w / w.sum() if w.sum() > 0 else np.full(w.shape, 1.0 / w.size)
        episode, step = stamp if stamp is not None else (self.last_state or (None, None))
        self.goal = Goal(p, episode, step)
        return self.goal

    def has_current_goal(self, state: RoutingState) -> bool:
        """Whether the goal made for this very state has arrived."""
        g = self.goal
        return g is not None and (g.episode is None or (g.episode, g.step) == state.stamp)

    def goal_status(self, state: RoutingState) -> str:
        """Return CURRENT, OLDER (within ``max_goal_age_steps``), STALE or NO_GOAL."""
        g = self.goal
        if g is None:
            return NO_GOAL
        if g.distribution.size != state.regions:
            return STALE
        if g.episode is None:
            return CURRENT
        age = state.step - g.step
        if g.episode != state.episode or age < 0 or age > self.max_age:
            return STALE
        return CURRENT if age == 0 else OLDER

    def on_state(self, state: RoutingState) -> None:
        """Note a new state (goals without a step are taken for it)."""
        self.counters.states += 1
        self.regions = state.regions
        self.last_state = state.stamp
        g = self.goal
        if g is not None and g.episode is None:
            g.episode, g.step = state.stamp

    def flows(self, state: RoutingState) -> tuple[np.ndarray | None, str]:
        """
        Flows (n, n) int for ``state`` and how they came about (CURRENT, OLDER, STALE, ...).

        None (no flows at all) while the travel times are unknown or before the first goal.
        """
        c = self.counters
        if self.travel_time is None or self.travel_time.shape != (state.regions,) * 2:
            c.states_without_travel_time += 1
            return None, 'no_travel_time'
        n = state.regions
        status = self.goal_status(state)
        if status == NO_GOAL:
            c.by_status[status] = c.by_status.get(status, 0) + 1
            return None, status
        flows = np.zeros((n, n), dtype=np.int64)
        if status in (CURRENT, OLDER):
            try:
                desired = self.controller.goal_from_action(self.goal.distribution, state.idle)
                flows = np.asarray(self.controller.act(state.idle, desired, self.travel_time),
                                   dtype=np.int64)
            except (ValueError, RuntimeError):
                flows, status = np.zeros((n, n), dtype=np.int64), FAILED
        c.by_status[status] = c.by_status.get(status, 0) + 1
        c.flows_published += 1
        return flows, status
