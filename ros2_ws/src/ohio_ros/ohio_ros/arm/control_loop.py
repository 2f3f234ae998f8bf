"""
The controller node's loop logic, without middleware: inputs, safety rules, one step.

Rules (times are the node clock, in ns):

- no command until a joint state has arrived, and none while the latest is older than
  ``state_timeout`` (the robot driver stopped; a command from an old state is not safe);
- a goal is used while it is at most ``goal_timeout`` old (by arrival); without one, the loop
  holds position: it tracks the TCP pose of the first state after the goal went missing or
  stale, with the same controller law (so torques stay within the same limits);
- non-finite or malformed inputs are rejected and counted; they never replace good ones; so are
  finite ones beyond the physical bounds (``ArmModel.check_state``, ``PoseGoal``): 'implausible';
- every command is finite and within the torque limits. Should the controller fail or return
  a non-finite torque, the command is gravity compensation with joint damping instead (counted),
  g(q) - d qd from the controller's model: -d qd where the robot driver compensates gravity
  (``gravity_compensation: driver``, whose model has none), so the hold never doubles it;
- with a ``rate_limiter`` (``controllers.rate_limit.TorqueRateLimiter``), every command changes by
  at most the torque-rate limit per period, and the first one ramps from zero; so does the first
  after a period without a command (the limiter is reset).
"""

from dataclasses import dataclass, field
from time import perf_counter_ns

from controllers.goals import ImplausibleInputError, NonFiniteInputError, PoseGoal
import numpy as np

TRACK, HOLD = 'track', 'hold'


@dataclass
class Counters:
    """Cumulative event counts of a loop (reported in /diagnostics)."""

    ticks: int = 0
    commands: int = 0
    ticks_without_state: int = 0
    ticks_state_stale: int = 0
    ticks_holding: int = 0
    states_received: int = 0
    states_rejected: int = 0
    goals_received: int = 0
    goals_rejected_nonfinite: int = 0
    goals_rejected_invalid: int = 0
    saturated_commands: int = 0
    fallback_commands: int = 0
    rate_limited_commands: int = 0
    rejected: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Command:
    """One step's output: the torque and how it came about."""

    tau: np.ndarray
    mode: str                 # TRACK or HOLD
    saturated: bool
    state_stamp: int          # header stamp (ns) of the joint state it was computed from
    state_arrival: int = 0    # when that joint state arrived (ns, node clock)
    fallback: bool = False


class ControlLoop:
    """Safety rules around a controller with ``compute(q, qd, goal)`` (OSC or QP)."""

    def __init__(self, controller, goal_timeout: float, state_timeout: float,
                 hold_damping: float = 10.0, rate_limiter=None):
        self.controller = controller
        self.rate_limiter = rate_limiter
        self.model = controller.model
        self.tau_max = np.asarray(controller.tau_max, dtype=float)
        self.goal_timeout_ns = int(round(goal_timeout * 1e9))
        self.state_timeout_ns = int(round(state_timeout * 1e9))
        self.hold_damping = float(hold_damping)
        self.counters = Counters()
        self.state = None           # (arrival ns, q, qd, stamp ns)
        self.goal = None            # (arrival ns, PoseGoal)
        self.hold_goal = None       # PoseGoal latched when holding began
        self.mode = None            # mode of the last step (None: no command)
        self.law_ns = 0             # time the last step spent in controller.compute (ns)
        self.reason = 'no joint state yet'

    # -- inputs --------------------------------------------------------------------------------
    def on_state(self, now: int, q, qd, stamp: int) -> bool:
        """
        Take a joint state that arrived at ``now``; return whether it was taken.

        One beyond the physical bounds (a corrupt reading) is rejected and counted instead.
        """
        try:
            q, qd = self.model.check_state(q, qd)
        except NonFiniteInputError as exc:
            implausible = isinstance(exc, ImplausibleInputError)
            self.reject('state', 'implausible' if implausible else 'nonfinite')
            return False
        self.counters.states_received += 1
        self.state = (int(now), q, qd, int(stamp))
        return True

    def on_goal(self, now: int, goal: PoseGoal) -> None:
        """Take a goal (already validated) that arrived at ``now``; a fresh goal ends holding."""
        self.counters.goals_received += 1
        self.goal = (int(now), goal)
        self.hold_goal = None

    def reject(self, what: str, reason: str) -> None:
        """Count an input that was refused (``what``: 'state' or 'goal'; ``reason``: why)."""
        c = self.counters
        if what == 'state':
            c.states_rejected += 1
        elif reason == 'nonfinite':
            c.goals_rejected_nonfinite += 1
        else:
            c.goals_rejected_invalid += 1
        key = f'{what}: {reason}'
        c.rejected[key] = c.rejected.get(key, 0) + 1

    # -- one step ------------------------------------------------------------------------------
    def goal_fresh(self, now: int) -> bool:
        """Whether a goal arrived at most ``goal_timeout`` ago."""
        return self.goal is not None and now - self.goal[0] <= self.goal_timeout_ns

    def step(self, now: int) -> Command | None:
        """Return the command for this period, or None (no usable joint state)."""
        c = self.counters
        c.ticks += 1
        if self.state is None:
            c.ticks_without_state += 1
            self.mode, self.reason = None, 'no joint state yet'
            return self._no_command()
        arrived, q, qd, stamp = self.state
        if now - arrived > self.state_timeout_ns:
            c.ticks_state_stale += 1
            self.mode, self.reason = None, 'joint states stale'
            return self._no_command()
        if self.goal_fresh(now):
            goal, mode = self.goal[1], TRACK
            self.reason = 'tracking goal'
        else:
            if self.hold_goal is None:
                p, R = self.model.tcp_pose(q)
                self.hold_goal = PoseGoal(p, R)
            goal, mode = self.hold_goal, HOLD
            self.reason = 'holding: no goal yet' if self.goal is None else 'holding: goal stale'
            c.ticks_holding += 1
        tau, saturated, fallback = self._compute(q, qd, goal)
        if self.rate_limiter is not None:
            limited = self.rate_limiter(tau)
            c.rate_limited_commands += bool(np.any(limited != tau))
            tau = limited
        c.commands += 1
        c.saturated_commands += saturated
        c.fallback_commands += fallback
        self.mode = mode
        return Command(tau=tau, mode=mode, saturated=saturated, state_stamp=stamp,
                       state_arrival=arrived, fallback=fallback)

    def _no_command(self) -> None:
        if self.rate_limiter is not None:
            self.rate_limiter.reset()
        return None

    def _compute(self, q, qd, goal) -> tuple[np.ndarray, bool, bool]:
        t0 = perf_counter_ns()
        try:
            out = self.controller.compute(q, qd, goal)
            self.law_ns = perf_counter_ns() - t0
            tau = np.asarray(out.tau, dtype=float)
            saturated = bool(np.any(out.saturated))
            if tau.shape == self.tau_max.shape and np.isfinite(tau).all():
                clipped = np.clip(tau, -self.tau_max, self.tau_max)
                return clipped, saturated or bool(np.any(clipped != tau)), False
        except (ArithmeticError, ValueError, np.linalg.LinAlgError):
            self.law_ns = perf_counter_ns() - t0
        tau = self.model.gravity(q) - self.hold_damping * qd
        if not np.isfinite(tau).all():
            tau = np.zeros_like(self.tau_max)
        clipped = np.clip(tau, -self.tau_max, self.tau_max)
        return clipped, bool(np.any(clipped != tau)), True
