"""Streams at their own rates -> rows at the control period, by stated rules (pure functions).

A robot driver's log has joint states at the driver's rate (often 100-1000 Hz, with jitter) and
commands at the controller's. Rows are placed on a grid ``t_i = t_0 + i T`` (T = control period):

- states, **linear interpolation** between the two joint states bracketing ``t_i``:
  ``x(t_i) = x_a + (t_i - t_a) / (t_b - t_a) (x_b - x_a)``; alignment error ``min(t_i - t_a, t_b - t_i)``;
- commanded efforts, **zero-order hold**: the latest command at or before ``t_i``; alignment error its
  age ``t_i - t_c``; older than ``max_age`` counts as missing;
- measured efforts: the first joint state in ``(t_i, t_i + T]`` (the torque applied over the period);
- velocities missing from the log: **Savitzky-Golay derivative** of the resampled positions (window
  5 rows, quadratic; ``np.gradient`` for pieces shorter than 5 rows), per piece.

A piece is a stretch of joint states with no gap longer than ``max_gap``; grids never span a gap.
"""

from __future__ import annotations

import numpy as np

from ohio_core import lazy

SG_WINDOW = 5
SG_ORDER = 2
VELOCITY_RULE = (f"Savitzky-Golay derivative of the positions at the control period (window {SG_WINDOW} rows, "
                 f"polynomial order {SG_ORDER}), per piece")


def pieces(ns: np.ndarray, max_gap_ns: int) -> list[tuple[int, int]]:
    """Index ranges [a, b) of ``ns`` (sorted) with no step longer than ``max_gap_ns``."""
    if len(ns) == 0:
        return []
    cut = np.flatnonzero(np.diff(ns) > max_gap_ns) + 1
    edges = np.r_[0, cut, len(ns)]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def interpolate(ns: np.ndarray, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x(t), alignment error in ns) by linear interpolation between the samples bracketing each t
    (``ns[0] <= t <= ns[-1]``)."""
    b = np.clip(np.searchsorted(ns, t, "left"), 0, len(ns) - 1)
    a = np.clip(b - 1, 0, len(ns) - 1)
    exact = ns[b] == t
    a = np.where(exact, b, a)
    span = (ns[b] - ns[a]).astype(float)
    w = np.divide((t - ns[a]).astype(float), span, out=np.zeros(len(t)), where=span > 0)
    value = x[a] + w[:, None] * (x[b] - x[a])
    err = np.minimum(t - ns[a], ns[b] - t)
    return value, err


def hold(ns: np.ndarray, x: np.ndarray, t: np.ndarray, max_age_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(x at the latest sample at or before each t, its age in ns); NaN (and age -1) where there is
    none or it is older than ``max_age_ns``."""
    i = np.searchsorted(ns, t, "right") - 1
    ok = i >= 0
    age = np.where(ok, t - ns[np.maximum(i, 0)], -1)
    ok &= age <= max_age_ns
    value = np.where(ok[:, None], x[np.maximum(i, 0)], np.nan) if len(ns) else np.full((len(t), x.shape[1]), np.nan)
    return value, np.where(ok, age, -1)


def next_within(ns: np.ndarray, x: np.ndarray, t: np.ndarray, window_ns: int) -> np.ndarray:
    """x at the first sample in (t, t + window]; NaN where there is none."""
    i = np.searchsorted(ns, t, "right")
    ok = i < len(ns)
    ok[ok] &= ns[i[ok]] <= t[ok] + window_ns
    if not len(ns):
        return np.full((len(t), x.shape[1]), np.nan)
    return np.where(ok[:, None], x[np.minimum(i, len(ns) - 1)], np.nan)


def differentiate(q: np.ndarray, period: float, piece: np.ndarray) -> np.ndarray:
    """dq/dt of rows sampled every ``period`` s, per piece (rows of one piece are consecutive)."""
    qd = np.full_like(q, np.nan)
    edges = np.flatnonzero(np.r_[True, piece[1:] != piece[:-1], True])
    for a, b in zip(edges[:-1], edges[1:]):
        n = b - a
        if n >= SG_WINDOW:
            qd[a:b] = lazy.scipy_signal().savgol_filter(q[a:b], SG_WINDOW, SG_ORDER, deriv=1, delta=period, axis=0,
                                                        mode="interp")
        elif n >= 2:
            qd[a:b] = np.gradient(q[a:b], period, axis=0)
    return qd


def grid(start_ns: int, end_ns: int, period_ns: int) -> np.ndarray:
    """``start + i T`` for i = 0, 1, ... while <= end."""
    if end_ns < start_ns:
        return np.zeros(0, np.int64)
    return start_ns + period_ns * np.arange((end_ns - start_ns) // period_ns + 1, dtype=np.int64)
