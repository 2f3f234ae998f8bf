"""Naive relabeling baseline: the TCP pose observed k steps later is taken as the goal.

The paper shows this fails under a mismatched or dynamic low level (a controller with finite gains
does not arrive at its goal in k steps); it is here to be measured against.
"""

from __future__ import annotations

import numpy as np

from ohio_core.inverse.base import InverseResult, Segments, Status, finish, register
from ohio_core.inverse.terms import batch_tcp_pose


@register("naive")
def invert(segments: Segments, controller) -> InverseResult:
    n = len(segments)
    finite, seg = segments.sanitized(need_next=segments.q_next is not None)
    q0, end = seg.q[:, 0], seg.q_next if seg.q_next is not None else seg.q[:, -1]
    p0, R0 = batch_tcp_pose(controller.model, q0)
    goal_p, goal_R = batch_tcp_pose(controller.model, end)
    status = np.where(finite, Status.OK, Status.NON_FINITE)
    return finish(goal_p, goal_R, p0, R0, controller.config.output_max, np.zeros(n), status, np.ones(n),
                  {"method": "naive"}, config=controller.config)
