"""
When a controller driven by its joint states ticks (``controller_node``, ``tick_on: joint_state``).

The loop ticks on the first joint state whose stamp reaches the next due time,

    t_k = t_(k-1) + T,    tick on the state with stamp s where s >= t_k - tolerance,

so the command follows the state it was computed from at once (no wait for a timer of its own)
and the periods stay on one grid whatever the state rate (a state every 2 ms at 500 Hz, every
1 ms from a Franka): a late or missing state delays one tick, not the ones after it. A stamp
more than a period past its due time, or one that went back in time (a driver restarted),
starts a new grid there. Without states the node's watchdog timer ticks instead.
"""


class StateTickSchedule:
    """``due(stamp_ns)``: whether the state of ``stamp_ns`` is the one to tick on."""

    def __init__(self, period_ns: int, tolerance_ns: int = 500_000):
        if period_ns <= 0 or not 0 <= tolerance_ns < period_ns:
            raise ValueError(f'period must be > 0 and tolerance in [0, period), got {period_ns} '
                             f'and {tolerance_ns} ns')
        self.period_ns, self.tolerance_ns = int(period_ns), int(tolerance_ns)
        self.next_ns = None
        self.resyncs = 0

    def due(self, stamp_ns: int) -> bool:
        """Whether to tick on a state stamped ``stamp_ns`` (and advance the grid if so)."""
        if self.next_ns is None or stamp_ns < self.next_ns - 2 * self.period_ns:
            self.resyncs += self.next_ns is not None
            self.next_ns = stamp_ns + self.period_ns
            return True
        if stamp_ns < self.next_ns - self.tolerance_ns:
            return False
        self.next_ns += self.period_ns
        if stamp_ns >= self.next_ns:
            self.resyncs += 1
            self.next_ns = stamp_ns + self.period_ns
        return True
