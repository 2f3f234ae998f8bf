"""The one interface every inverse method implements, and the goal bookkeeping they share."""

from __future__ import annotations

import enum
import multiprocessing
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from controllers.goals import action_from_pose
from controllers.workspace import clamp_position, goal_bounds, has_goal_bounds


class Status(enum.IntEnum):
    """Per-segment outcome. Anything but OK is reported and counted, never silently used."""

    OK = 0
    ILL_POSED = 1            # too few unsaturated torque entries to pin the goal down
    OUT_OF_RANGE = 2         # orientation error beyond the closed form's 90 degrees
    NON_FINITE = 3           # NaN/inf in the segment's data
    NOT_CONVERGED = 4        # iterative method ran out of iterations while still improving
    SINGULAR = 5             # the controller's task inertia was near-singular at the segment


@dataclass(frozen=True)
class Segments:
    """k consecutive control periods per segment, batched: state at the start of each period and
    the torque applied over it; ``q_next``/``qd_next`` is the state after the last period."""

    q: np.ndarray        # (N, k, n), n arm joints
    qd: np.ndarray       # (N, k, n)
    tau: np.ndarray      # (N, k, n)
    q_next: np.ndarray | None = None    # (N, n)
    qd_next: np.ndarray | None = None   # (N, n)

    def __post_init__(self):
        for name in ("q", "qd", "tau"):
            a = getattr(self, name)
            if a is not None and (a.ndim != 3 or a.shape[2] < 1):
                raise ValueError(f"Segments.{name} must have shape (N, k, n), got {a.shape}")
        if self.q.shape != self.qd.shape or (self.tau is not None and self.tau.shape != self.q.shape):
            raise ValueError(f"Segments arrays disagree: q {self.q.shape}, qd {self.qd.shape}, "
                             f"tau {None if self.tau is None else self.tau.shape}")

    def __len__(self) -> int:
        return self.q.shape[0]

    @property
    def k(self) -> int:
        return self.q.shape[1]

    def finite(self) -> np.ndarray:
        ok = np.isfinite(self.q).all((1, 2)) & np.isfinite(self.qd).all((1, 2))
        if self.tau is not None:
            ok &= np.isfinite(self.tau).all((1, 2))
        return ok

    def sanitized(self, need_next: bool = False) -> tuple[np.ndarray, "Segments"]:
        """(finite, a copy with every non-finite segment zeroed): the methods compute on all segments
        at once and flag the zeroed ones NON_FINITE. ``need_next``: the next state must be finite too."""
        finite = self.finite()
        if need_next:
            finite &= np.isfinite(self.q_next).all(-1) & np.isfinite(self.qd_next).all(-1)
        zero = lambda a: None if a is None else np.where(finite.reshape((-1,) + (1,) * (a.ndim - 1)), a, 0.0)  # noqa: E731
        return finite, Segments(zero(self.q), zero(self.qd), zero(self.tau), zero(self.q_next), zero(self.qd_next))

    def take(self, idx) -> "Segments":
        pick = (lambda a: None if a is None else a[idx])
        return Segments(self.q[idx], self.qd[idx], pick(self.tau), pick(self.q_next), pick(self.qd_next))


@dataclass
class InverseResult:
    """One goal per segment: the absolute TCP pose and the deployment controller's normalized action.

    ``residual`` is the RMS torque mismatch (N m) over the segment's k periods and n joints of the
    recovered goal pushed through the deployment controller's clipped law at each logged state
    (``segment_terms.segment_residual``; the state mismatch after each period for state matching,
    0 for the naive baseline); ``cond`` the conditioning of the solve; ``clipped`` marks actions
    that left [-1, 1] and were clipped, or goals outside the deployment controller's workspace that
    were clamped into it (``finish``).
    """

    goal_p: np.ndarray       # (N, 3)
    goal_R: np.ndarray       # (N, 3, 3)
    action: np.ndarray       # (N, 6) in [-1, 1]
    residual: np.ndarray     # (N,)
    status: np.ndarray       # (N,) Status values
    cond: np.ndarray         # (N,)
    clipped: np.ndarray      # (N,) bool
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        return self.status == Status.OK

    def counts(self) -> dict[str, int]:
        return {s.name.lower(): int(np.sum(self.status == s)) for s in Status}


