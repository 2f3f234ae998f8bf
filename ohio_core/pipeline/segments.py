"""Cut low-level trajectories into high-level segments of k control periods.

A segment starts at a row whose step is a multiple of k and spans k consecutive rows of one
episode (steps s, s+1, ..., s+k-1, no gap). Everything that cannot form one is counted by reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ohio_core.data.trajectory import Trajectories
from ohio_core.inverse import Segments


@dataclass
class SegmentIndex:
    start: np.ndarray          # (N,) row of each segment's first period
    dropped: dict[str, int]    # reason -> rows not covered by any segment


def segment_starts(traj: Trajectories, k: int) -> SegmentIndex:
    n = len(traj)
    if n == 0:
        return SegmentIndex(np.zeros(0, int), {})
    starts = np.flatnonzero(traj.step % k == 0)
    ok = starts + k <= n
    cand = starts[ok]
    idx = cand[:, None] + np.arange(k)
    same_ep = (traj.episode[idx] == traj.episode[cand][:, None]).all(1)
    contiguous = (np.diff(traj.step[idx], axis=1) == 1).all(1)
    # a segment may not run past an episode end (last row inside it but not at its end)
    ends_early = traj.last[idx[:, :-1]].any(1)
    good = same_ep & contiguous & ~ends_early
    start = cand[good]
    covered = np.zeros(n, bool)
    covered[(start[:, None] + np.arange(k)).ravel()] = True
    dropped = {}
    if (~covered).any():
        dropped["incomplete segment (episode end, gap or off-grid start)"] = int((~covered).sum())
    return SegmentIndex(start, dropped)


def build_segments(traj: Trajectories, index: SegmentIndex, k: int) -> Segments:
    idx = index.start[:, None] + np.arange(k)
    last = index.start + k - 1
    nxt = np.minimum(last + 1, len(traj) - 1)
    has_next = (last + 1 < len(traj)) & (traj.episode[nxt] == traj.episode[last]) & ~traj.last[last]
    q_next = np.where(has_next[:, None], traj.q[nxt], np.nan)
    qd_next = np.where(has_next[:, None], traj.qd[nxt], np.nan)
    return Segments(traj.q[idx], traj.qd[idx], traj.tau[idx], q_next, qd_next)
