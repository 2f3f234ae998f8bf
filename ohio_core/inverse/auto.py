"""The default relabeling inverse: closed form where it is well posed, the numerical inverse
(clipping-aware, every step of the segment) for the rest."""

from __future__ import annotations

import numpy as np

from ohio_core.inverse import analytical, numerical
from ohio_core.inverse.base import InverseResult, Segments, Status, register


@register("auto")
def invert(segments: Segments, controller, **numerical_options) -> InverseResult:
    res = analytical.invert(segments, controller)
    redo = np.flatnonzero((res.status == Status.ILL_POSED) | (res.status == Status.OUT_OF_RANGE))
    if len(redo):
        sub = numerical.invert(segments.take(redo), controller, **numerical_options)
        for name in ("goal_p", "goal_R", "action", "residual", "status", "cond", "clipped"):
            getattr(res, name)[redo] = getattr(sub, name)
    res.info = {"method": "auto", "numerical_segments": int(len(redo))}
    return res