def finish(goal_p: np.ndarray, goal_R: np.ndarray, p0: np.ndarray, R0: np.ndarray, output_max,
           residual: np.ndarray, status: np.ndarray, cond: np.ndarray, info: dict | None = None,
           config=None) -> InverseResult:
    """Express goals as the deployment controller's normalized actions (a delta from the TCP pose
    (p0, R0) when the goal is set, divided by ``output_max``), clip to [-1, 1] and count. With the
    deployment ``config``, a goal outside its workspace (``controllers.workspace``), which that
    controller would have clamped, is clamped into it and counted the same way, in ``clipped``."""
    outside = np.zeros(len(goal_p), bool)
    if config is not None and has_goal_bounds(config):
        with np.errstate(invalid="ignore"):
            goal_p, outside = clamp_position(goal_p, *goal_bounds(config))
    with np.errstate(invalid="ignore"):
        raw = action_from_pose(goal_p, goal_R, p0, R0, output_max)
    clipped = np.any(np.abs(raw) > 1.0 + 1e-9, axis=-1) | outside
    bad = ~np.isfinite(raw).all(-1)
    return InverseResult(goal_p=goal_p, goal_R=goal_R, action=np.clip(np.nan_to_num(raw), -1.0, 1.0),
                         residual=residual, status=np.where(bad & (status == Status.OK), Status.NON_FINITE, status),
                         cond=cond, clipped=clipped & ~bad, info=info or {})


#: name -> ``invert`` function of every method; each method module registers itself (``register``) and
#: ``ohio_core.inverse`` imports them all
METHODS: dict[str, Callable[..., InverseResult]] = {}


def register(name: str):
    """Decorator of a method's ``invert(segments, controller, **options) -> InverseResult``: adds it to
    ``METHODS`` under ``name``."""
    def deco(fn):
        if METHODS.setdefault(name, fn) is not fn:
            raise ValueError(f"inverse method {name!r} is already registered by {METHODS[name].__module__}")
        return fn
    return deco


def get_method(name: str) -> Callable[..., InverseResult]:
    if name not in METHODS:
        raise ValueError(f"unknown inverse method {name!r}; available: {sorted(METHODS)}")
    return METHODS[name]


def invert(method: str, segments: Segments, controller, workers: int = 1, **options) -> InverseResult:
    """Run ``method`` over all segments; with ``workers`` > 1, over contiguous chunks in forked
    processes (each method is a pure function of its chunk, so the result is the same)."""
    fn = get_method(method)
    n = len(segments)
    if workers <= 1 or n < 2 * MIN_CHUNK:
        return fn(segments, controller, **options)
    bounds = np.linspace(0, n, min(workers, n // MIN_CHUNK) + 1).astype(int)
    global _FORK_JOB
    _FORK_JOB = (fn, segments, controller, options)
    try:
        with multiprocessing.get_context("fork").Pool(len(bounds) - 1) as pool:
            parts = pool.map(_run_chunk, list(zip(bounds[:-1], bounds[1:])))
            pool.close()            # the workers exit on their own: no SIGTERM (the CLI's handler) on leaving
            pool.join()
    finally:
        _FORK_JOB = None
    return concatenate_results(parts)


MIN_CHUNK = 5000
_FORK_JOB = None


def _run_chunk(bounds: tuple[int, int]) -> InverseResult:
    fn, segments, controller, options = _FORK_JOB
    return fn(segments.take(slice(*bounds)), controller, **options)


def concatenate_results(parts: list[InverseResult]) -> InverseResult:
    cat = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    info = dict(parts[0].info)
    for key, value in parts[0].info.items():
        if isinstance(value, np.ndarray):
            info[key] = np.concatenate([p.info[key] for p in parts])
    return InverseResult(goal_p=cat("goal_p"), goal_R=cat("goal_R"), action=cat("action"), residual=cat("residual"),
                         status=cat("status"), cond=cat("cond"), clipped=cat("clipped"), info=info)
