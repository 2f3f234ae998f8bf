"""
Timing statistics of a periodic loop: per diagnostics window, and a full log for benchmarks.

Per tick the loop records the wall-clock time of the tick (monotonic ns), the compute time
(the tick's own work, from the start of its callback to the command published), and, when it
published a command, the latency: node-clock time of publishing minus the header stamp of the
joint state the command was computed from; the log also keeps the part of it spent before that
joint state arrived (``arrival_ns``: arrival minus stamp), the tick's ``STAGES`` (``stage_ns``)
and the process's CPU time over the logged ticks (``cpu_ns``, ``wall_ns``).
"""

import time

import numpy as np

from ohio_ros.json_file import write_json


#: the parts of a tick in the log (ns each; None where the tick had none):
#: wake: how late the timer's callback started (executor and OS wake-up);
#: take: taking the newest joint states waiting in the queue (DDS take, conversion, checks);
#: step: ``ControlLoop.step`` (the safety rules and the control law);
#: law: the control law alone (``controller.compute``), inside step;
#: publish: filling and publishing the effort command.
STAGES = ('wake', 'take', 'step', 'law', 'publish')


def _percentiles(values, scale: float) -> tuple[float, float, float]:
    if not len(values):
        return float('nan'), float('nan'), float('nan')
    a = np.asarray(values, dtype=float) * scale
    p50, p99 = np.percentile(a, [50, 99])
    return float(p50), float(p99), float(a.max())


class LoopStats:
    """Window statistics (reset by ``window()``) and, optionally, every tick kept for a log."""

    def __init__(self, period: float, keep_log: bool = False, max_log: int = 1_000_000):
        self.period_ns = int(round(period * 1e9))
        self.keep_log = keep_log
        self.max_log = max_log
        self.log = {'tick_ns': [], 'compute_ns': [], 'latency_ns': [], 'arrival_ns': [],
                    'stage_ns': {name: [] for name in STAGES}}
        self._last_tick = None
        self._cpu0 = self._wall0 = None
        self._reset_window()

    def _reset_window(self):
        self._periods, self._compute, self._latency = [], [], []
        self._saturated = 0
        self._commands = 0

    def record(self, tick_ns: int, compute_ns: int, latency_ns, saturated: bool,
               arrival_ns=None, stages=None) -> None:
        """
        One tick: wall time, compute time, latency (None if no command was published).

        ``stages``: the tick's parts in ``STAGES`` order (ns, or None where it had none).
        """
        if self._last_tick is not None:
            self._periods.append(tick_ns - self._last_tick)
        self._last_tick = tick_ns
        self._compute.append(compute_ns)
        if latency_ns is not None:
            self._latency.append(latency_ns)
            self._commands += 1
            self._saturated += bool(saturated)
        if self.keep_log and len(self.log['tick_ns']) < self.max_log:
            self.log['tick_ns'].append(int(tick_ns))
            self.log['compute_ns'].append(int(compute_ns))
            self.log['latency_ns'].append(None if latency_ns is None else int(latency_ns))
            self.log['arrival_ns'].append(None if arrival_ns is None else int(arrival_ns))
            for name, ns in zip(STAGES, stages or (None,) * len(STAGES)):
                self.log['stage_ns'][name].append(None if ns is None else int(ns))
            if self._cpu0 is None:
                self._cpu0, self._wall0 = time.process_time_ns(), time.monotonic_ns()

    def window(self) -> dict:
        """Statistics since the last call (ms), then start a new window."""
        p50, p99, pmax = _percentiles(self._periods, 1e-6)
        err = np.abs(np.asarray(self._periods, dtype=float) - self.period_ns)
        _, e99, _ = _percentiles(err, 1e-6)
        c50, c99, _ = _percentiles(self._compute, 1e-6)
        _, l99, lmax = _percentiles(self._latency, 1e-6)
        out = {
            'ticks': len(self._compute),
            'loop_period_ms_p50': p50, 'loop_period_ms_p99': p99, 'loop_period_ms_max': pmax,
            'period_error_ms_p99': e99,
            'compute_ms_p50': c50, 'compute_ms_p99': c99,
            'latency_ms_p99': l99, 'latency_ms_max': lmax,
            'saturated_fraction': self._saturated / self._commands if self._commands else 0.0,
        }
        self._reset_window()
        return out

    def write_log(self, path) -> None:
        """Write the kept ticks as JSON (with the nominal period, CPU, wall time) to ``path``."""
        cpu = wall = None
        if self._cpu0 is not None:
            cpu = time.process_time_ns() - self._cpu0
            wall = time.monotonic_ns() - self._wall0
        write_json(path, dict(self.log, period_ns=self.period_ns, cpu_ns=cpu, wall_ns=wall))
